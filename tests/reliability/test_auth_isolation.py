"""CI run of the auth and isolation harness: every bad token refused, no guess answered differently, no token logged."""

from tests.reliability.auth_isolation import run


async def test_bad_tokens_guessed_ids_and_debug_logs(tmp_path):
    report = await run(tmp_path)
    assert report.token_cases >= 40
    assert report.refused_401 == report.token_cases, report.accepted_bad_tokens
    assert report.guesses >= 15 and report.distinguishable == []
    assert report.leaked_frames == 0 and not report.victim_changed
    # The capture saw DEBUG lines of both sides' handshakes, and no token in any of them.
    assert report.debug_records_server > 0 and report.debug_records_client > 0
    assert report.token_hits_in_logs == 0
