"""Fixtures of the client tests: clients with fast settings, and a recorder to wait on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from mfu_tui.client import Backoff, ChatClient, ClientError, ConnectionState, Status

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


@pytest.fixture
async def make_client(tmp_path):
    """``make_client(url, token, **options)`` -> ``(client, recorder)``; all closed at the end."""
    clients: list[ChatClient] = []

    def make(url: str, token: str, **options) -> tuple[ChatClient, Recorder]:
        options.setdefault("data_dir", tmp_path / "client-data")
        options.setdefault("ping_interval", 1.0)
        options.setdefault("ping_timeout", 5.0)  # generous: a slow CI box must not fake a dead link
        options.setdefault("request_timeout", 10.0)
        options.setdefault("open_timeout", 5.0)
        options.setdefault("backoff", Backoff(base=0.05, cap=0.5, random=lambda: 1.0))
        client = ChatClient(url, token, **options)
        clients.append(client)
        return client, Recorder(client)

    yield make
    for client in clients:
        await client.close()
