"""CI-sized run of the outbox-kill harness: 30 client processes killed while they write, nothing lost."""

from tests.reliability.outbox_kills import page_by_page_dir, run


def test_thirty_client_kills_lose_no_message_and_send_none_twice(tmp_path):
    with page_by_page_dir() as data_dir:
        report = run(kills=30, seed=1, workdir=tmp_path, data_dir=data_dir)
    assert report.kills == 30 and report.promised > 0, report
    assert (report.missing_after_kill, report.lost, report.sent_twice, report.garbled) == (0, 0, 0, 0), report
    assert report.left_pending == 0, report
    # Records must really have been cut, and every kind of kill used, or the run proved little.
    assert report.cut_by_kill + report.cut_by_limit > 0, report
    assert set(report.modes) == {"watch", "confirmed", "limit"}, report
