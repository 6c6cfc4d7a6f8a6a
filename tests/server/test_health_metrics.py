"""/healthz, /readyz, /version and the Prometheus /metrics listener, against the real server.

The metrics are scraped over HTTP after real traffic (a real client, the
fake OpenAI-compatible upstream) and read with prometheus-client's own
parser; readiness follows a real PostgreSQL that is stopped and started.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from prometheus_client.parser import text_string_to_metric_families

from mfu_tui.protocol import Ack, Chunk, Complete, Error
from mfu_tui.server import ConfigError, ServerConfig
from mfu_tui.server.logs import EVENT_FIELDS
from tests.server.fake_openai import FakeOpenAI, Script
from tests.server.peer import peer
from tests.server.test_generation import send_message
from tests.server.test_openai_provider import openai_settings
from tests.support.postgres import running_postgres
from tests.support.redis import running_redis
from tests.support.server import http_get, new_secret, running_server

T = TypeVar("T")

#: What ``/readyz`` says of the broker on a node without one, alone on its database.
ALONE = "none (a single node)"

#: Seconds a state change may take to show (the readiness check is cached for one second).
WITHIN = 15.0


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of ``/metrics`` on ``port``: (name, sorted labels) -> value."""
    status, body = http_get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


async def until(check: Callable[[], Awaitable[T]], wanted: Callable[[T], bool], timeout: float = WITHIN) -> T:
    """Ask ``check`` again (every 0.1 s: each ask is what moves the state) until its answer is ``wanted``."""
    async with asyncio.timeout(timeout):
        while not wanted(answer := await check()):
            await asyncio.sleep(0.1)
    return answer


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    return await asyncio.to_thread(http_get, url, headers=headers)


async def test_health_ready_and_version_answer_without_auth(tmp_path):
    async with running_server(tmp_path) as srv:
        base = f"http://127.0.0.1:{srv.port}"
        health = await get(f"{base}/healthz")
        ready = await get(f"{base}/readyz")
        version = await get(f"{base}/version")
        node = srv.server.node_id
    assert health == (200, "ok\n")
    assert ready[0] == 200
    # No broker: as the start event says (a node linked to a broker says "ok").
    assert json.loads(ready[1]) == {"ready": True, "store": "ok", "broker": ALONE, "draining": False}
    answer = json.loads(version[1])
    assert version[0] == 200 and answer["version"] == "0.1.0" and answer["node"] == node
    assert answer["build"] and answer["python"].startswith("3.")


async def test_probes_answered_200_log_nothing_at_info_and_other_requests_still_do(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="websockets.server")
    caplog.set_level(logging.INFO, logger="mfu_tui.server.app")
    async with running_server(tmp_path) as srv:
        base = f"http://127.0.0.1:{srv.port}"
        probes = [await get(f"{base}/healthz"), await get(f"{base}/readyz"), await get(f"{base}/readyz?full=1")]
        version = await get(f"{base}/version")
        async with peer(srv.url, srv.token()) as alice:
            await alice.ws.ping()
    # Stopped: every connection has ended, and logged its end unless it was a probe's.
    assert [status for status, _ in probes] == [200, 200, 200] and version[0] == 200
    assert [record.getMessage() for record in caplog.records if record.name == "websockets.server"] == []
    # /version's line and the WebSocket's opening and closing are our events, naming the node (and the user).
    ours = [getattr(record, EVENT_FIELDS) for record in caplog.records if hasattr(record, EVENT_FIELDS)]
    assert [(event["status"], event["path"]) for event in ours if event["event"] == "http_response"] == [
        (200, "/version")
    ]  # only probes are quiet
    assert [event["event"] for event in ours].count("connection_open") == 1
    assert [event["event"] for event in ours].count("connection_close") == 1


