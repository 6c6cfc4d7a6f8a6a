"""Malformed and oversize frames, the rate limit, and slow consumers."""

from __future__ import annotations

import asyncio
import re

from mfu_tui.protocol import Ack, Error, GetChat, Message, Ping, Pong, Result, encode
from tests.server.peer import TIMEOUT, new_id, peer
from tests.server.rawclient import RawClient
from tests.server.test_generation import send_message
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


async def test_a_frame_over_64_kib_closes_with_1009(tmp_path):
    async with running_server(tmp_path) as srv:
        async with peer(srv.url, srv.token(), max_size=None) as alice:
            await alice.send(Message(chat_id=None, content="x" * 70_000, client_message_id=new_id()))
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


async def test_a_client_that_does_not_read_is_closed_with_4000_and_others_go_on(tmp_path):
    async with running_server(tmp_path, demo_words=3, send_queue_bytes=256 * 1024, close_timeout=30) as srv:
        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, "z" * 60_000)  # get_chat answers ~60 KB each
            await alice.stream(ack.reply_id)
            slow = await RawClient.open(srv.url, srv.token(), receive_buffer=4096)
            slow.send_text('{"type": "ping"}')
            await asyncio.wait_for(slow.read_frames(), TIMEOUT)
            port = slow.writer.get_extra_info("sockname")[1]
            (connection,) = [c for c in srv.server.connections if c.websocket.remote_address[1] == port]
            for _ in range(400):  # at most 24 MB of answers: bounded
                slow.send_text(encode(GetChat(request_id=new_id(), chat_id=ack.chat_id)).decode())
                await slow.writer.drain()
            await asyncio.wait_for(connection.closing.wait(), TIMEOUT)
            assert connection.close_code == 4000
            # Another connection of the same user is served meanwhile.
            await alice.send(GetChat(request_id="still-here", chat_id=ack.chat_id))
            await alice.expect(Result, request_id="still-here")
            # The slow client finally reads: everything queued before, then the 4000.
            assert await asyncio.wait_for(slow.read_until_close(), TIMEOUT) == 4000
            slow.flush()  # our answer to the close frame
            await asyncio.wait_for(slow.read_until_eof(), TIMEOUT)
            slow.close()
            await asyncio.wait_for(connection.finished.wait(), TIMEOUT)
