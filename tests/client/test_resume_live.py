"""Streams that survive a broken connection and a killed server, checked seq by seq."""

import asyncio

from mfu_tui.client import MessageReloaded, Status
from mfu_tui.protocol import Ack, Cancelled, Chunk, Complete, MessageEdited
from mfu_tui.server.providers.demo import demo_answer, demo_reasoning
from tests.support.proxy import FaultProxy
from tests.support.recorder import assert_delivered_once_in_order
from tests.support.server import ServerProcess, running_server


def shown_text(events, message_id: str) -> str:
    """The text a UI builds: chunks appended, a reload replacing everything so far."""
    text = ""
    for frame in events.frames:
        if isinstance(frame, Chunk) and frame.message_id == message_id:
            text += frame.content
        elif isinstance(frame, MessageReloaded) and frame.message_id == message_id:
            text = frame.content
    return text


async def stored_text(client, chat_id: str, message_id: str) -> str:
    detail = await client.get_chat(chat_id)
    return next(m.content for m in detail.messages if m.id == message_id)


async def test_a_stream_cut_by_a_reset_resumes_without_loss_or_repeat(tmp_path, make_client):
    async with running_server(tmp_path, demo_words=400, demo_delay_ms=2) as server, FaultProxy(server.port) as proxy:
        client, events = make_client(proxy.url(), server.token())
        watcher, watched = make_client(server.url, server.token())
        await client.connect()
        await client.send_message(None, "tell me a long story")
        await events.wait_for(lambda: events.of_type(Ack) and len(events.of_type(Chunk)) >= 5)
        ack = events.of_type(Ack)[0]
        proxy.reset()
        await events.wait_status(Status.RECONNECTING)
        chunks_before = len(events.of_type(Chunk))
        # The answer ends while the client is cut off: no live chunk will reveal
        # the gap, only the resume sent after the reconnect brings the rest.
        await watcher.connect(ack.chat_id)
        await watched.wait_for(lambda: watched.of_type(Complete))
        proxy.pass_through()
        await events.wait_for(lambda: events.of_type(Complete))
        assert events.opens == 2
        assert len(events.of_type(Chunk)) > chunks_before
        text = assert_delivered_once_in_order(events, ack.reply_id)
        assert text == await stored_text(client, ack.chat_id, ack.reply_id)


async def test_a_stream_cut_mid_reasoning_resumes_both_kinds_of_chunk_once_in_order(tmp_path, make_client):
    question = "think: tell me a long story"
    async with running_server(tmp_path, demo_words=100, demo_delay_ms=5) as server, FaultProxy(server.port) as proxy:
        client, events = make_client(proxy.url(), server.token())
        await client.connect()
        await client.send_message(None, question)
        await events.wait_for(lambda: events.of_type(Ack) and len(events.of_type(Chunk)) >= 3)
        ack = events.of_type(Ack)[0]
        proxy.reset()
        await events.wait_status(Status.RECONNECTING)
        before_the_cut = {c.kind for c in events.of_type(Chunk)}
        proxy.pass_through()
        await events.wait_for(lambda: events.of_type(Complete))
        text = assert_delivered_once_in_order(events, ack.reply_id)
        stored = next(m for m in (await client.get_chat(ack.chat_id)).messages if m.id == ack.reply_id)
    chunks = [f for f in events.of_type(Chunk) if f.message_id == ack.reply_id]
    thought = "".join(c.content for c in chunks if c.kind == "reasoning")
    assert events.opens == 2
    assert before_the_cut == {"reasoning"}  # cut while it was reasoning
    assert (text, thought) == (stored.content, stored.reasoning)
    assert (text, thought) == (demo_answer(question, 100), demo_reasoning(question))