async def test_a_refused_request_is_one_line_naming_its_path_and_client_but_not_its_query(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="websockets.server")
    caplog.set_level(logging.INFO, logger="mfu_tui.server.app")
    # Behind a trusted proxy: the client is the one X-Forwarded-For names, as connection_open says.
    forwarded = {"X-Forwarded-For": "198.51.100.9"}
    async with running_server(tmp_path, trusted_proxies=("127.0.0.1/32",)) as srv:
        base = f"http://127.0.0.1:{srv.port}"
        missing = await get(f"{base}/chat?token=s3cret-token", forwarded)
        unauthorized = await get(f"{base}/ws?token=s3cret-token", forwarded)
    assert (missing[0], unauthorized[0]) == (404, 401)
    assert [record.getMessage() for record in caplog.records if record.name == "websockets.server"] == []
    events = [getattr(record, EVENT_FIELDS) for record in caplog.records if hasattr(record, EVENT_FIELDS)]
    ours = [line for line in events if line["event"] in ("http_response", "connection_refused")]
    assert [(line["event"], line["status"], line["path"], line["client"]) for line in ours] == [
        ("http_response", 404, "/chat", "198.51.100.9"),
        ("connection_refused", 401, "/ws", "198.51.100.9"),  # one line for the refusal, saying why
    ]
    assert ours[1]["why"] == "the token is not a valid JWT"
    assert all(line["node"] == srv.server.node_id for line in ours)
    assert not any("s3cret-token" in record.getMessage() for record in caplog.records)


async def test_metrics_count_real_traffic(tmp_path):
    async with FakeOpenAI() as fake, running_server(tmp_path, metrics_port=0, **openai_settings(fake)) as srv:
        node = (("node", srv.server.node_id),)
        assert srv.server.metrics_port and srv.server.metrics_port != srv.port
        before = await asyncio.to_thread(scrape, srv.server.metrics_port)
        async with peer(srv.url, srv.token()) as alice:
            first = await send_message(alice, "hello", model_id="fake-small")
            chunks, end = await alice.stream(first.reply_id)
            fake.script = Script(status=500)
            second = await send_message(alice, "again", chat_id=first.chat_id)
            _, failed = await alice.stream(second.reply_id)
            await alice.send("{not json")
            refused = await alice.expect(Error)
            during = await asyncio.to_thread(scrape, srv.server.metrics_port)
        after = await until(
            lambda: asyncio.to_thread(scrape, srv.server.metrics_port),
            lambda samples: samples[("mfu_connections_closed_total", node)] == 1,
        )
        on_the_main_port = await get(f"http://127.0.0.1:{srv.port}/metrics")
    assert isinstance(end, Complete) and end.finish_reason == "stop" and end.seq == len(chunks) > 0
    assert isinstance(failed, Complete) and failed.finish_reason == "error" and refused.code == "bad_request"
    assert before[("mfu_connections", node)] == 0 and before[("mfu_chunks_total", ())] == 0
    assert during[("mfu_connections", node)] == 1
    assert during[("mfu_connections_opened_total", node)] == 1
    assert during[("mfu_chunks_total", ())] == len(chunks)
    assert during[("mfu_relay_seconds_count", ())] == 1  # one chunk in 8 is timed: the first here
    assert during[("mfu_first_token_seconds_count", ())] == 1  # the failed answer had no first token
    assert during[("mfu_answers_total", (("finish_reason", "stop"),))] == 1
    assert during[("mfu_answers_total", (("finish_reason", "error"),))] == 1
    assert during[("mfu_answer_seconds_count", ())] == 2
    assert during[("mfu_upstream_errors_total", (("kind", "http_error"),))] == 1
    assert during[("mfu_frames_refused_total", (("code", "bad_request"),))] == 1
    assert during[("mfu_answers_active", ())] == 0
    assert during[("mfu_ready", ())] == 1
    assert during[("mfu_store_errors_total", (("operation", "append_chunk"),))] == 0  # nothing failed
    assert before[("mfu_frames_refused_total", (("code", "conflict"),))] == 0  # every code from the start
    assert before[("mfu_upstream_errors_total", (("kind", "timeout"),))] == 0
    for reason in ("stop", "length", "cancelled", "error", "interrupted", "store_failed"):  # every finish too
        assert before[("mfu_answers_total", (("finish_reason", reason),))] == 0
    build = [labels for name, labels in during if name == "mfu_build_info"]
    assert build and dict(build[0])["node"] == srv.server.node_id and dict(build[0])["version"] == "0.1.0"
    assert after[("mfu_connections", node)] == 0
    assert on_the_main_port[0] == 404  # the figures are only on their own listener


