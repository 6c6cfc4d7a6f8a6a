"""A stopping node moves its clients at once and lets its running answers end, up to --drain-timeout.

The first tests stop a server in this process (``ChatServer.stop``, what
SIGTERM runs); the last one sends SIGTERM to a node of two behind nginx, on
PostgreSQL and Redis, under the real client library. A whole rolling
restart is in ``test_rolling_restart.py``.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from mfu_tui.cli import build_parser
from mfu_tui.client import Status
from mfu_tui.protocol import Ack, Chunk, CloseCode, Complete, StoredMessage, reconnect_at_once
from mfu_tui.server.cli import _config_from
from mfu_tui.server.providers.demo import demo_answer
from tests.server.peer import peer
from tests.server.test_generation import get_chat, send_message
from tests.support.cluster import Cluster
from tests.support.quick_client import quick_client
from tests.support.recorder import WAIT, Recorder, assert_delivered_once_in_order
from tests.support.server import ServerProcess, new_secret, running_server

#: A demo answer of 40 words at 25 ms each: about a second.
ANSWER = {"demo_words": 40, "demo_delay_ms": 25}


async def stopped_while_answering(tmp_path: Path, drain_timeout: float) -> tuple[int | None, str, str | None]:
    """Stop the server (drain_timeout) while an answer streams: the close code, the stored answer's end."""
    async with running_server(tmp_path, drain_timeout=drain_timeout, **ANSWER) as srv:
        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, "tell me something long")
            await alice.expect(Chunk, message_id=ack.reply_id, seq=2)
            stopping = asyncio.create_task(srv.server.stop())
            code = await alice.close_code()
        await stopping
        db_path = srv.db_path
    async with running_server(tmp_path, db_path=db_path, secret=srv.secret) as again:
        async with peer(again.url, again.token()) as alice:
            reply = (await get_chat(alice, ack.chat_id)).messages[1]
    return code, reply.status, reply.finish_reason


async def signalled_while_answering(
    node: ServerProcess, stop: signal.Signals, *, then: signal.Signals | None = None
) -> tuple[int | None, int, StoredMessage]:
    """Start ``node``, send it ``stop`` while an answer streams (and ``then`` once its client is closed).

    Returns:
        The client's close code, the node's exit status, and the answer as stored, read after a restart.
    """
    await asyncio.to_thread(node.start)
    try:
        async with peer(node.url, node.token()) as alice:
            ack = await send_message(alice, "tell me something long")
            await alice.expect(Chunk, message_id=ack.reply_id, seq=2)
            assert node.process is not None
            node.process.send_signal(stop)
            code = await alice.close_code()
        if then is not None:
            node.process.send_signal(then)
        exit_status = await asyncio.to_thread(node.wait)
        await asyncio.to_thread(node.start)
        async with peer(node.url, node.token()) as alice:
            reply = (await get_chat(alice, ack.chat_id)).messages[1]
    finally:
        node.kill()
    return code, exit_status, reply


async def test_the_clients_are_moved_at_once_and_an_answer_within_the_drain_timeout_ends_complete(tmp_path):
    code, status, finish = await stopped_while_answering(tmp_path, drain_timeout=30)
    assert code == CloseCode.RESTARTING and reconnect_at_once(code)
    assert (status, finish) == ("complete", "stop")


async def test_without_a_drain_timeout_the_running_answer_is_stored_as_interrupted(tmp_path):
    code, status, finish = await stopped_while_answering(tmp_path, drain_timeout=0)
    assert code == CloseCode.RESTARTING
    assert (status, finish) == ("error", "interrupted")


async def test_by_default_sigterm_drains_the_running_answer(tmp_path):
    node = ServerProcess(tmp_path, "--demo-words", str(ANSWER["demo_words"]), "--demo-delay-ms", "25")
    del node.env["MFU_DRAIN_TIMEOUT"]  # the tests' quick stop: this one runs with nothing set
    code, exit_status, reply = await signalled_while_answering(node, signal.SIGTERM)
    assert code == CloseCode.RESTARTING and exit_status == 0
    assert (reply.status, reply.finish_reason) == ("complete", "stop")


