"""The load's raw stream reads what the real server sends as websockets would: every chunk, in order, once."""

from __future__ import annotations

import uuid
from pathlib import Path

from websockets.asyncio.client import connect

from bench.raw_stream import PING, RawStream, client_frame
from mfu_tui.protocol import Chunk, Message, encode
from tests.support.server import running_server


async def test_a_chunk_frame_is_read_as_encode_lays_it_out() -> None:
    stream_figures = {"chunks": 0, "latencies_ms": [], "gaps": 0, "complete": 0, "errors": []}
    frames = [
        encode(Chunk(chat_id="c", message_id="m", seq=1, content="12 34 ")),  # two stamps
        encode(Chunk(chat_id="c", message_id="m", seq=3, content='a "quoted" word')),  # seq 2 missing
    ]
    # Frames from a server, unmasked, the first split across two reads and the second with a 16-bit length.
    wire = b"".join(bytes([0x81, len(frame)]) for frame in frames[:1]) + frames[0]
    padded = frames[1] + b" " * 130
    wire += bytes([0x81, 126]) + len(padded).to_bytes(2, "big") + padded
    stream = RawStream(stream_figures)
    stream.data_received(wire[:5])
    stream.data_received(wire[5:])
    assert stream_figures["chunks"] == 3 and len(stream_figures["latencies_ms"]) == 2
    assert stream_figures["gaps"] == 1 and not stream_figures["errors"]


def test_a_client_frame_is_masked_with_its_length() -> None:
    assert client_frame(PING, b"hi") == bytes([0x89, 0x82, 0, 0, 0, 0]) + b"hi"
    long = client_frame(1, b"x" * 300)
    assert long[:4] == bytes([0x81, 0x80 | 126, 1, 44]) and long[8:] == b"x" * 300


async def test_a_stream_from_the_real_server_arrives_whole(tmp_path: Path) -> None:
    figures = {"chunks": 0, "latencies_ms": [], "gaps": 0, "complete": 0, "errors": []}
    async with running_server(tmp_path, demo_words=60, demo_delay_ms=2) as server:
        ws = await connect(server.url, additional_headers={"Authorization": f"Bearer {server.token()}"}, proxy=None)
        stream = RawStream(figures)
        question = encode(Message(chat_id=None, content="hello", client_message_id=str(uuid.uuid4())))
        stream.take_over(ws.transport, question)
        await stream.done
        stream.close()
    assert figures["complete"] == 1 and not figures["errors"]
    assert figures["chunks"] > 10 and figures["gaps"] == 0