async def test_active_answers_and_queues_are_read_at_scrape_time(tmp_path):
    async with FakeOpenAI() as fake, running_server(tmp_path, metrics_port=0, **openai_settings(fake)) as srv:
        fake.script = Script(pieces=["held"], then="gate")
        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, "wait for it")
            assert isinstance(ack, Ack)
            await alice.expect(Chunk, message_id=ack.reply_id)  # counted before it was sent
            running = await asyncio.to_thread(scrape, srv.server.metrics_port)
            fake.gate.set()
            await alice.stream(ack.reply_id)
            ended = await asyncio.to_thread(scrape, srv.server.metrics_port)
    assert running[("mfu_answers_active", ())] == 1 and running[("mfu_chunks_total", ())] == 1
    assert ended[("mfu_answers_active", ())] == 0
    assert ("mfu_send_queue_bytes", ()) in ended and ("mfu_broker_queue_frames", ()) in ended
    assert ("mfu_handshakes_pending", ()) in ended


def test_the_metrics_port_must_be_a_listener_of_its_own():
    for bad in ({"port": 5001, "metrics_port": 5001}, {"metrics_port": 70000}):
        try:
            ServerConfig(secret=new_secret(), **bad)
        except ConfigError as error:
            assert "--metrics-port" in str(error)
        else:
            raise AssertionError(f"{bad} was accepted")


