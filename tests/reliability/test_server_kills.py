"""CI-sized run of the server-kill harness: 20 SIGKILLs mid-traffic, nothing lost."""

from tests.reliability.server_kills import run


async def test_twenty_server_kills_lose_nothing(tmp_path):
    report = await run(kills=20, seed=20261126, workdir=tmp_path)
    assert report.kills == 20
    assert report.answers == 20 and report.chunks > 0
    assert (report.lost, report.repeated, report.reordered) == (0, 0, 0)
    assert report.text_mismatches == 0
    assert (report.unacked, report.missing, report.stuck) == (0, 0, 0)
    assert report.integrity == "ok"
    # Crash safety of data, checked in the dead server's database after each kill.
    assert report.durable_checks == 20
    assert (report.acked_missing_after_kill, report.chunks_missing_after_kill, report.integrity_failures) == (0, 0, 0)
    # Some kills must really have landed mid-answer, or the run proved little.
    assert report.finish_reasons.get("interrupted", 0) > 0
