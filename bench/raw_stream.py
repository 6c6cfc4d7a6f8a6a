"""One relay stream of the load, read straight off the socket once the WebSocket handshake is done.

The load must cost far less than the server it loads: on this 2-core
machine the CPU the load processes take is CPU a second server worker
lacks (issue 20: ``serve --workers 2`` against one worker). websockets
parses each frame into a message, hands it over through a queue, and
msgspec decodes it: the load cost about as much per chunk as the server.
Here a connection opened by websockets (the handshake, the token) is
taken over: its transport's bytes come to ``RawStream``, which parses
only the frame headers (RFC 6455, section 5.2) and reads a chunk's seq
and stamps with one regex over the frame as ``mfu_tui.protocol.encode``
writes it.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

#: A chunk frame's seq and content, as ``encode`` lays them out (``tests/bench/test_raw_stream.py`` checks it).
_CHUNK = re.compile(rb'^\{"type":"chunk",.*?"seq":(\d+),"content":"((?:[^"\\]|\\.)*)"')

#: Opcodes (RFC 6455, section 5.2).
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A final frame from a client: masked, as a client's must be, with the key 0 (the payload as it is)."""
    length = len(payload)
    if length < 126:
        header = bytes([0x80 | opcode, 0x80 | length])
    elif length < 1 << 16:
        header = bytes([0x80 | opcode, 0x80 | 126]) + length.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 0x80 | 127]) + length.to_bytes(8, "big")
    return header + b"\0\0\0\0" + payload


class RawStream(asyncio.Protocol):
    """Counts one answer's chunks and their latencies from the stamps in them, until its ``complete``.

    Args:
        figures: The load process's counters: ``chunks``, ``latencies_ms``, ``gaps``, ``complete``, ``errors``.
    """

    def __init__(self, figures: dict[str, Any]) -> None:
        self.figures = figures
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        """Set at the answer's ``complete``, an ``error`` frame, or the connection's end."""
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._last_seq = 0

    def take_over(self, transport: asyncio.Transport, question: bytes) -> None:
        """Read ``transport`` from now on (a connection just opened: no frame has come yet) and ask ``question``."""
        self._transport = transport
        transport.set_protocol(self)
        transport.write(client_frame(TEXT, question))

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        buffer = self._buffer
        buffer += data
        at, size = 0, len(buffer)
        while size - at >= 2:
            opcode, length, head = buffer[at] & 0x0F, buffer[at + 1] & 0x7F, 2
            if length == 126:
                length, head = int.from_bytes(buffer[at + 2 : at + 4], "big"), 4
            elif length == 127:
                length, head = int.from_bytes(buffer[at + 2 : at + 10], "big"), 10
            end = at + head + length
            if end > size:
                break  # the rest of this frame has not come yet
            self._frame(opcode, bytes(buffer[at + head : end]), now)
            at = end
        del buffer[:at]

    def _frame(self, opcode: int, payload: bytes, now: int) -> None:
        figures = self.figures
        if opcode == TEXT:
            if (chunk := _CHUNK.match(payload)) is not None:
                seq, content = int(chunk[1]), chunk[2]
                stamps = content.split()
                if stamps and all(stamp.isdigit() for stamp in stamps):
                    # Pieces that came while the one before was being stored share its chunk: each stamp counts.
                    figures["chunks"] += len(stamps)
                    figures["latencies_ms"].extend((now - int(stamp)) / 1e6 for stamp in stamps)
                else:
                    figures["chunks"] += 1
                figures["gaps"] += seq != self._last_seq + 1
                self._last_seq = seq
            elif payload.startswith(b'{"type":"complete"'):
                figures["complete"] += 1
                self._end()
            elif payload.startswith(b'{"type":"error"'):
                figures["errors"].append(f"error frame: {payload[:200].decode(errors='replace')}")
                self._end()
        elif opcode == PING and self._transport is not None:
            self._transport.write(client_frame(PONG, payload))
        elif opcode == CLOSE:
            figures["errors"].append(f"closed by the server: {payload[:200]!r}")
            self._end()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.figures["errors"].append(f"stream: connection lost ({exc!r})")
        self._end()

    def _end(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def close(self) -> None:
        """Close the connection (without a closing handshake: the load is over)."""
        if self._transport is not None:
            self._transport.close()
