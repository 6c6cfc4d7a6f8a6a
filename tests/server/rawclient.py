"""A WebSocket client built from websockets' sans-I/O protocol, for misbehaving peers.

It speaks the real wire format but lets a test decide what to read and what
to answer: never answer pings (a dead peer), or stop reading (a slow one).
"""

from __future__ import annotations

import asyncio
import socket

from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri


class RawClient:
    """Handshake done by ``open``; afterwards only what the test asks for happens."""

    def __init__(self, protocol: ClientProtocol, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.protocol = protocol
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, url: str, token: str, *, receive_buffer: int | None = None) -> RawClient:
        protocol = ClientProtocol(parse_uri(url), max_size=None)
        request = protocol.connect()
        request.headers["Authorization"] = f"Bearer {token}"
        protocol.send_request(request)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            # Before connect, so the advertised window stays small.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        uri = parse_uri(url)
        await asyncio.get_running_loop().sock_connect(sock, (uri.host, uri.port))
        reader, writer = await asyncio.open_connection(sock=sock)
        client = cls(protocol, reader, writer)
        client.flush()
        while protocol.state is State.CONNECTING:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("closed during the handshake")
            protocol.receive_data(data)
        response = [event for event in protocol.events_received() if isinstance(event, Response)]
        assert response and response[0].status_code == 101, response
        return client

    def flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.writer.write(data)

    def send_text(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        self.flush()

    async def read_frames(self) -> list[Frame]:
        """Read whatever arrives next and return the frames in it (answers nothing)."""
        data = await self.reader.read(65536)
        if not data:
            self.protocol.receive_eof()
            return []
        self.protocol.receive_data(data)
        return [event for event in self.protocol.events_received() if isinstance(event, Frame)]

    async def read_until_eof(self) -> list[Frame]:
        """Every frame until the server drops the TCP connection (pings stay unanswered)."""
        frames: list[Frame] = []
        while True:
            data = await self.reader.read(65536)
            if not data:
                return frames
            self.protocol.receive_data(data)
            frames += [event for event in self.protocol.events_received() if isinstance(event, Frame)]

    async def read_until_close(self) -> int | None:
        """Read (answering nothing) until the server's close frame; its code."""
        while True:
            frames = await self.read_frames()
            if not frames and self.reader.at_eof():
                return None
            code = self.close_code(frames)
            if code is not None:
                return code

    def close(self) -> None:
        self.writer.transport.abort()

    @staticmethod
    def close_code(frames: list[Frame]) -> int | None:
        """The code of the first close frame in ``frames``, if any."""
        for frame in frames:
            if frame.opcode is Opcode.CLOSE:
                return Close.parse(frame.data).code
        return None
