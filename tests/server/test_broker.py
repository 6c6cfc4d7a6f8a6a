"""The Redis link between nodes, with two nodes in this process: a graceful stop, and a lost link.

The nodes are real ``ChatServer``s on a real PostgreSQL and a real Redis of
this test's own; clients are real WebSocket connections to each node.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest

from mfu_tui.client import Backoff, ChatClient, Status
from mfu_tui.protocol import ChatUpdated, Chunk, Complete, DeleteChat, Error, GetChat, Ping, Pong, Result, Subscribe
from mfu_tui.server.store.postgres import PostgresStore
from tests.server.peer import TIMEOUT, peer, text_of
from tests.server.test_generation import get_chat, send_message
from tests.support.proxy import FaultProxy
from tests.support.recorder import Recorder
from tests.support.redis import RedisServer, running_redis
from tests.support.server import RunningServer, ServerProcess, http_get, new_secret, running_server


@contextlib.asynccontextmanager
async def two_nodes(tmp_path, postgres_url: str, broker_url: str, **config) -> AsyncIterator[list[RunningServer]]:
    """Two nodes on one database and one broker, sharing a secret."""
    secret = new_secret()
    settings = {"db_path": postgres_url, "broker": broker_url, "secret": secret, "lease": 30.0, **config}
    async with running_server(tmp_path, node_id="node-a", **settings) as first:
        async with running_server(tmp_path, node_id="node-b", **settings) as second:
            assert isinstance(first.server.store, PostgresStore) and isinstance(second.server.store, PostgresStore)
            yield [first, second]


def health(node: RunningServer) -> int:
    """The HTTP status of the node's ``/readyz`` (``/healthz`` says only that the process answers)."""
    return http_get(f"http://127.0.0.1:{node.port}/readyz")[0]


async def test_a_node_stopping_gracefully_ends_its_answers_for_followers_on_other_nodes(tmp_path, postgres_url):
    with running_redis() as redis:
        async with two_nodes(tmp_path, postgres_url, redis.url, demo_words=400, demo_delay_ms=10) as (first, second):
            async with peer(first.url, first.token()) as alice, peer(second.url, second.token()) as follower:
                ack = await send_message(alice, "a long answer please")
                await follower.send(Subscribe(chat_id=ack.chat_id))
                first_seen = await follower.expect(Chunk)  # chunks cross the broker from here on
                await first.server.stop()  # SIGTERM's path: the answer is stored as interrupted
                chunks, end = await follower.stream(ack.reply_id)
                detail = await get_chat(follower, ack.chat_id)
    seen = [first_seen, *chunks]
    stored = detail.messages[-1]
    assert isinstance(end, Complete) and end.finish_reason == "interrupted"
    assert [chunk.seq for chunk in seen] == list(range(first_seen.seq, end.seq + 1))
    assert (stored.finish_reason, stored.seq) == ("interrupted", end.seq)
    assert stored.content.endswith(text_of(seen))


async def test_a_node_that_loses_the_broker_sends_clients_away_until_the_link_is_back(tmp_path, postgres_url):
    with running_redis() as redis:
        async with two_nodes(tmp_path, postgres_url, redis.url) as (first, second):
            # The real client, as a user runs it: it retries 503s until the node takes it again.
            client = ChatClient(
                first.url, first.token(), data_dir=tmp_path / "client", backoff=Backoff(base=0.05, cap=0.5)
            )
            events = Recorder(client)
            try:
                await client.connect()
                await events.wait_status(Status.CONNECTED)
                healthy = await asyncio.to_thread(health, first)
                _kill(redis)
                await events.wait_for(lambda: client.state.status is not Status.CONNECTED)
                refused = await asyncio.to_thread(health, first)
                redis.start()  # on the same port
                await events.wait_for(lambda: events.opens == 2)
                async with peer(second.url, second.token()) as elsewhere:
                    await client.send_message(None, "back?")
                    await events.wait_for(lambda: events.of_type(Complete))
                    seen = await elsewhere.expect(ChatUpdated)
            finally:
                await client.close()
    assert (healthy, refused) == (200, 503)
    assert "lost the link to the other server nodes (1013)" in {state.last_error for state in events.states}
    assert first.server.hub.linked
    assert seen.chat.id == events.of_type(Complete)[0].chat_id  # frames cross the nodes again


def _kill(redis: RedisServer) -> None:
    assert redis.process is not None
    redis.process.kill()
    redis.process.wait(10)