async def test_a_stream_slowed_and_cut_twice_still_arrives_whole(tmp_path, make_client):
    async with running_server(tmp_path, demo_words=600, demo_delay_ms=1) as server, FaultProxy(server.port) as proxy:
        client, events = make_client(proxy.url(), server.token())
        await client.connect()
        await client.send_message(None, "tell me a long story")
        for cut in (1, 2):
            proxy.delay(0.002)
            await events.wait_for(lambda: len(events.of_type(Chunk)) >= 5 * cut and events.opens == cut)
            proxy.reset()
            await events.wait_status(Status.RECONNECTING)
            proxy.pass_through()
        await events.wait_for(lambda: events.of_type(Complete))
        ack = events.of_type(Ack)[0]
        assert events.opens == 3
        text = assert_delivered_once_in_order(events, ack.reply_id)
        assert text == await stored_text(client, ack.chat_id, ack.reply_id)


async def test_a_cancelled_stream_ends_once_with_the_stored_part(tmp_path, make_client):
    async with running_server(tmp_path, demo_words=2000, demo_delay_ms=2) as server:
        client, events = make_client(server.url, server.token())
        await client.connect()
        await client.send_message(None, "tell me a long story")
        await events.wait_for(lambda: events.of_type(Ack) and len(events.of_type(Chunk)) >= 3)
        ack = events.of_type(Ack)[0]
        await client.cancel(ack.chat_id)
        await events.wait_for(lambda: events.of_type(Cancelled))
        chunks = [f for f in events.of_type(Chunk) if f.message_id == ack.reply_id]
        (end,) = events.of_type(Cancelled)
        assert end.seq == len(chunks)
        assert [c.seq for c in chunks] == list(range(1, end.seq + 1))
        assert "".join(c.content for c in chunks) == await stored_text(client, ack.chat_id, ack.reply_id)


async def test_a_stream_cut_by_a_server_kill_resumes_from_what_was_stored(tmp_path, make_client):
    server = ServerProcess(tmp_path, "--provider", "demo", "--demo-words", "2000", "--demo-delay-ms", "2")
    await asyncio.to_thread(server.start)
    try:
        client, events = make_client(server.url, server.token())
        await client.connect()
        await client.send_message(None, "tell me a long story")
        await events.wait_for(lambda: len(events.of_type(Chunk)) >= 5)
        await asyncio.to_thread(server.kill)
        await events.wait_status(Status.RECONNECTING)
        await asyncio.to_thread(server.start)
        await events.wait_for(lambda: events.of_type(Complete))
        ack = events.of_type(Ack)[0]
        end = events.of_type(Complete)[0]
        assert events.opens == 2
        assert end.finish_reason == "interrupted"
        assert not any(isinstance(f, MessageReloaded) for f in events.frames)
        text = assert_delivered_once_in_order(events, ack.reply_id)
        assert text == await stored_text(client, ack.chat_id, ack.reply_id)
    finally:
        await asyncio.to_thread(server.kill)


async def test_the_client_reconnects_after_a_graceful_server_restart(tmp_path, make_client):
    server = ServerProcess(tmp_path)
    await asyncio.to_thread(server.start)
    try:
        client, events = make_client(server.url, server.token())
        await client.connect()
        await events.wait_status(Status.CONNECTED)
        server.terminate()
        await asyncio.to_thread(server.wait)
        state = await events.wait_status(Status.RECONNECTING)
        assert state.last_error is not None
        await asyncio.to_thread(server.start)
        await events.wait_status(Status.CONNECTED)
        assert events.opens == 2
        assert (await client.list_models()).models
    finally:
        await asyncio.to_thread(server.kill)


