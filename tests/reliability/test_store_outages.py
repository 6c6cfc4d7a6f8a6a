"""CI-sized runs of the store-outage harness: PostgreSQL stopped twice, SQLite's disk full once, under 5 clients."""

import os

import pytest

from tests.reliability.store_outages import OutageReport, run


def check(report: OutageReport, outages: int) -> None:
    print(
        f"{report.backend}: back to every queued message acked in {report.drain_seconds} s, answered in "
        f"{report.answered_seconds} s; outage log lines {report.outage_log_lines}, tracebacks {report.tracebacks}"
    )
    assert report.outages == outages
    assert report.messages > 5 * outages and report.chunks > 0
    # Every message acknowledged once with its answer ended at its client, or refused for good.
    assert report.acked + sum(report.refused.values()) == report.messages
    assert (report.acked_twice, report.unanswered, report.stuck, report.lost) == (0, 0, 0, 0)
    assert (report.stored_twice, report.out_of_order, report.left_streaming) == (0, 0, 0)
    assert (report.chunks_lost, report.chunks_repeated, report.chunks_reordered, report.text_mismatches) == (0, 0, 0, 0)
    assert report.clean, report.incidents
    # The outages were met: messages refused for now, or answers the store could not keep.
    assert report.deferred.get("unavailable", 0) + report.answer_errors.get("unavailable", 0) > 0


async def test_postgresql_stopped_twice_under_five_clients_loses_and_sticks_nothing(tmp_path):
    report = await run("postgres", outages=2, outage_seconds=1.5, workdir=tmp_path, between=1.5, words=10)
    check(report, outages=2)


async def test_sqlite_on_a_full_disk_under_five_clients_loses_and_sticks_nothing(tmp_path):
    if os.geteuid() != 0:  # the in-process full-disk tests (tests/support/disk_full.py) still run
        pytest.skip("a full disk is a tmpfs of its own, filled: mounting it needs root")
    report = await run("sqlite", outages=1, outage_seconds=1.5, workdir=tmp_path, between=1.5, words=10)
    check(report, outages=1)
