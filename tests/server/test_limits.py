"""Malformed and oversize frames, the rate limit, and slow consumers."""

from __future__ import annotations

import asyncio
import re

from mfu_tui.protocol import (
    Ack,
    Complete,
    Error,
    GetChat,
    Message,
    Ping,
    Pong,
    Result,
    Resume,
    Subscribe,
    encode,
)
from tests.server.fake_openai import FakeOpenAI, Script
from tests.server.peer import TIMEOUT, new_id, peer, text_of
from tests.server.rawclient import RawClient
from tests.server.test_generation import send_message
from tests.server.test_openai_provider import openai_settings
from tests.support.server import running_server

BAD_FRAMES = {
    "not json": "{nope",
    "not an object": "[1, 2]",
    "no type": '{"chatId": "c1"}',
    "unknown type": '{"type": "regenerate", "chatId": null, "messages": []}',
    "wrong field type": '{"type": "get_chat", "requestId": "r1", "chatId": 5}',
    "missing field": '{"type": "resume", "chatId": "c1", "messageId": "m1"}',
    "empty content": '{"type": "message", "chatId": null, "clientMessageId": "x", "content": "  "}',
    "negative seq": '{"type": "resume", "chatId": "c1", "messageId": "m1", "lastSeq": -1}',
    "binary": b'{"type": "ping"}',
}


async def test_bad_frames_get_bad_request_and_the_connection_stays_up(tmp_path):
    async with running_server(tmp_path) as srv:
        async with peer(srv.url, srv.token()) as alice:
            for name, frame in BAD_FRAMES.items():
                await alice.send(frame)
                error = await alice.recv()
                assert isinstance(error, Error) and error.code == "bad_request", name
                assert error.message, name
            await alice.send(Ping(ts=3))
            assert await alice.recv() == Pong(ts=3)
            # The unknown type started nothing: no chat exists.
            request_id = new_id()
            await alice.send({"type": "list_chats", "requestId": request_id})
            result = await alice.expect(Result, request_id=request_id)
    assert result.data["chats"] == []


async def test_a_frame_over_64_kib_gets_too_large_naming_it_and_the_connection_stays(tmp_path):
    async with running_server(tmp_path) as srv:
        async with peer(srv.url, srv.token(), max_size=None) as alice:
            await alice.send({"type": "get_chat", "requestId": "r1", "chatId": "x" * 70_000})
            error = await alice.expect(Error)
            assert (error.code, error.request_id) == ("too_large", "r1")
            assert error.message == "frame is larger than 65536 bytes"
            # A message's new text counts against 64 KiB, whatever frame carries it.
            client_message_id = new_id()
            await alice.send(
                {"type": "message", "chatId": None, "clientMessageId": client_message_id, "content": "x" * 70_000}
            )
            error = await alice.expect(Error)
            assert (error.code, error.client_message_id) == ("too_large", client_message_id)
            await alice.send(Ping(ts=1))
            assert await alice.expect(Pong) == Pong(ts=1)


async def test_a_frame_over_1_mib_closes_with_1009(tmp_path):
    async with running_server(tmp_path) as srv:
        async with peer(srv.url, srv.token(), max_size=None) as alice:
            history = [{"role": "user", "content": "x" * 60_000}] * 18
            await alice.send({"type": "message", "chatId": None, "messages": history})
            assert await alice.close_code() == 1009


async def test_a_frame_just_under_the_limit_is_accepted(tmp_path):
    async with running_server(tmp_path, demo_words=3) as srv:
        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, "y" * 60_000)
            await alice.stream(ack.reply_id)


async def test_the_rate_limit_answers_rate_limited_after_the_burst(tmp_path):
    async with running_server(tmp_path, demo_words=1, messages_per_minute=1, message_burst=3) as srv:
        async with peer(srv.url, srv.token("alice")) as alice, peer(srv.url, srv.token("bob")) as bob:
            for _ in range(3):
                await send_message(alice, "hi")
            await alice.send(Message(chat_id=None, content="one too many", client_message_id=new_id()))
            error = await alice.expect(Error)
            assert error.code == "rate_limited" and re.search(r"try again in \d+ s", error.message)
            # Per user: Bob is not affected, and Alice's retry of a stored message still gets its ack.
            await send_message(bob, "hello")
            first = next(f for f in alice.received if isinstance(f, Ack))
            again = await send_message(alice, "hi", client_message_id=first.client_message_id)
            assert again == first


