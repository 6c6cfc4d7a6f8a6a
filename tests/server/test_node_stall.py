"""A node that stalls past its lease (SIGSTOP: a long VM pause, not a crash) is fenced off its answer.

Another node ends the stalled node's answer as interrupted once the lease
(``--lease 1`` in the cluster fixture) runs out. When the stalled node is
continued, it still holds the chunks it was generating: none of them may be
stored after that end, nor reach any follower, on any node, after the end
frame (docs/server.md, "Fencing"). Waits end on frames; 30 s is a safety net.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import asyncpg

from mfu_tui.protocol import Chunk, Complete, Resume
from mfu_tui.server.providers.demo import demo_answer
from tests.server.peer import peer, text_of
from tests.server.test_generation import get_chat, send_message
from tests.support.server import running_server

#: Safety net for the end of an answer whose node stalled: a lease of 1 s, then the reaper's round.
WAIT = 30.0


async def test_a_node_stopped_past_its_lease_sends_and_stores_nothing_after_the_end(cluster, postgres_url):
    stalled = cluster.nodes[0]
    assert stalled.process is not None
    token = cluster.token()
    async with (
        peer(stalled.url, token) as alice0,
        peer(cluster.nodes[1].url, token) as alice1,
        peer(cluster.nodes[2].url, token) as alice2,
    ):
        followers = [alice0, alice1, alice2]
        ack = await send_message(alice0, "tell me a long story")
        for follower in followers[1:]:
            await follower.send(Resume(chat_id=ack.chat_id, message_id=ack.reply_id, last_seq=0))
        await alice1.expect(Chunk, message_id=ack.reply_id, seq=5)
        os.kill(stalled.process.pid, signal.SIGSTOP)
        try:
            # Stopped until another node has ended the answer: its lease ran out meanwhile.
            _, end = await alice1.stream(ack.reply_id, timeout=WAIT)
        finally:
            os.kill(stalled.process.pid, signal.SIGCONT)
        # The woken node goes on with what it had queued. A whole further answer in the
        # same chat, followed everywhere, gives any stray chunk all the time it needs to show.
        follow_up = await send_message(alice1, "and then?", chat_id=ack.chat_id)
        for follower in followers:
            await follower.stream(follow_up.reply_id, timeout=WAIT)
        detail = await get_chat(alice1, ack.chat_id)
        streamed = [f for f in alice1.received if isinstance(f, Chunk) and f.message_id == ack.reply_id]
        # A chunk the stalled node stored just before it stopped, and had not published yet, is in the
        # end's seq: a follower gets it by resuming from its last chunk, as the real client does.
        async with peer(cluster.nodes[1].url, token) as late:
            await late.send(Resume(chat_id=ack.chat_id, message_id=ack.reply_id, last_seq=streamed[-1].seq))
            missed, again = await late.stream(ack.reply_id, timeout=WAIT)
    database = await asyncpg.connect(postgres_url)
    try:
        stored_seq = await database.fetchval("SELECT MAX(seq) FROM chunks WHERE message_id = $1", ack.reply_id)
    finally:
        await database.close()
    assert isinstance(end, Complete) and end.finish_reason == "interrupted"
    for follower in followers:
        frames = [f for f in follower.received if getattr(f, "message_id", None) == ack.reply_id]
        ends = [index for index, f in enumerate(frames) if isinstance(f, Complete)]
        assert len(ends) == 1, frames  # one end, the interrupted one, on every node
        assert frames[ends[0]] == end
        assert [f for f in frames[ends[0] + 1 :] if isinstance(f, Chunk)] == []  # 0 chunks after the end
        assert all(f.seq <= end.seq for f in frames if isinstance(f, Chunk))
    assert stored_seq == end.seq  # nothing stored after the end either
    reply = detail.messages[1]
    assert (reply.status, reply.finish_reason, reply.seq) == ("error", "interrupted", end.seq)
    assert again == end
    assert [f.seq for f in streamed + missed] == list(range(1, end.seq + 1))
    assert reply.content == text_of(streamed + missed)


async def test_a_node_that_stalled_past_its_lease_and_cannot_renew_it_ends_the_answer_itself(
    tmp_path, postgres_url, caplog
):
    settings = {"db_path": postgres_url, "lease": 0.5, "demo_words": 400, "demo_delay_ms": 5}
    async with running_server(tmp_path, **settings) as node, peer(node.url, node.token()) as alice:
        ack = await send_message(alice, "tell me a long story")
        await alice.expect(Chunk, message_id=ack.reply_id, seq=5)
        # A lock that lets chunks be stored but holds back the renewal of the lease (and
        # keeps reapers off the row): the node cannot know its lease still holds.
        database = await asyncpg.connect(postgres_url)
        lock = database.transaction()
        await lock.start()
        await database.execute("SELECT 1 FROM messages WHERE id = $1 FOR SHARE", ack.reply_id)
        try:
            time.sleep(2 * 0.5)  # the whole process stalls past its lease: nothing of it runs meanwhile
            async with asyncio.timeout(WAIT):
                while not any("may have run out" in record.getMessage() for record in caplog.records):
                    await asyncio.sleep(0.02)
        finally:
            await lock.rollback()
            await database.close()
        _, end = await alice.stream(ack.reply_id, timeout=WAIT)
        detail = await get_chat(alice, ack.chat_id)
    streamed = [f for f in alice.received if isinstance(f, Chunk) and f.message_id == ack.reply_id]
    reply = detail.messages[1]
    assert isinstance(end, Complete) and end.finish_reason == "interrupted"
    assert [f for f in alice.received if isinstance(f, Complete) and f.message_id == ack.reply_id] == [end]
    assert [chunk.seq for chunk in streamed] == list(range(1, len(streamed) + 1))
    # Chunks were stored that the follower was not sent: the end's seq sends it to the store for them.
    assert len(streamed) < end.seq
    assert (reply.status, reply.finish_reason, reply.seq) == ("error", "interrupted", end.seq)
    assert reply.content.startswith(text_of(streamed))
    assert demo_answer("tell me a long story", 400).startswith(reply.content)
