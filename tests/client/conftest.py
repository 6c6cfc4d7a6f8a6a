"""Fixtures of the client tests: clients with fast settings, and a recorder to wait on."""

from __future__ import annotations

import pytest

from mfu_tui.client import ChatClient
from tests.support.quick_client import quick_client
from tests.support.recorder import Recorder


@pytest.fixture
async def make_client(tmp_path):
    """``make_client(url, token, **options)`` -> ``(client, recorder)``; all closed at the end."""
    clients: list[ChatClient] = []

    def make(url: str, token: str, **options) -> tuple[ChatClient, Recorder]:
        data_dir = options.pop("data_dir", tmp_path / "client-data")
        client = quick_client(url, token, data_dir, **options)
        clients.append(client)
        return client, Recorder(client)

    yield make
    for client in clients:
        await client.close()