async def test_a_client_that_does_not_read_a_stream_is_closed_with_4000_and_others_go_on(tmp_path):
    limit = 64 * 1024
    async with FakeOpenAI() as fake:
        # About 8 MB of chunks (2,000,000 characters of four UTF-8 bytes each), generated at full
        # speed: past what the sockets' buffers hold, however few frames they come in.
        fake.script = Script(pieces=["\N{CRAB}" * 8000] * 250)
        settings = {**openai_settings(fake), "max_answer_chars": 2_000_000}
        async with running_server(tmp_path, **settings, send_queue_bytes=limit, close_timeout=30) as srv:
            async with peer(srv.url, srv.token()) as alice:
                # Alice leaves at once (no reader keeps up with a generator that never waits;
                # a disconnect is not a cancel).
                first = await send_message(alice, "a long one")
            slow = await RawClient.open(srv.url, srv.token(), receive_buffer=4096)
            slow.send_text(encode(Subscribe(chat_id=first.chat_id)).decode())
            # Read once, so the server surely has the connection; the flood (and even
            # its close frame) may already be in this first read.
            early = await asyncio.wait_for(slow.read_frames(), TIMEOUT)
            port = slow.writer.get_extra_info("sockname")[1]
            (connection,) = [c for c in srv.server.connections if c.websocket.remote_address[1] == port]
            await asyncio.wait_for(connection.closing.wait(), TIMEOUT)
            assert connection.close_code == 4000
            generation = srv.server.generations.live(first.chat_id, "alice")
            if generation is not None:
                await asyncio.wait_for(generation.task, TIMEOUT)
            # Whoever comes back gets the whole answer: a replay is never cut off.
            async with peer(srv.url, srv.token()) as again:
                await again.send(Resume(chat_id=first.chat_id, message_id=first.reply_id, last_seq=0))
                chunks, end = await again.stream(first.reply_id)
                assert isinstance(end, Complete) and [c.seq for c in chunks] == list(range(1, end.seq + 1))
                assert text_of(chunks) == "\N{CRAB}" * 2_000_000
            # The slow client finally reads: what was queued before, then the 4000.
            code = slow.close_code(early) or await asyncio.wait_for(slow.read_until_close(), TIMEOUT)
            assert code == 4000
            slow.flush()  # our answer to the close frame
            await asyncio.wait_for(slow.read_until_eof(), TIMEOUT)
            slow.close()
            await asyncio.wait_for(connection.finished.wait(), TIMEOUT)


async def test_a_client_asking_more_than_it_reads_is_paused_not_dropped(tmp_path):
    """Answers to a client's own requests are never cut off; the server stops
    reading its requests instead, so it buffers at most one answer past the limit."""
    limit = 256 * 1024
    async with running_server(tmp_path, demo_words=3, send_queue_bytes=limit) as srv:
        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, "z" * 60_000)  # get_chat answers ~60 KB each
            await alice.stream(ack.reply_id)
            slow = await RawClient.open(srv.url, srv.token(), receive_buffer=4096)
            slow.send_text('{"type": "ping"}')
            await asyncio.wait_for(slow.read_frames(), TIMEOUT)
            port = slow.writer.get_extra_info("sockname")[1]
            (connection,) = [c for c in srv.server.connections if c.websocket.remote_address[1] == port]
            asked = 100  # 6 MB of answers
            for _ in range(asked):
                slow.send_text(encode(GetChat(request_id=new_id(), chat_id=ack.chat_id)).decode())
            await slow.writer.drain()
            # Another connection of the same user is served meanwhile.
            await alice.send(GetChat(request_id="still-here", chat_id=ack.chat_id))
            await alice.expect(Result, request_id="still-here")
            # The slow client reads at last, and gets every answer.
            results = 0
            while results < asked:
                frames = await asyncio.wait_for(slow.read_frames(), TIMEOUT)
                results += sum(1 for frame in frames if '"type":"result"' in frame.data.decode())
            assert results == asked and connection.close_code is None
            assert connection.peak_queued_bytes <= limit + 2 * 64 * 1024
            slow.close()
