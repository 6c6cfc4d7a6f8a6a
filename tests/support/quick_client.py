"""A ``ChatClient`` with the tests' quick settings: it finds a dead link in seconds and reconnects at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mfu_tui.client import Backoff, ChatClient


def quick_client(url: str, token: str, data_dir: Path, **options: Any) -> ChatClient:
    """A client of ``url`` keeping its outbox in ``data_dir``; ``options`` override the quick settings."""
    settings: dict[str, Any] = {
        "ping_interval": 1.0,
        "ping_timeout": 5.0,  # generous: a slow CI box must not fake a dead link
        "request_timeout": 10.0,
        "open_timeout": 5.0,
        "backoff": Backoff(base=0.05, cap=0.5, random=lambda: 1.0),
        **options,
    }
    return ChatClient(url, token, data_dir=data_dir, **settings)
