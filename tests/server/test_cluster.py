"""Several nodes on one PostgreSQL and one Redis, behind nginx: events, streams, cancel and sends cross nodes.

Each test gets its own cluster (``cluster`` fixture: three ``mfu-chat serve``
processes, a fresh database, its own Redis, nginx in front). A test that
must know which node a connection is on connects to that node's port; a
test of the load balancer goes through ``cluster.url``. kill -9 of a node is
in ``test_node_failure.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from mfu_tui.protocol import (
    Ack,
    Cancel,
    Cancelled,
    ChatPage,
    ChatUpdated,
    Chunk,
    Complete,
    EditMessage,
    Error,
    ListChats,
    Message,
    MessageEdited,
    Ping,
    Pong,
    RenameChat,
    Result,
    Resume,
    ServerFrame,
    Subscribe,
    decode_result,
)
from mfu_tui.server.providers.demo import demo_answer
from tests.server.peer import TIMEOUT, Peer, new_id, peer, text_of
from tests.server.test_generation import get_chat, send_message
from tests.support.cluster import DEMO_WORDS


async def settled(client: Peer) -> None:
    """Round-trip a ping: the node has handled every frame this connection sent before it."""
    ts = float(len(client.received))
    await client.send(Ping(ts=ts))
    await client.expect(Pong, ts=ts)


async def until(client: Peer, matches: Callable[[ServerFrame], bool]) -> ServerFrame:
    """Skip frames until one that ``matches``."""
    async with asyncio.timeout(TIMEOUT):
        while not matches(frame := await client.recv()):
            pass
    return frame


def chats_named(frames: list[ServerFrame]) -> set[str]:
    """Every chat id the frames concern."""
    named = set()
    for frame in frames:
        if isinstance(frame, ChatUpdated):
            named.add(frame.chat.id)
        elif getattr(frame, "chat_id", None) is not None:
            named.add(frame.chat_id)
    return named


async def list_chats(client: Peer) -> ChatPage:
    request_id = new_id()
    await client.send(ListChats(request_id=request_id))
    return decode_result((await client.expect(Result, request_id=request_id)).data, ChatPage)


async def test_an_answer_streams_whole_through_the_load_balancer(cluster):
    async with peer(cluster.url, cluster.token()) as alice:
        ack = await send_message(alice, "What is a monad?")
        chunks, end = await alice.stream(ack.reply_id)
        detail = await get_chat(alice, ack.chat_id)
    assert [chunk.seq for chunk in chunks] == list(range(1, len(chunks) + 1))
    assert isinstance(end, Complete) and end.finish_reason == "stop" and end.seq == len(chunks)
    assert text_of(chunks) == demo_answer("What is a monad?", DEMO_WORDS) == detail.messages[1].content


async def test_a_users_events_reach_her_connections_on_other_nodes_and_no_one_else(cluster):
    node0, node1 = cluster.nodes[0].url, cluster.nodes[1].url
    alice, bob = cluster.token("alice"), cluster.token("bob")
    async with (
        peer(node0, alice) as alice0,
        peer(node1, alice) as alice1,
        peer(node0, bob) as bob0,
        peer(node1, bob) as bob1,
    ):
        # A new chat on node 0 shows up in the chat list on node 1.
        first = await send_message(alice0, "first question")
        await alice0.stream(first.reply_id)
        created = await until(alice1, lambda f: isinstance(f, ChatUpdated) and f.chat.id == first.chat_id)
        assert not created.deleted
        # A rename on node 1 reaches node 0.
        request_id = new_id()
        await alice1.send(RenameChat(request_id=request_id, chat_id=first.chat_id, title="Renamed on node 1"))
        await alice1.expect(Result, request_id=request_id)
        await until(alice0, lambda f: isinstance(f, ChatUpdated) and f.chat.title == "Renamed on node 1")
        # An edit on node 0 reaches node 1.
        await alice0.send(EditMessage(chat_id=first.chat_id, message_id=first.message_id, content="edited on 0"))
        edited = await alice1.expect(MessageEdited, message_id=first.message_id)
        assert (edited.chat_id, edited.content, edited.reply_id) == (first.chat_id, "edited on 0", None)
        # A connection on node 1 that subscribed follows an answer generated on node 0, live.
        await alice1.send(Subscribe(chat_id=first.chat_id))
        await settled(alice1)
        second = await send_message(alice0, "second question", chat_id=first.chat_id)
        chunks, end = await alice1.stream(second.reply_id)
        await alice0.stream(second.reply_id)
        # Bob's own chat, made on node 1, reaches bob on node 0 after all of alice's events.
        bobs = await send_message(bob1, "bob's question")
        await until(bob0, lambda f: isinstance(f, ChatUpdated) and f.chat.id == bobs.chat_id)
        await bob1.stream(bobs.reply_id)
    assert [chunk.seq for chunk in chunks] == list(range(1, len(chunks) + 1))
    assert isinstance(end, Complete) and end.seq == len(chunks) and end.finish_reason == "stop"
    assert text_of(chunks) == demo_answer("second question", DEMO_WORDS)
    assert chats_named(bob0.received) == chats_named(bob1.received) == {bobs.chat_id}


async def test_resume_on_another_node_replays_then_follows_the_live_answer(cluster):
    async with peer(cluster.nodes[0].url, cluster.token()) as alice0:
        ack = await send_message(alice0, "tell me a long story")
        await alice0.expect(Chunk, message_id=ack.reply_id, seq=5)
    seen = [f for f in alice0.received if isinstance(f, Chunk)]
    async with peer(cluster.nodes[1].url, cluster.token()) as alice1:
        before = await get_chat(alice1, ack.chat_id)
        await alice1.send(Resume(chat_id=ack.chat_id, message_id=ack.reply_id, last_seq=5))
        chunks, end = await alice1.stream(ack.reply_id)
        after = await get_chat(alice1, ack.chat_id)
    assert before.messages[1].status == "streaming"  # so what followed the replay was live
    assert [f.seq for f in seen] == [1, 2, 3, 4, 5]
    assert [chunk.seq for chunk in chunks] == list(range(6, end.seq + 1))
    assert isinstance(end, Complete) and end.finish_reason == "stop"
    assert text_of(seen) + text_of(chunks) == after.messages[1].content
    assert after.messages[1].content == demo_answer("tell me a long story", DEMO_WORDS)


async def test_a_cancel_sent_to_another_node_stops_the_answer_for_every_subscriber(cluster):
    async with (
        peer(cluster.nodes[0].url, cluster.token()) as alice0,
        peer(cluster.nodes[1].url, cluster.token()) as alice1,
    ):
        ack = await send_message(alice0, "tell me everything")
        await alice1.send(Subscribe(chat_id=ack.chat_id))
        await settled(alice1)
        await alice0.expect(Chunk, message_id=ack.reply_id, seq=3)
        await alice1.send(Cancel(chat_id=ack.chat_id, message_id=ack.reply_id))
        _, end = await alice0.stream(ack.reply_id)
        _, end_on_node1 = await alice1.stream(ack.reply_id)
        # The chat is free again at once, and a whole further answer gives a
        # stopped generation all the time it needs to show a stray chunk.
        follow_up = await send_message(alice0, "and then?", chat_id=ack.chat_id)
        await alice0.stream(follow_up.reply_id)
        await alice1.stream(follow_up.reply_id)
        detail = await get_chat(alice1, ack.chat_id)
    assert isinstance(end, Cancelled) and end_on_node1 == end
    streamed = [f for f in alice0.received if isinstance(f, Chunk) and f.message_id == ack.reply_id]
    assert [chunk.seq for chunk in streamed] == list(range(1, end.seq + 1))
    assert all(f.seq <= end.seq for f in alice1.received if isinstance(f, Chunk) and f.message_id == ack.reply_id)
    reply = detail.messages[1]
    assert (reply.id, reply.status, reply.finish_reason) == (ack.reply_id, "cancelled", "cancelled")
    assert reply.seq == end.seq and reply.content == text_of(streamed)
    assert 3 <= end.seq < len(demo_answer("tell me everything", DEMO_WORDS).split())


async def test_the_same_client_message_id_on_several_nodes_at_once_is_stored_and_answered_once(cluster):
    frame = Message(chat_id=None, content="only once", client_message_id=new_id())
    async with (
        peer(cluster.nodes[0].url, cluster.token()) as on_node0,
        peer(cluster.nodes[1].url, cluster.token()) as on_node1,
        peer(cluster.url, cluster.token()) as via_nginx,
    ):
        senders = (on_node0, on_node1, via_nginx)
        await asyncio.gather(*(sender.send(frame) for sender in senders))
        acks = [await sender.expect(Ack, client_message_id=frame.client_message_id) for sender in senders]
        ack = acks[0]
        async with peer(cluster.nodes[2].url, cluster.token()) as watcher:
            await watcher.send(Resume(chat_id=ack.chat_id, message_id=ack.reply_id, last_seq=0))
            chunks, end = await watcher.stream(ack.reply_id)
            detail = await get_chat(watcher, ack.chat_id)
            page = await list_chats(watcher)
        await asyncio.gather(*(settled(sender) for sender in senders))
    assert acks[1] == ack and acks[2] == ack
    assert [chat.id for chat in page.chats] == [ack.chat_id]
    assert [(m.id, m.role, m.content) for m in detail.messages] == [
        (ack.message_id, "user", "only once"),
        (ack.reply_id, "assistant", text_of(chunks)),
    ]
    assert isinstance(end, Complete) and end.seq == len(chunks) == detail.messages[1].seq
    assert text_of(chunks) == demo_answer("only once", DEMO_WORDS)
    for sender in senders:
        streamed = [f for f in sender.received if isinstance(f, Chunk)]
        assert {chunk.message_id for chunk in streamed} <= {ack.reply_id}  # no second answer
        assert [c.seq for c in streamed] == sorted({c.seq for c in streamed})  # nothing twice


async def test_a_message_to_a_chat_generating_on_another_node_gets_conflict_and_is_not_stored(cluster):
    async with (
        peer(cluster.nodes[0].url, cluster.token()) as alice0,
        peer(cluster.nodes[1].url, cluster.token()) as alice1,
    ):
        ack = await send_message(alice0, "a long one")
        await alice0.expect(Chunk, message_id=ack.reply_id, seq=1)
        refused = new_id()
        await alice1.send(Message(chat_id=ack.chat_id, content="another", client_message_id=refused))
        error = await alice1.expect(Error)
        _, end = await alice0.stream(ack.reply_id)
        detail = await get_chat(alice1, ack.chat_id)
    assert (error.code, error.chat_id, error.client_message_id) == ("conflict", ack.chat_id, refused)
    assert not [f for f in alice1.received if isinstance(f, Ack)]
    assert isinstance(end, Complete) and end.finish_reason == "stop"
    assert [(m.id, m.client_message_id) for m in detail.messages] == [
        (ack.message_id, ack.client_message_id),
        (ack.reply_id, None),
    ]
