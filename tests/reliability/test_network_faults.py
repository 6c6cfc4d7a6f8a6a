"""CI-sized network faults: resets and blackholes (up to 4 s) during sends and streams, nothing lost."""

from tests.reliability.network_faults import run


async def test_resets_and_blackholes_lose_and_duplicate_nothing(tmp_path):
    report = await run(rounds=10, seed=20261128, workdir=tmp_path, max_outage=4.0)
    assert report.rounds == 10 and report.resets > 0 and report.blackholes > report.lossy_blackholes > 0
    # Follow-ups in the same chat and messages written during a fault were part of it.
    assert report.follow_ups > 0 and report.sent_during_faults > 0
    assert report.answers == 10 + report.sent_during_faults and report.chunks > 0
    assert (report.lost, report.repeated, report.reordered, report.text_mismatches) == (
        0,
        0,
        0,
        0,
    )
    assert (
        report.unacked,
        report.missing,
        report.duplicated_messages,
        report.stuck,
    ) == (0, 0, 0, 0)
    # (This seed draws three blackholes over twice the heartbeat bound.)
    # Long blackholes were noticed by the heartbeat while they lasted, and the client came back.
    assert report.blackholes_expected_noticed > 0
    assert report.blackholes_noticed >= report.blackholes_expected_noticed
    assert len(report.back_to_green_seconds) >= report.resets
