"""The send path: a published frame encoded once for the wire, and every subscriber's frames in order, once."""

from __future__ import annotations

import asyncio

import pytest
from websockets.frames import Frame, Opcode

from mfu_tui.protocol import Chunk, Complete, Ping, Pong, Subscribe, decode_server, encode
from mfu_tui.server.providers.demo import demo_answer
from mfu_tui.server.wire import text_frame
from tests.server.peer import TIMEOUT, peer, text_of
from tests.server.rawclient import RawClient
from tests.server.test_generation import send_message
from tests.support.server import running_server


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 300_000])
def test_a_wire_frame_is_the_frame_websockets_would_send(size):
    payload = ("x" * size).encode()
    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False)


async def _subscribe(client: RawClient, chat_id: str) -> None:
    """Subscribe, then ping: once the pong is back, the subscription is in place (frames are handled in order)."""
    client.send_text(encode(Subscribe(chat_id=chat_id)).decode())
    client.send_text(encode(Ping(ts=1.0)).decode())
    while True:
        frames = await asyncio.wait_for(client.read_frames(), TIMEOUT)
        if any(isinstance(decode_server(frame.data), Pong) for frame in frames if frame.opcode is Opcode.TEXT):
            return


async def _bytes_until_complete(client: RawClient, message_id: str) -> tuple[bytes, list[Frame]]:
    """The raw bytes read until the ``complete`` of ``message_id``, and the frames in them."""
    raw, frames = b"", []
    while True:
        data = await asyncio.wait_for(client.reader.read(65536), TIMEOUT)
        assert data, "the server closed the connection"
        raw += data
        client.protocol.receive_data(data)
        frames += [event for event in client.protocol.events_received() if isinstance(event, Frame)]
        decoded = [decode_server(frame.data) for frame in frames if frame.opcode is Opcode.TEXT]
        if any(isinstance(frame, Complete) and frame.message_id == message_id for frame in decoded):
            return raw, frames


async def test_every_subscriber_gets_each_chunk_once_in_order_and_the_same_bytes(tmp_path):
    words = 400
    async with running_server(tmp_path, demo_words=words, demo_delay_ms=0) as srv:
        async with peer(srv.url, srv.token()) as alice:
            first = await send_message(alice, "first")
            await alice.stream(first.reply_id)
            followers = [await RawClient.open(srv.url, srv.token()) for _ in range(3)]
            try:
                for follower in followers:
                    await _subscribe(follower, first.chat_id)
                second = await send_message(alice, "second", chat_id=first.chat_id)
                chunks, end = await alice.stream(second.reply_id)
                received = [await _bytes_until_complete(follower, second.reply_id) for follower in followers]
            finally:
                for follower in followers:
                    follower.close()
    assert isinstance(end, Complete) and [c.seq for c in chunks] == list(range(1, end.seq + 1))
    assert text_of(chunks) == demo_answer("second", words)
    # Encoded once: every follower read the very same bytes, frame for frame.
    raw = received[0][0]
    assert all(other == raw for other, _ in received)
    for _, frames in received:
        assert b"".join(text_frame(frame.data) for frame in frames) == raw  # text frames, nothing else
        streamed = [decode_server(frame.data) for frame in frames]
        mine = [frame for frame in streamed if isinstance(frame, Chunk) and frame.message_id == second.reply_id]
        assert [chunk.seq for chunk in mine] == list(range(1, end.seq + 1))
        assert [chunk.content for chunk in mine] == [chunk.content for chunk in chunks]
        assert sum(isinstance(frame, Complete) for frame in streamed) == 1
