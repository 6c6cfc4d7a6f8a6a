"""A thin test client for the server tests: real websockets, typed frames."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import msgspec
from websockets.asyncio.client import ClientConnection, connect

from mfu_tui.protocol import (
    Cancelled,
    Chunk,
    Complete,
    Frame,
    ServerFrame,
    decode_server,
    encode,
)

T = TypeVar("T")

#: Safety net only: tests wait on frames, and this bounds a hang.
TIMEOUT = 15.0


class Peer:
    """One client connection with helpers to send frames and wait for answers."""

    def __init__(self, websocket: ClientConnection) -> None:
        self.ws = websocket
        #: Every frame received, in order.
        self.received: list[ServerFrame] = []
        self._cursor = 0

    async def send(self, frame: Frame | dict[str, Any] | str | bytes) -> None:
        if isinstance(frame, Frame):
            await self.ws.send(encode(frame).decode())
        elif isinstance(frame, dict):
            await self.ws.send(msgspec.json.encode(frame).decode())
        else:
            await self.ws.send(frame)

    async def recv(self, timeout: float = TIMEOUT) -> ServerFrame:
        """The next frame not consumed yet."""
        if self._cursor == len(self.received):
            data = await asyncio.wait_for(self.ws.recv(), timeout)
            self.received.append(decode_server(data))
        frame = self.received[self._cursor]
        self._cursor += 1
        return frame

    async def expect(self, kind: type[T], timeout: float = TIMEOUT, **fields: Any) -> T:
        """Skip frames until one of ``kind`` whose attributes equal ``fields``."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.recv(timeout)
                if isinstance(frame, kind) and all(getattr(frame, k) == v for k, v in fields.items()):
                    return frame

    async def stream(self, message_id: str, timeout: float = TIMEOUT) -> tuple[list[Chunk], Complete | Cancelled]:
        """The chunks of ``message_id`` up to its end frame."""
        chunks: list[Chunk] = []
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.recv(timeout)
                if isinstance(frame, Chunk) and frame.message_id == message_id:
                    chunks.append(frame)
                elif isinstance(frame, (Complete, Cancelled)) and frame.message_id == message_id:
                    return chunks, frame

    async def close_code(self, timeout: float = TIMEOUT) -> int | None:
        """Read until the server closes; the close code it sent."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(timeout):
                async for data in self.ws:
                    self.received.append(decode_server(data))
        await asyncio.wait_for(self.ws.wait_closed(), timeout)
        return self.ws.close_code


@contextlib.asynccontextmanager
async def peer(
    url: str, token: str | None, *, query: str = "", header: bool = True, **options: Any
) -> AsyncIterator[Peer]:
    """Connect with the token in the Authorization header (or in ``?token=`` with ``header=False``)."""
    headers = {"Authorization": f"Bearer {token}"} if token and header else None
    if token and not header:
        query = f"token={token}" + (f"&{query}" if query else "")
    target = f"{url}?{query}" if query else url
    async with connect(target, additional_headers=headers, proxy=None, open_timeout=TIMEOUT, **options) as websocket:
        yield Peer(websocket)


def new_id() -> str:
    return str(uuid.uuid4())


def text_of(chunks: list[Chunk]) -> str:
    """The answer the chunks make (their reasoning left out)."""
    return "".join(chunk.content for chunk in chunks if chunk.kind == "content")


def reasoning_of(chunks: list[Chunk]) -> str:
    """The reasoning the chunks make."""
    return "".join(chunk.content for chunk in chunks if chunk.kind == "reasoning")