async def test_a_second_ctrl_c_ends_the_drain_at_once(tmp_path):
    flags = ("--node-id", "node-7", "--demo-words", "400", "--demo-delay-ms", "20", "--drain-timeout", "30")
    node = ServerProcess(tmp_path, *flags)
    # The first Ctrl-C was taken once the client is closed (the node is stopping): then the second.
    code, exit_status, reply = await signalled_while_answering(node, signal.SIGINT, then=signal.SIGINT)
    assert code == CloseCode.RESTARTING and exit_status == 0
    # Each line of the drain names its node, as the other lines of its stop do: of --workers, the worker.
    [draining] = [line for line in node.stderr_lines if "event=draining " in line]
    [ended] = [line for line in node.stderr_lines if "event=drain_ended " in line]
    [drained] = [line for line in node.stderr_lines if "event=drained " in line]
    assert draining.endswith(" node=node-7 answers=1 drain_timeout=30\n")  # as given: not 30.0
    assert "the drain was ended early" in ended and "node=node-7" in ended
    assert "node=node-7 ended=0 interrupted=1" in drained
    # An answer of about 8 s, well within the 30 s of drain: only the second Ctrl-C cut it.
    assert (reply.status, reply.finish_reason) == ("error", "interrupted")


def test_the_drain_timeout_is_20_s_unless_the_environment_or_the_flag_says(monkeypatch):
    monkeypatch.setenv("MFU_JWT_SECRET", new_secret())
    monkeypatch.delenv("MFU_DRAIN_TIMEOUT", raising=False)
    assert _config_from(build_parser().parse_args(["serve"])).drain_timeout == 20
    monkeypatch.setenv("MFU_DRAIN_TIMEOUT", "0")
    assert _config_from(build_parser().parse_args(["serve"])).drain_timeout == 0
    assert _config_from(build_parser().parse_args(["serve", "--drain-timeout", "5"])).drain_timeout == 5


#: An answer of about 8 s (400 words, 20 ms each) against a drain of 1 s: the drain ends it.
LONG_ANSWER_WORDS = 400
SHORT_DRAIN = ("--demo-words", str(LONG_ANSWER_WORDS), "--demo-delay-ms", "20", "--drain-timeout", "1")


async def test_an_answer_longer_than_the_drain_timeout_reaches_the_moved_client_ended_as_interrupted(
    tmp_path, postgres_url, redis_url
):
    with Cluster(tmp_path, postgres_url, redis_url, nodes=2, args=SHORT_DRAIN) as cluster:
        client = quick_client(cluster.url, cluster.token(), tmp_path / "client-data")
        events = Recorder(client)
        try:
            await client.connect()
            await events.wait_status(Status.CONNECTED)
            (node,) = cluster.nodes_with_clients()
            await client.send_message(None, "tell me a very long story")
            await events.wait_for(lambda: events.of_type(Ack) and len(events.of_type(Chunk)) >= 3)
            (ack,) = events.of_type(Ack)
            await asyncio.to_thread(cluster.nodes[node].terminate)
            # The client moves at once and resumes on the other node, which relays the rest as the
            # stopping node writes it, then the end that node stores when its drain timeout is over.
            await events.wait_for(lambda: any(end.message_id == ack.reply_id for end in events.of_type(Complete)))
            exit_status = await asyncio.to_thread(cluster.nodes[node].wait, WAIT)
            (now_on,) = cluster.nodes_with_clients()
            text = assert_delivered_once_in_order(events, ack.reply_id)
            chat = await client.get_chat(ack.chat_id)
            status = client.state.status
        finally:
            await client.close()
    (end,) = [end for end in events.of_type(Complete) if end.message_id == ack.reply_id]
    assert exit_status == 0 and events.opens == 2 and now_on != node and status is Status.CONNECTED
    assert end.finish_reason == "interrupted"
    reply = chat.messages[1]
    assert (reply.id, reply.status, reply.finish_reason, reply.seq) == (ack.reply_id, "error", "interrupted", end.seq)
    assert reply.content == text
    whole = demo_answer("tell me a very long story", LONG_ANSWER_WORDS)
    assert whole.startswith(text) and text != whole  # cut by the drain's end, not finished
