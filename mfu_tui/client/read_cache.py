"""A local copy of what the server last sent, to read chats while it cannot be reached.

``ReadCache`` keeps the first page of the chat list and the newest page of
each chat opened, exactly as the server sent them (only what the server
acknowledged, so nothing in it can pass for sent when it was not), in a
SQLite file only the user can read (0600). It is bounded: past
``max_bytes`` of chats, those read longest ago go. It is only a cache: a file
that cannot be read is set aside and started again, never an error for the
user.

Its methods block on the disk; ``ChatClient`` calls them in a thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import msgspec

from mfu_tui.protocol import (
    ChatDetail,
    ChatSummary,
    SearchHit,
    SearchResults,
    in_list_order,
    matches,
    search_words,
    snippet,
)

log = logging.getLogger(__name__)

#: Bytes of chats kept by default (the chat list is small and not counted).
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
#: Search hits returned at most.
MAX_HITS = 50

_Record = TypeVar("_Record", ChatSummary, ChatDetail)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chat_list (position INTEGER PRIMARY KEY, id TEXT NOT NULL, summary BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS chats (
    id      TEXT PRIMARY KEY,
    detail  BLOB NOT NULL,   -- the ChatDetail as the server sent it (JSON)
    read_at REAL NOT NULL    -- when it was last kept or read: the oldest go first
);
"""


