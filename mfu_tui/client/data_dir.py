"""Where the client keeps its files (the outbox, the read cache) when it is not told."""

from __future__ import annotations

from pathlib import Path


def default_data_dir() -> Path:
    """Where the outbox lives by default: the platform's user data directory."""
    import platformdirs

    return platformdirs.user_data_path("mfu-chat", appauthor=False)
