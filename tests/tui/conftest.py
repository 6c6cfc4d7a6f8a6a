"""Fixtures of the app's tests: a real server per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.server import RunningServer, running_server

#: Short answers, streamed at once: the flows do not wait on the model.
WORDS = 52


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    """The real server on a free loopback port, with short demo answers."""
    async with running_server(tmp_path, demo_words=WORDS, demo_delay_ms=0) as running:
        yield running


@pytest.fixture
async def slow_server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A server whose answers take long enough to be cancelled."""
    async with running_server(tmp_path, demo_words=400, demo_delay_ms=30) as running:
        yield running
