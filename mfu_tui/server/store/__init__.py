"""Storage of chats, messages and streamed chunks."""

from __future__ import annotations

from pathlib import Path

from mfu_tui.server.store.base import (
    BadCursor,
    Edit,
    Exchange,
    MessageState,
    NotEditable,
    Store,
)
from mfu_tui.server.store.sqlite import SqliteStore

__all__ = ["BadCursor", "Edit", "Exchange", "MessageState", "NotEditable", "SqliteStore", "Store", "make_store"]


def make_store(location: Path | str, commit_interval: float) -> Store:
    """The store for ``--db``: PostgreSQL for a ``postgresql://`` URL, else a SQLite file."""
    from mfu_tui.server.store.postgres import PostgresStore, is_postgres_url

    if is_postgres_url(location):
        return PostgresStore(str(location), commit_interval)
    return SqliteStore(Path(location), commit_interval)
