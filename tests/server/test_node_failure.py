"""kill -9 of the node generating an answer: followers elsewhere get a clear end, and nothing acked is lost.

The dead node's lease on the answer runs out (``--lease 1`` in the cluster
fixture); a live node then stores the reply as interrupted, with the text
stored so far, and every subscriber on every node gets ``complete`` with
``finishReason: "interrupted"``. Waits end on frames; 30 s is a safety net.
"""

from __future__ import annotations

import asyncio
import contextlib

from mfu_tui.client import Status
from mfu_tui.protocol import Ack, Chunk, Complete, Ping, Pong, Resume
from mfu_tui.server.providers.demo import demo_answer
from tests.server.peer import peer, text_of
from tests.server.test_generation import get_chat, send_message
from tests.support.cluster import DEMO_WORDS
from tests.support.quick_client import quick_client
from tests.support.recorder import Recorder, assert_delivered_once_in_order

#: Safety net for the end of an answer whose node died: a lease of 1 s, then the reaper's round.
WAIT = 30.0


async def test_a_follower_on_another_node_gets_the_stored_partial_ended_as_interrupted(cluster):
    generating, following = cluster.nodes[0], cluster.nodes[1]
    async with peer(generating.url, cluster.token()) as alice0, peer(following.url, cluster.token()) as alice1:
        ack = await send_message(alice0, "tell me a long story")
        await alice1.send(Resume(chat_id=ack.chat_id, message_id=ack.reply_id, last_seq=0))
        await alice1.expect(Chunk, message_id=ack.reply_id, seq=5)
        await asyncio.to_thread(generating.kill)
        _, end = await alice1.stream(ack.reply_id, timeout=WAIT)
        seen = max(f.seq for f in alice1.received if isinstance(f, Chunk) and f.message_id == ack.reply_id)
        if end.seq > seen:  # the killed node stored its last chunk but died before publishing it:
            # the end says how far the stored answer goes, and a resume fetches the rest (protocol.md).
            await alice1.send(Resume(chat_id=ack.chat_id, message_id=ack.reply_id, last_seq=seen))
            await alice1.stream(ack.reply_id)
        detail = await get_chat(alice1, ack.chat_id)
    chunks = [f for f in alice1.received if isinstance(f, Chunk) and f.message_id == ack.reply_id]
    assert [chunk.seq for chunk in chunks] == list(range(1, len(chunks) + 1))
    assert isinstance(end, Complete) and end.finish_reason == "interrupted" and end.seq == len(chunks)
    reply = detail.messages[1]
    assert (reply.id, reply.status, reply.finish_reason, reply.seq) == (ack.reply_id, "error", "interrupted", end.seq)
    assert reply.content == text_of(chunks)
    whole = demo_answer("tell me a long story", DEMO_WORDS)
    assert whole.startswith(reply.content) and reply.content != whole  # cut by the kill, not finished


async def test_the_client_library_behind_nginx_outlives_the_kill_of_its_node(cluster, tmp_path):
    client = quick_client(cluster.url, cluster.token(), tmp_path / "client-data")
    events = Recorder(client)
    try:
        await client.connect()
        await events.wait_status(Status.CONNECTED)
        (node,) = cluster.nodes_with_clients()  # where nginx sent it
        first = await client.send_message(None, "tell me a long story")
        await events.wait_for(lambda: events.of_type(Ack) and len(events.of_type(Chunk)) >= 5, WAIT)
        ack = events.of_type(Ack)[0]
        await asyncio.to_thread(cluster.nodes[node].kill)
        # Written while the client is cut off (or about to notice): the outbox delivers it after the reconnect.
        second = await client.send_message(None, "and one more thing")
        await events.wait_for(
            lambda: (
                any(end.message_id == ack.reply_id for end in events.of_type(Complete))
                and any(a.client_message_id == second for a in events.of_type(Ack))
            ),
            WAIT,
        )
        (now_on,) = cluster.nodes_with_clients()
        end = next(end for end in events.of_type(Complete) if end.message_id == ack.reply_id)
        text = assert_delivered_once_in_order(events, ack.reply_id)
        first_chat = await client.get_chat(ack.chat_id)
        second_ack = next(a for a in events.of_type(Ack) if a.client_message_id == second)
        second_chat = await client.get_chat(second_ack.chat_id)
    finally:
        await client.close()
    assert events.opens == 2 and now_on != node
    assert ack.client_message_id == first and end.finish_reason == "interrupted"
    user_message, reply = first_chat.messages
    assert (user_message.client_message_id, user_message.content) == (first, "tell me a long story")
    assert (reply.id, reply.status, reply.finish_reason, reply.content) == (ack.reply_id, "error", "interrupted", text)
    assert [(m.id, m.client_message_id) for m in second_chat.messages[:1]] == [(second_ack.message_id, second)]


async def test_the_load_balancer_spreads_connections_and_skips_a_dead_node(cluster):
    async with contextlib.AsyncExitStack() as stack:
        for _ in cluster.nodes:
            await stack.enter_async_context(peer(cluster.url, cluster.token()))
        spread = cluster.nodes_with_clients()
    await asyncio.to_thread(cluster.nodes[1].kill)
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(peer(cluster.url, cluster.token())) for _ in range(4)]
        for client in clients:
            await client.send(Ping(ts=1.0))
            await client.expect(Pong, ts=1.0)
        after_the_kill = cluster.nodes_with_clients()
    assert spread == [0, 1, 2]
    assert after_the_kill == [0, 2]