class ReadCache:
    """The chat list and the chats last read, kept on disk for reading offline.

    Example::

        cache = ReadCache(data_dir / "cache-0123abcd.sqlite3")
        cache.keep_chat(detail)
        cache.chat(detail.chat.id)  # the same detail, even with the server gone
    """

    def __init__(self, path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        """
        Args:
            path: The SQLite file (made with mode 0600 if missing).
            max_bytes: Bytes of chats kept; the chats read longest ago go first.
        """
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._db = self._open()

    def keep_chats(self, chats: list[ChatSummary]) -> None:
        """Remember the first page of the chat list, replacing the one kept."""
        with self._writing() as db:
            _replace_list(db, chats)

    def keep_chat(self, detail: ChatDetail) -> None:
        """Remember a chat's newest page; drop the chats read longest ago past ``max_bytes``."""
        with self._writing() as db:
            db.execute(
                "INSERT OR REPLACE INTO chats (id, detail, read_at) VALUES (?, ?, ?)",
                (detail.chat.id, msgspec.json.encode(detail), time.time()),
            )
            total = 0
            for chat_id, size in db.execute("SELECT id, length(detail) FROM chats ORDER BY read_at DESC").fetchall():
                total += size
                if total > self.max_bytes and chat_id != detail.chat.id:
                    db.execute("DELETE FROM chats WHERE id = ?", (chat_id,))

    def keep_listed(self, chat: ChatSummary) -> None:
        """A chat changed (``chat_updated``: new, renamed, pinned, archived, answered): the kept list follows.

        In the server's order (``in_list_order``). An archived chat leaves the
        kept list (it is of the others). Its kept page, if any, takes a new
        title: rewritten only then, not after every answer (the frame's
        commonest cause), since the page is what opening it offline shows.
        """
        with self._writing() as db:
            rows = db.execute("SELECT summary FROM chat_list ORDER BY position").fetchall()
            listed = [
                kept for (data,) in rows if (kept := _decode(data, ChatSummary)) is not None and kept.id != chat.id
            ]
            _replace_list(db, in_list_order(listed if chat.archived else [*listed, chat]))
            row = db.execute("SELECT detail FROM chats WHERE id = ?", (chat.id,)).fetchone()
            detail = None if row is None else _decode(row[0], ChatDetail)
            if detail is not None and detail.chat.title != chat.title:
                updated = msgspec.structs.replace(detail, chat=chat)
                db.execute("UPDATE chats SET detail = ? WHERE id = ?", (msgspec.json.encode(updated), chat.id))

    def forget_chat(self, chat_id: str) -> None:
        """A chat was deleted: keep nothing of it."""
        with self._writing() as db:
            db.execute("DELETE FROM chats WHERE id = ?", (chat_id,))
            db.execute("DELETE FROM chat_list WHERE id = ?", (chat_id,))

    def forget_everything(self) -> None:
        """The account's data was deleted on the server: keep nothing of it."""
        with self._writing() as db:
            db.execute("DELETE FROM chats")
            db.execute("DELETE FROM chat_list")

    def chats(self) -> list[ChatSummary]:
        """The chat list as last kept, newest first."""
        rows = self._rows("SELECT summary FROM chat_list ORDER BY position")
        return [chat for (data,) in rows if (chat := _decode(data, ChatSummary)) is not None]

    def chat(self, chat_id: str) -> ChatDetail | None:
        """The chat's newest page as last kept, or ``None``."""
        rows = self._rows("SELECT detail FROM chats WHERE id = ?", (chat_id,))
        if not rows:
            return None
        with self._writing() as db:
            db.execute("UPDATE chats SET read_at = ? WHERE id = ?", (time.time(), chat_id))
        return _decode(rows[0][0], ChatDetail)

    def search(self, query: str) -> SearchResults:
        """Messages of the kept chats that hold the words of ``query``, newest first, as ``search`` answers."""
        words = search_words(query)
        if not words:
            return SearchResults(hits=[])
        rows = self._rows("SELECT detail FROM chats")
        hits: list[tuple[tuple[datetime, int], SearchHit]] = []
        for (data,) in rows:
            detail = _decode(data, ChatDetail)
            if detail is None:
                continue
            for position, message in enumerate(detail.messages):
                if matches(message.content, words):
                    piece, highlights = snippet(message.content, words)
                    hit = SearchHit(
                        chat_id=detail.chat.id,
                        chat_title=detail.chat.title,
                        message_id=message.id,
                        role=message.role,
                        snippet=piece,
                        highlights=highlights,
                        created_at=message.created_at,
                    )
                    # A question and its answer share a time: the answer, later in the chat, comes first.
                    hits.append(((message.created_at, position), hit))
        hits.sort(key=lambda pair: pair[0], reverse=True)
        return SearchResults(hits=[hit for _, hit in hits[:MAX_HITS]])

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()

    def _rows(self, query: str, parameters: tuple[str, ...] = ()) -> list[tuple[bytes]]:
        """What ``query`` reads, or nothing if the file cannot be read (damaged while open): the server has it."""
        with self._lock:
            try:
                return self._db.execute(query, parameters).fetchall()
            except sqlite3.Error as error:
                log.warning("the read cache %s could not be read: %s", self.path, error)
                return []

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                with self._db:  # one transaction
                    yield self._db
            except sqlite3.Error as error:
                # Only a cache: what could not be kept is read from the server next time.
                log.warning("the read cache %s could not be written: %s", self.path, error)

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))  # private before SQLite writes a byte
        try:
            return self._connect()
        except sqlite3.DatabaseError as error:
            log.warning("the read cache %s is unreadable (%s): starting a new one", self.path, error)
            self.path.replace(self.path.with_name(self.path.name + ".unreadable"))
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
            return self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level="DEFERRED")
        try:
            db.executescript(_SCHEMA)
        except sqlite3.DatabaseError:
            db.close()
            raise
        db.execute("PRAGMA secure_delete = ON")  # what is forgotten (a deleted chat, account) is overwritten
        # Not flushed to the disk at each write: a copy of what the server has, written after every answer
        # (``keep_listed``), where a flush cost 1 to 20 ms here, more on a network home directory. A write
        # lost with the machine is read again from the server; a file damaged by it is set aside (``_open``)
        # or reads as nothing kept (``_rows``). The rollback journal stays: WAL needs a local disk.
        db.execute("PRAGMA synchronous = OFF")
        return db


def _replace_list(db: sqlite3.Connection, chats: list[ChatSummary]) -> None:
    """Make ``chats``, in their order, the kept chat list."""
    db.execute("DELETE FROM chat_list")
    db.executemany(
        "INSERT INTO chat_list (position, id, summary) VALUES (?, ?, ?)",
        [(position, chat.id, msgspec.json.encode(chat)) for position, chat in enumerate(chats)],
    )


def _decode(data: bytes, kind: type[_Record]) -> _Record | None:
    """A kept record, or ``None`` if it no longer decodes (written by another version): skipped."""
    try:
        return msgspec.json.decode(data, type=kind)
    except msgspec.DecodeError:  # ValidationError included
        return None
