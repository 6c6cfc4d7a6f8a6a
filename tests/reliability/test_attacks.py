"""CI-sized attacks (scale 0.05): each is stopped by its limit while a victim keeps chatting and loses nothing.

Timings (the victim's latencies, their ratios to the baseline) are only
recorded; what is asserted holds on any machine: the victim lost nothing and
was served during the attack, the server's peak RSS grew less than a bound
derived from its configured limits, and each attack's own properties.
"""

from __future__ import annotations

import pytest

from tests.reliability.attacks import ATTACKS, CI_SAMPLES, run_attack

#: 75 connection attempts, 100 half-open sockets, a 300 KB chat, 100 edits...
CI_SCALE = 0.05


@pytest.mark.parametrize("name", sorted(ATTACKS))
async def test_an_attack_is_stopped_and_the_victim_keeps_chatting(name, tmp_path):
    report = await run_attack(
        name, tmp_path, scale=CI_SCALE, victim_interval=0.3, samples=CI_SAMPLES, watch_seconds=0.0
    )
    print(report.outcome, report.victim["request_round_trip"], report.victim["first_chunk"])
    assert report.failures == []
    assert report.victim["lost"] == 0 and report.victim["messages"] > 0
    answers, requests = CI_SAMPLES
    assert report.victim["first_chunk"]["whole_attack_ms"]["count"] >= answers
    assert report.victim["request_round_trip"]["whole_attack_ms"]["count"] >= requests
    assert 0 < report.rss_bound_mib and report.rss_growth_mib <= report.rss_bound_mib
    figures = report.figures
    if name == "connections":
        assert figures["answering_after_the_flood"] == 20 and figures["refused"][429] > 0
    elif name == "big_get_chat":
        assert figures["connections_opened"] == 20
    elif name == "list_models":
        assert figures["answered"] == figures["requests"] and figures["model_server_requests"] == 1
    elif name == "slowloris":
        assert figures["newcomers_in"] == figures["newcomers"] and figures["half_open"] == 100
    elif name in ("edit_flood", "message_flood"):
        assert figures["outcomes"]["refused"] > 0
    elif name == "huge_answer":
        assert figures["finish_reason"] == "length"
        assert figures["streamed_chars"] == figures["stored_chars"] == figures["max_answer_chars"]
    elif name == "ping_flood":
        assert 0 < figures["cut_after_mib"] < 256