async def test_readyz_fails_while_postgresql_is_stopped_and_comes_back(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mfu_tui.server.app")
    with running_postgres() as postgres:
        url = postgres.new_database()
        async with running_server(tmp_path, db_path=url, metrics_port=0) as srv:
            readyz = f"http://127.0.0.1:{srv.port}/readyz"
            ready = await get(readyz)
            await asyncio.to_thread(postgres.stop)
            down = await until(lambda: get(readyz), lambda answer: answer[0] == 503)
            alive = await get(f"http://127.0.0.1:{srv.port}/healthz")
            while_down = await asyncio.to_thread(scrape, srv.server.metrics_port)
            await asyncio.to_thread(postgres.launch)
            back = await until(lambda: get(readyz), lambda answer: answer[0] == 200)
            after = await asyncio.to_thread(scrape, srv.server.metrics_port)
    assert ready[0] == 200
    report = json.loads(down[1])
    assert report["ready"] is False and report["store"].startswith("the store does not answer")
    assert report["broker"] == ALONE and report["draining"] is False
    failed = [getattr(record, EVENT_FIELDS) for record in caplog.records if record.message == "answered over HTTP"]
    assert (503, "/readyz") in [(line["status"], line["path"]) for line in failed]  # a failed probe stays in the log
    assert alive[0] == 200  # the process is alive: nothing to restart
    assert while_down[("mfu_ready", ())] == 0
    assert while_down[("mfu_store_errors_total", (("operation", "readiness_probe"),))] >= 1
    assert json.loads(back[1])["ready"] is True and after[("mfu_ready", ())] == 1


async def test_readyz_and_the_broker_metrics_follow_the_link_to_redis(tmp_path, postgres_url):
    with running_redis() as redis:
        settings = {
            "db_path": postgres_url,
            "broker": redis.url,
            "metrics_port": 0,
            # Pieces slower than commits, so that most make chunks of their own (more than 8).
            "demo_words": 60,
            "demo_delay_ms": 5,
        }
        async with running_server(tmp_path, **settings) as srv:
            readyz = f"http://127.0.0.1:{srv.port}/readyz"
            async with peer(srv.url, srv.token()) as alice:
                ack = await send_message(alice, "count my chunks")
                chunks, _ = await alice.stream(ack.reply_id)
            linked = await asyncio.to_thread(scrape, srv.server.metrics_port)
            assert redis.process is not None
            redis.process.kill()
            redis.process.wait(10)
            down = await until(lambda: get(readyz), lambda answer: answer[0] == 503)
            lost = await asyncio.to_thread(scrape, srv.server.metrics_port)
            redis.start()  # on the same port
            back = await until(lambda: get(readyz), lambda answer: answer[0] == 200)
    assert linked[("mfu_broker_errors_total", ())] == 0 and linked[("mfu_ready", ())] == 1
    assert linked[("mfu_chunks_total", ())] == len(chunks) > 8
    assert linked[("mfu_relay_seconds_count", ())] == len(range(1, len(chunks) + 1, 8))  # chunks 1, 9, 17...
    assert json.loads(down[1])["broker"] == "lost the link to the other nodes"
    assert lost[("mfu_broker_errors_total", ())] == 1 and lost[("mfu_ready", ())] == 0
    assert json.loads(back[1]) == {"ready": True, "store": "ok", "broker": "ok", "draining": False}


async def test_a_node_without_a_broker_warns_when_other_nodes_use_its_database(tmp_path, postgres_url, caplog):
    caplog.set_level(logging.INFO, logger="mfu_tui.server.unlinked_nodes")
    settings = {"db_path": postgres_url, "lease": 0.6}  # checked at start, then every lease / 3
    async with running_server(tmp_path, node_id="node-a", **settings) as a:
        a_readyz = f"http://127.0.0.1:{a.port}/readyz"
        alone = await get(a_readyz)
        async with running_server(tmp_path, node_id="node-b", **settings) as b:
            said_at_b_start = caplog.messages[:]
            b_ready = await get(f"http://127.0.0.1:{b.port}/readyz")
            a_sees_b = await until(lambda: get(a_readyz), lambda answer: "node-b" in answer[1])
        a_alone_again = await until(lambda: get(a_readyz), lambda answer: json.loads(answer[1])["broker"] == ALONE)
    assert json.loads(alone[1])["broker"] == ALONE
    assert said_at_b_start == [
        "no broker (--broker), but other nodes use this database (node-a): answers they generate do not"
        " reach this node's clients, nor this node's theirs; give every node the same --broker"
    ]
    report = json.loads(b_ready[1])
    assert b_ready[0] == 200 and report["ready"] is True  # it serves its own clients: warned, not taken out
    assert report["broker"] == (
        "none, but other nodes use this database (node-a): their answers do not reach this node's clients;"
        " give every node the same --broker"
    )
    assert a_sees_b[0] == 200 and "other nodes use this database (node-b)" in json.loads(a_sees_b[1])["broker"]
    assert a_alone_again[0] == 200
    assert caplog.messages[-1] == "no other node uses this database any more"


async def test_a_node_alone_on_its_database_does_not_warn_of_its_own_leases(tmp_path, postgres_url, caplog):
    caplog.set_level(logging.INFO, logger="mfu_tui.server.unlinked_nodes")
    async with running_server(tmp_path, node_id="node-a", db_path=postgres_url, lease=0.6) as a:
        async with peer(a.url, a.token()) as alice:  # a live lease of its own: not another node
            ack = await send_message(alice, "hello")
            await alice.stream(ack.reply_id)
        status, body = await get(f"http://127.0.0.1:{a.port}/readyz")
    assert (status, json.loads(body)["broker"]) == (200, ALONE)
    assert caplog.messages == []


async def test_metrics_hold_the_process_s_and_python_s_own_figures(tmp_path):
    async with running_server(tmp_path, metrics_port=0) as srv:
        samples = await asyncio.to_thread(scrape, srv.server.metrics_port)
    # docs/deploy.md (Metrics) sends uvloop users to the open-files figure: it must be there.
    assert 0 < samples[("process_open_fds", ())] < samples[("process_max_fds", ())]
    assert samples[("process_resident_memory_bytes", ())] > 0 and ("process_cpu_seconds_total", ()) in samples
    assert ("python_gc_collections_total", (("generation", "0"),)) in samples
