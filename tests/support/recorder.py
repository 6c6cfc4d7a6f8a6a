"""What a ``ChatClient`` emitted, to wait on and to check: shared by the client and cluster tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from mfu_tui.client import ChatClient, ClientError, ConnectionState, Status
from mfu_tui.protocol import Chunk, Complete

#: A safety net only: every wait below ends on an event long before this.
WAIT = 30.0


class Recorder:
    """Everything a client emitted, with a way to wait until a condition holds."""

    def __init__(self, client: ChatClient) -> None:
        self.client = client
        self.frames: list = []
        self.errors: list[ClientError] = []
        self.states: list[ConnectionState] = []
        self.opens = 0
        # Frames by class, so that waiting on "a Complete came" stays O(1) per frame.
        self._by_type: dict[type, list] = {}
        self._changed = asyncio.Event()
        client.on_message(self._add_frame)
        client.on_error(lambda error: self._add(self.errors, error))
        client.on_state(lambda state: self._add(self.states, state))
        client.on_open(self._opened)

    def _opened(self) -> None:
        self.opens += 1
        self._poke()

    def _add_frame(self, frame: object) -> None:
        self._by_type.setdefault(type(frame), []).append(frame)
        self._add(self.frames, frame)

    def _add(self, bucket: list, item: object) -> None:
        bucket.append(item)
        self._poke()

    def _poke(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, condition: Callable[[], object], timeout: float = WAIT) -> None:
        """Wait until ``condition()`` is true, re-checking after every event."""
        async with asyncio.timeout(timeout):
            while not condition():
                await self._changed.wait()

    async def wait_status(self, status: Status) -> ConnectionState:
        await self.wait_for(lambda: self.client.state.status is status)
        return self.client.state

    def of_type(self, kind: type) -> list:
        """The frames of class ``kind``, in arrival order."""
        return self._by_type.get(kind, [])


def assert_delivered_once_in_order(events, message_id: str) -> str:
    """Chunks 1..n, each once, then one Complete with seq n; returns their text (the answer's, reasoning left out)."""
    chunks = [f for f in events.of_type(Chunk) if f.message_id == message_id]
    ends = [f for f in events.of_type(Complete) if f.message_id == message_id]
    assert [c.seq for c in chunks] == list(range(1, len(chunks) + 1))
    assert len(ends) == 1 and ends[0].seq == len(chunks)
    assert events.frames.index(ends[0]) > events.frames.index(chunks[-1])
    return "".join(c.content for c in chunks if c.kind == "content")
