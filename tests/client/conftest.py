"""Fixtures of the client tests: clients with fast settings, and a recorder to wait on."""

from __future__ import annotations

import pytest

from mfu_tui.client import Backoff, ChatClient
from tests.support.recorder import Recorder


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