def test_an_unreachable_broker_refuses_to_start_with_one_line_without_the_password(tmp_path):
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = ServerProcess(tmp_path, "--broker", f"redis://:hunter2@127.0.0.1:{port}/0")
    with pytest.raises(RuntimeError, match="did not start"):
        process.start(timeout=20)
    assert process.wait() == 1
    lines = [line for line in process.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(
        f"mfu-chat serve: cannot reach the broker redis://:***@127.0.0.1:{port}/0"
    )
    assert "hunter2" not in process.stderr


async def test_a_chat_deleted_on_another_node_stops_its_answer_there(tmp_path, postgres_url):
    with running_redis() as redis:
        # An answer of 30 s: only the relayed cancel ends it within the wait below.
        async with two_nodes(tmp_path, postgres_url, redis.url, demo_words=3000, demo_delay_ms=10) as (first, second):
            async with peer(first.url, first.token()) as alice, peer(second.url, second.token()) as elsewhere:
                ack = await send_message(alice, "a long answer please")
                await alice.expect(Chunk)
                (generation,) = first.server.generations.running()
                await elsewhere.send(DeleteChat(request_id="delete", chat_id=ack.chat_id))
                await elsewhere.expect(Result, request_id="delete")
                deleted = await alice.expect(ChatUpdated, deleted=True)
                await asyncio.wait_for(generation.task, TIMEOUT)  # stopped by the relayed cancel
                detail_error = await _get_chat_error(alice, ack.chat_id)
    assert deleted.chat.id == ack.chat_id
    assert detail_error.code == "not_found"


async def test_an_answer_whose_reply_vanished_elsewhere_ends_quietly(tmp_path, caplog):
    async with running_server(tmp_path, demo_words=3000, demo_delay_ms=10) as srv, peer(srv.url, srv.token()) as alice:
        ack = await send_message(alice, "a long answer please")
        await alice.expect(Chunk)
        (generation,) = srv.server.generations.running()
        await srv.server.store.delete_chat("alice", ack.chat_id)  # what another node's delete does
        await generation.stop("cancelled")
        await alice.send(Ping(ts=1.0))
        frames = []
        while not isinstance(frame := await alice.recv(), Pong):
            frames.append(frame)
    # No error and no end for a reply that no longer exists: whoever follows it was told already.
    assert not [frame for frame in frames if isinstance(frame, (Error, Complete))]
    assert not [record for record in caplog.records if record.levelname == "ERROR"]


async def _get_chat_error(client, chat_id: str) -> Error:
    await client.send(GetChat(request_id="after", chat_id=chat_id))
    return await client.expect(Error, request_id="after")


async def test_what_a_node_could_not_publish_reaches_the_other_nodes_once_its_link_is_back(tmp_path, postgres_url):
    secret = new_secret()
    common = {"db_path": postgres_url, "secret": secret, "lease": 30.0, "demo_words": 300, "demo_delay_ms": 5}
    with running_redis() as redis:
        async with FaultProxy(redis.port) as link:  # node-a's own road to Redis
            broker_a = f"redis://127.0.0.1:{link.port}/0"
            async with (
                running_server(tmp_path, node_id="node-a", broker=broker_a, **common) as first,
                running_server(tmp_path, node_id="node-b", broker=redis.url, **common) as second,
                peer(first.url, first.token()) as alice,
                peer(second.url, second.token()) as follower,
            ):
                ack = await send_message(alice, "a long answer please")
                await follower.send(Subscribe(chat_id=ack.chat_id))
                first_seen = await follower.expect(Chunk)
                link.reset()  # node-a loses Redis; its answer goes on, its frames wait
                assert await alice.close_code() == 1013
                link.pass_through()
                chunks, end = await follower.stream(ack.reply_id)  # the rest, once node-a is back
                detail = await get_chat(follower, ack.chat_id)
    seen = [first_seen, *chunks]
    assert isinstance(end, Complete) and end.finish_reason == "stop"
    assert [chunk.seq for chunk in seen] == list(range(first_seen.seq, end.seq + 1))
    assert detail.messages[-1].content.endswith(text_of(seen))


async def test_a_publish_sent_again_after_a_timeout_reaches_the_other_nodes_once(tmp_path, postgres_url, caplog):
    secret = new_secret()
    common = {"db_path": postgres_url, "secret": secret, "lease": 30.0, "demo_words": 300, "demo_delay_ms": 5}
    with running_redis() as redis:
        async with FaultProxy(redis.port) as link:  # node-a's own road to Redis
            broker_a = f"redis://127.0.0.1:{link.port}/0"
            async with (
                running_server(tmp_path, node_id="node-a", broker=broker_a, broker_heartbeat=0.3, **common) as first,
                running_server(tmp_path, node_id="node-b", broker=redis.url, **common) as second,
                peer(first.url, first.token()) as alice,
                peer(second.url, second.token()) as follower,
            ):
                ack = await send_message(alice, "a long answer please")
                await follower.send(Subscribe(chat_id=ack.chat_id))
                first_seen = await follower.expect(Chunk)
                # node-a's publications reach Redis (and node-b), Redis's answers never come back:
                # every round trip times out, and its batch is sent again whole.
                link.stall_reader()
                async with asyncio.timeout(TIMEOUT):
                    while not [r for r in caplog.records if "could not publish" in r.getMessage()]:
                        await asyncio.sleep(0.05)
                link.pass_through()
                chunks, end = await follower.stream(ack.reply_id)
    seen = [first_seen, *chunks]
    assert isinstance(end, Complete) and end.finish_reason == "stop"
    assert [chunk.seq for chunk in seen] == list(range(first_seen.seq, end.seq + 1))  # each once: no repeat sent


async def test_a_silent_link_to_redis_is_noticed_by_the_heartbeat(tmp_path, postgres_url):
    settings = {"db_path": postgres_url, "secret": new_secret(), "broker_heartbeat": 0.3}
    with running_redis() as redis:
        async with FaultProxy(redis.port) as link:
            broker = f"redis://127.0.0.1:{link.port}/0"
            async with (
                running_server(tmp_path, node_id="node-a", broker=broker, **settings) as node,
                peer(node.url, node.token()) as alice,
            ):
                link.blackhole()  # no reset, no FIN: Redis just stops answering
                code = await alice.close_code()
                refused = await asyncio.to_thread(health, node)
                link.pass_through()
    assert (code, refused) == (1013, 503)
