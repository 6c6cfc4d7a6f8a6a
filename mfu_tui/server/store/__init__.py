"""Storage of chats, messages and streamed chunks."""

from __future__ import annotations

from pathlib import Path

from mfu_tui.server.store.base import (
    AnswerFigures,
    AttachmentsNotReady,
    BadCursor,
    ChatBusy,
    ChatChange,
    Edit,
    Exchange,
    Imported,
    ImportGap,
    Interrupted,
    MessageState,
    NotEditable,
    Status,
    Store,
    Upload,
    UploadRefused,
    UploadTooLarge,
)
from mfu_tui.server.store.group_commit import Fenced
from mfu_tui.server.store.sqlite import SqliteStore

__all__ = [
    "AnswerFigures",
    "AttachmentsNotReady",
    "BadCursor",
    "ChatBusy",
    "ChatChange",
    "Edit",
    "Exchange",
    "Fenced",
    "ImportGap",
    "Imported",
    "Interrupted",
    "MessageState",
    "NotEditable",
    "SqliteStore",
    "Status",
    "Store",
    "Upload",
    "UploadRefused",
    "UploadTooLarge",
    "make_store",
]


def make_store(
    location: Path | str, *, node_id: str = "", lease: float = 10.0, workers_dir: Path | None = None
) -> Store:
    """The store for ``--db``: PostgreSQL for a ``postgresql://`` URL, else a SQLite file.

    ``node_id`` and ``lease`` matter to a store that several nodes share
    (PostgreSQL); ``workers_dir``: a SQLite file shared by the workers of one
    ``mfu-chat serve --workers N`` (this one named ``node_id``), whose writers
    take turns through a lock file in their supervisor's directory.
    """
    from mfu_tui.server.store.postgres import PostgresStore, is_postgres_url

    if is_postgres_url(location):
        return PostgresStore(str(location), node_id=node_id, lease=lease)
    if workers_dir is None:
        return SqliteStore(Path(location))
    return SqliteStore(Path(location), node_id=node_id, writer_lock=workers_dir / "sqlite-writer.lock")
