"""CI-sized load: 200 connections from two processes and eight source addresses, 20 of them streaming."""

from tests.reliability.load import run


def test_two_hundred_connections_with_twenty_streams_have_no_errors(tmp_path):
    report = run(connections=200, streams=20, workdir=tmp_path, workers=2, words=100)
    assert report.error_samples == [] and report.errors == 0
    assert report.opened == 200 and report.pongs == 200
    assert report.answers_complete == 20 and report.chunks > 0
    assert len(report.source_addresses) == 8
    assert report.chunk_gap_ms["count"] > 0
