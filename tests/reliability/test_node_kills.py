"""CI-sized run of the node-kill harness: 8 SIGKILLs of nodes behind nginx mid-traffic, nothing lost."""

from tests.reliability.node_kills import run
from tests.support.postgres import postgres_server, postgres_url  # noqa: F401
from tests.support.redis import redis_url  # noqa: F401


async def test_eight_node_kills_lose_nothing(tmp_path, postgres_url, redis_url):  # noqa: F811
    report = await run(kills=8, seed=20261126, workdir=tmp_path, database_url=postgres_url, broker_url=redis_url)
    assert report.kills == 8
    assert report.answers == 8 and report.chunks > 0
    assert (report.lost, report.repeated, report.reordered) == (0, 0, 0)
    assert report.text_mismatches == 0
    assert (report.unacked, report.missing, report.stuck) == (0, 0, 0)
    assert report.integrity == "ok"  # no reply left streaming
    assert report.durable_checks == 8
    assert (report.acked_missing_after_kill, report.chunks_missing_after_kill) == (0, 0)
    # Some kills must really have cut an answer, or the run proved little.
    assert report.finish_reasons.get("interrupted", 0) > 0
