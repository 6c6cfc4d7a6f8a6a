"""Logs an operator can use: JSON lines, one per connection and per answer, the client behind nginx.

A real node (``mfu-chat serve`` as a process) behind the real nginx of the
suite, on the real PostgreSQL and Redis; a client connects through nginx
from another loopback address, so only ``X-Forwarded-For`` can name it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

from websockets.asyncio.client import connect

from mfu_tui.protocol import Complete, Result, Search, SearchResults, decode_result
from mfu_tui.server.logs import EVENT_FIELDS
from mfu_tui.server.store.sqlite import SCHEMA_VERSION
from tests.server.fake_openai import FakeOpenAI
from tests.server.peer import peer, text_of
from tests.server.test_generation import send_message
from tests.server.test_openai_provider import openai_settings
from tests.support.cluster import DEMO_ARGS, Cluster
from tests.support.programs import free_port
from tests.support.server import ServerProcess, http_get, running_server

#: Words that must never reach a log line, whatever the format.
SECRET_WORDS = "xyzzy plover plugh"


def events(stderr: str) -> list[dict[str, Any]]:
    """Every line of ``stderr`` as JSON (a line that is not one fails the test)."""
    return [json.loads(line) for line in stderr.splitlines() if line.strip()]


def of(lines: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("event") == event]


async def test_json_logs_name_the_forwarded_client_connections_and_answers_but_no_text_or_token(
    tmp_path, postgres_url, redis_url
):
    database = postgres_url.replace("postgresql://mfu@", "postgresql://mfu:s3cret-pw@")  # trust auth ignores it
    flags = (*DEMO_ARGS, "--log-format", "json", "--trusted-proxy", "127.0.0.1/32")
    with Cluster(tmp_path, database, redis_url, nodes=1, args=flags) as cluster:
        node = cluster.nodes[0]
        token = cluster.token("alice")
        # Through nginx (a trusted proxy) from 127.0.0.2: the node's peer is nginx on 127.0.0.1.
        async with peer(cluster.url, token, local_addr=("127.0.0.2", 0)) as alice:
            ack = await send_message(alice, SECRET_WORDS, model_id="demo")
            chunks, end = await alice.stream(ack.reply_id)
        # Straight to the node from 127.0.0.3, which is no proxy of ours: its header is not believed.
        direct = f"ws://127.0.0.1:{node.port}/ws"
        spoofed = {"Authorization": f"Bearer {token}", "X-Forwarded-For": "198.51.100.9"}
        async with connect(direct, additional_headers=spoofed, proxy=None, local_addr=("127.0.0.3", 0)) as mallory:
            await mallory.ping()
        node.terminate()
        assert node.wait() == 0
    lines = events(node.stderr)
    [start] = of(lines, "start")
    opened = of(lines, "connection_open")
    closed = of(lines, "connection_close")
    [answer] = of(lines, "answer_end")
    assert isinstance(end, Complete) and end.finish_reason == "stop"
    assert start["node"] == "node-0" and start["broker"] == redis_url
    assert start["store"] == database.replace("s3cret-pw", "***") and start["version"] == "0.1.0"
    assert [(line["user"], line["client"], line["node"]) for line in opened] == [
        ("alice", "127.0.0.2", "node-0"),
        ("alice", "127.0.0.3", "node-0"),
    ]
    assert [(line["client"], line["code"]) for line in closed] == [("127.0.0.2", 1000), ("127.0.0.3", 1000)]
    assert all(line["seconds"] >= 0 for line in closed)
    assert answer["user"] == "alice" and (answer["provider"], answer["model"]) == ("demo", "demo")
    assert (answer["chat_id"], answer["message_id"]) == (ack.chat_id, ack.reply_id)
    assert answer["chunks"] == len(chunks) == end.seq and answer["finish_reason"] == "stop"
    assert answer["seconds"] > 0 and answer["completion_tokens"] == end.usage.completion_tokens
    assert answer["prompt_tokens"] == end.usage.prompt_tokens
    assert all({"time", "level", "logger", "msg"} <= line.keys() for line in lines)
    assert "s3cret-pw" not in node.stderr and token not in node.stderr
    assert "xyzzy" not in node.stderr and text_of(chunks)[:40] not in node.stderr


async def test_text_logs_carry_the_same_fields_and_the_environment_opens_the_metrics(tmp_path):
    metrics_port = free_port()
    server = ServerProcess(tmp_path, *DEMO_ARGS, env={"MFU_METRICS_PORT": str(metrics_port)})
    server.start()
    try:
        async with peer(server.url, server.token("bob")) as bob:
            ack = await send_message(bob, SECRET_WORDS)
            await bob.stream(ack.reply_id)
        status, exposition = await asyncio.to_thread(http_get, f"http://127.0.0.1:{metrics_port}/metrics")
    finally:
        server.terminate()
        server.wait()
    assert status == 200 and 'mfu_answers_total{finish_reason="stop"} 1.0' in exposition
    [answer] = [line for line in server.stderr.splitlines() if "event=answer_end" in line]
    [opened] = [line for line in server.stderr.splitlines() if "event=connection_open" in line]
    assert f"message_id={ack.reply_id}" in answer and "finish_reason=stop" in answer
    assert "provider=demo model=demo " in answer  # no model named: the provider's default, by name
    assert "user=bob client=127.0.0.1" in opened
    assert "xyzzy" not in server.stderr


async def test_json_lines_escape_control_characters_and_keep_the_name_whole(tmp_path):
    name = "eve\x1b]2;log-title\x07\x9b"
    server = ServerProcess(tmp_path, "--log-format", "json")
    server.start()
    try:
        async with peer(server.url, server.token(name)) as eve:
            await eve.ws.ping()
    finally:
        server.terminate()
        server.wait()
    [opened] = of(events(server.stderr), "connection_open")
    assert opened["user"] == name  # decoded, the name is intact
    assert not any(character in server.stderr for character in "\x1b\x07\x9b")  # raw, nothing a terminal obeys


async def test_debug_logs_show_each_frame_s_direction_type_and_size_but_not_its_text(tmp_path):
    server = ServerProcess(tmp_path, *DEMO_ARGS, "--log-level", "debug")
    server.start()
    try:
        async with peer(server.url, server.token("carol")) as carol:
            ack = await send_message(carol, SECRET_WORDS)
            chunks, _ = await carol.stream(ack.reply_id)
            await carol.send(Search(request_id="find-it", query="plover"))
            found = await carol.expect(Result, request_id="find-it")
    finally:
        server.terminate()
        server.wait()
    assert ack.message_id in [hit.message_id for hit in decode_result(found.data, SearchResults).hits]
    for word in SECRET_WORDS.split():
        assert word not in server.stderr
    assert text_of(chunks)[:40] not in server.stderr
    # The server writes its frames itself (wire.py): websockets logs those it reads, the message and the search.
    received = re.findall(r"websockets\.server: < TEXT \[(\d+) bytes\]$", server.stderr, re.MULTILINE)
    assert len(received) == 2 and all(int(size) > len(SECRET_WORDS) for size in received)


async def test_answer_end_names_the_model_used_when_the_message_names_none(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mfu_tui.server.generation")
    # MFU_OPENAI_MODEL unset: the first model the server lists; set: that one.
    for configured, used in ((None, "fake-small"), ("fake-large", "fake-large")):
        async with FakeOpenAI() as fake:
            settings = {**openai_settings(fake), "openai_model": configured}
            async with (
                running_server(tmp_path / str(configured), **settings) as srv,
                peer(srv.url, srv.token()) as alice,
            ):
                ack = await send_message(alice, "which model?")
                await alice.stream(ack.reply_id)
        [answer] = [getattr(record, EVENT_FIELDS) for record in caplog.records if record.message == "answer ended"]
        caplog.clear()
        assert (answer["message_id"], answer["provider"], answer["model"]) == (ack.reply_id, "openai", used)
        assert [request["model"] for request in fake.requests] == [used]


def test_a_new_database_is_said_created_once_not_migrated_step_by_step(tmp_path):
    server = ServerProcess(tmp_path)
    server.start()  # the store's lines come before the listening line
    server.terminate()
    server.wait()
    store_lines = [line for line in server.stderr.splitlines() if "mfu_tui.server.store.sqlite:" in line]
    assert [line.split(": ", 1)[1] for line in store_lines] == [
        f"creating a new database at schema version {SCHEMA_VERSION}"
    ]