async def test_a_message_past_its_replay_window_is_reloaded_whole(tmp_path, make_client):
    # replay_window=0: once the answer ended, a resume gets `resync` instead of a replay.
    async with (
        running_server(tmp_path, demo_words=300, demo_delay_ms=2, replay_window=0.0) as server,
        FaultProxy(server.port) as proxy,
    ):
        client, events = make_client(proxy.url(), server.token())
        watcher, watched = make_client(server.url, server.token())
        await client.connect()
        await client.send_message(None, "tell me a long story")
        await events.wait_for(lambda: events.of_type(Ack) and len(events.of_type(Chunk)) >= 3)
        ack = events.of_type(Ack)[0]
        proxy.reset()
        await watcher.connect(ack.chat_id)  # sees the answer end while the first client is cut off
        await watched.wait_for(lambda: watched.of_type(Complete))
        proxy.pass_through()
        await events.wait_for(lambda: any(isinstance(f, MessageReloaded) for f in events.frames))
        reloaded = next(f for f in events.frames if isinstance(f, MessageReloaded))
        assert reloaded.status == "complete"
        assert shown_text(events, ack.reply_id) == await stored_text(client, ack.chat_id, ack.reply_id)


async def test_a_chat_larger_than_the_inbound_frame_limit_loads(tmp_path, make_client):
    # get_chat answers with one frame; a long answer makes it larger than 64 KiB.
    # The answer comes as fast as the server can write, hence the large send queue.
    async with running_server(tmp_path, demo_words=20_000, send_queue_bytes=64 * 2**20) as server:
        client, events = make_client(server.url, server.token())
        await client.connect()
        await client.send_message(None, "a very long answer, please")
        await events.wait_for(lambda: events.of_type(Complete))
        ack = events.of_type(Ack)[0]
        text = assert_delivered_once_in_order(events, ack.reply_id)
        assert len(text.encode()) > 64 * 1024
        assert text == await stored_text(client, ack.chat_id, ack.reply_id)


async def test_a_regenerated_answer_cut_by_a_reset_arrives_whole(tmp_path, make_client):
    async with running_server(tmp_path, demo_words=400, demo_delay_ms=2) as server, FaultProxy(server.port) as proxy:
        client, events = make_client(proxy.url(), server.token())
        await client.connect()
        await client.send_message(None, "first question")
        await events.wait_for(lambda: events.of_type(Complete))
        ack = events.of_type(Ack)[0]
        await client.edit_message(ack.chat_id, ack.message_id, "better question", regenerate=True)
        await events.wait_for(lambda: events.of_type(MessageEdited))
        reply_id = events.of_type(MessageEdited)[0].reply_id
        await events.wait_for(lambda: sum(c.message_id == reply_id for c in events.of_type(Chunk)) >= 3)
        proxy.reset()
        await events.wait_status(Status.RECONNECTING)
        proxy.pass_through()
        await events.wait_for(lambda: len(events.of_type(Complete)) == 2)
        text = assert_delivered_once_in_order(events, reply_id)
        assert text == await stored_text(client, ack.chat_id, reply_id)


async def test_an_answer_whose_chat_vanished_is_resumed_once_then_forgotten(tmp_path, make_client):
    async with running_server(tmp_path, demo_words=3000, demo_delay_ms=10) as server, FaultProxy(server.port) as proxy:
        client, events = make_client(proxy.url(), server.token())
        await client.connect()
        await client.send_message(None, "a long answer please")
        await events.wait_for(lambda: events.of_type(Chunk))
        reply_id = events.of_type(Ack)[0].reply_id
        (generation,) = server.server.generations.running()
        # What another node's delete_chat does: the rows go, the answer ends with no frame here.
        await server.server.store.delete_chat("alice", events.of_type(Ack)[0].chat_id)
        await generation.stop("cancelled")

        def refusals() -> int:
            return sum(1 for error in events.errors if error.code == "not_found" and error.message_id == reply_id)

        proxy.reset()  # a reconnect: the resume of that answer is refused
        proxy.pass_through()
        await events.wait_for(lambda: refusals() == 1)
        proxy.reset()  # another, with a message waiting: the outbox is sent after any resume
        await events.wait_status(Status.RECONNECTING)
        later = await client.send_message(None, "a new chat")
        proxy.pass_through()
        await events.wait_for(lambda: any(ack.client_message_id == later for ack in events.of_type(Ack)))
    assert refusals() == 1  # not resumed again
