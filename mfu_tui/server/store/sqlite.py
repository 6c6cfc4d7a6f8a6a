"""The SQLite store: one writer thread with group commit, readers in a pool.

Writes (a user message, each chunk of a reply, an edit) are queued to a
single writer thread. It waits ``commit_interval`` after the first write
arrives, then runs everything queued in ONE transaction and settles all their
futures with one hop back to the event loop. So 500 concurrent streams cost
a few hundred commits a second, not thousands, and the loop never waits for
the disk. Chunks of the batch go in first with one ``executemany``: a chunk
is always queued before the ``finish_message`` of its reply, so running
them first keeps every read-after-write the code relies on.

Reads run on a small thread pool, each thread with its own connection; WAL
lets them proceed while the writer commits.

``synchronous=NORMAL`` in WAL mode: a committed transaction survives a crash
of the process (kill -9), which is the failure the protocol's "persist, then
send" is about; a power cut may lose the last few milliseconds.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from mfu_tui.protocol import (
    AttachmentPart,
    ChatDetail,
    ChatPage,
    ChatSettings,
    ChatSummary,
    ImportChat,
    SearchResults,
    UpdatedChat,
)
from mfu_tui.server.model_input import ModelTurn
from mfu_tui.server.store.base import (
    AnswerFigures,
    AttachmentsNotReady,
    BadCursor,
    ChatChange,
    Edit,
    Exchange,
    Imported,
    Interrupted,
    ListedChat,
    MessageState,
    NotEditable,
    Status,
    Store,
    Upload,
    UploadTooLarge,
)
from mfu_tui.server.store.batch import ChunkWrite, Outcome, settle
from mfu_tui.server.store.rows import (
    END_OF_CHAT,
    MESSAGE_COLUMNS,
    SETTINGS_COLUMNS,
    STATE_COLUMNS,
    SUMMARY_COLUMNS,
    UPLOAD_COLUMNS,
    changed_columns,
    check_same_upload,
    figures_values,
    imported_finish_reason,
    make_title,
    message_of,
    message_position,
    new_entries,
    new_id,
    page_cursor,
    page_length,
    parse_cursor,
    settings_of,
    settings_values,
    state_of,
    summary_of,
    turns_of,
    upload_of,
    with_attachments,
)
from mfu_tui.server.store.search import INDEXED_CHARS, fts5_query, hit_of

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: The tables of schema version 2, created if missing; ``MIGRATIONS`` take them on from there.
SCHEMA = """
CREATE TABLE IF NOT EXISTS chats (
    id            TEXT PRIMARY KEY,
    user          TEXT NOT NULL,
    title         TEXT NOT NULL,
    model_id      TEXT,
    pinned        INTEGER NOT NULL DEFAULT 0,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL,
    message_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS chats_of_user ON chats (user, updated_at DESC, id DESC);

CREATE TABLE IF NOT EXISTS messages (
    n                 INTEGER PRIMARY KEY,  -- order of messages within a chat
    id                TEXT NOT NULL UNIQUE,
    chat_id           TEXT NOT NULL,
    user              TEXT NOT NULL,
    role              TEXT NOT NULL,        -- user | assistant
    content           TEXT NOT NULL,        -- a streaming reply: '' until it ends (see chunks)
    status            TEXT NOT NULL,        -- complete | streaming | cancelled | error
    seq               INTEGER NOT NULL DEFAULT 0,
    finish_reason     TEXT,
    model_id          TEXT,
    client_message_id TEXT,                 -- user messages: the sender's idempotency key
    reply_to          TEXT,                 -- assistant messages: the user message answered
    created_at        REAL NOT NULL,
    edited_at         REAL,
    ended_at          REAL
);
CREATE INDEX IF NOT EXISTS messages_of_chat ON messages (chat_id, n);
CREATE INDEX IF NOT EXISTS replies ON messages (reply_to) WHERE reply_to IS NOT NULL;
CREATE INDEX IF NOT EXISTS streaming ON messages (status) WHERE status = 'streaming';
CREATE UNIQUE INDEX IF NOT EXISTS client_ids ON messages (user, client_message_id)
    WHERE client_message_id IS NOT NULL;

-- The pieces of assistant replies as streamed, for resume; pruned after the replay window.
CREATE TABLE IF NOT EXISTS chunks (
    message_id TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    content    TEXT NOT NULL,
    PRIMARY KEY (message_id, seq)
) WITHOUT ROWID;

-- Applied edits by their sender's idempotency key, so a resent edit_message is applied once.
CREATE TABLE IF NOT EXISTS edits (
    user           TEXT NOT NULL,
    client_edit_id TEXT NOT NULL,
    chat_id        TEXT NOT NULL,
    message_id     TEXT NOT NULL,
    content        TEXT NOT NULL,
    edited_at      REAL NOT NULL,
    reply_id       TEXT,
    PRIMARY KEY (user, client_edit_id)
) WITHOUT ROWID;

-- Full-text search over the first 100,000 characters of each message (search.INDEXED_CHARS),
-- by messages.n. Contentless: the text stays in messages only. The triggers keep it in step
-- in the transaction of every write (an answer's text is indexed when finish_message stores
-- it); a contentless index forgets a row given the text it indexed, which OLD holds.
CREATE VIRTUAL TABLE IF NOT EXISTS message_search USING fts5(
    body, content='', tokenize='unicode61 remove_diacritics 0'
);
CREATE TRIGGER IF NOT EXISTS message_search_insert AFTER INSERT ON messages BEGIN
    INSERT INTO message_search (rowid, body) VALUES (new.n, substr(new.content, 1, 100000));
END;
CREATE TRIGGER IF NOT EXISTS message_search_delete AFTER DELETE ON messages BEGIN
    INSERT INTO message_search (message_search, rowid, body) VALUES ('delete', old.n, substr(old.content, 1, 100000));
END;
CREATE TRIGGER IF NOT EXISTS message_search_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO message_search (message_search, rowid, body) VALUES ('delete', old.n, substr(old.content, 1, 100000));
    INSERT INTO message_search (rowid, body) VALUES (new.n, substr(new.content, 1, 100000));
END;
"""

#: ``(version, SQL)`` after ``SCHEMA``, each applied once in a transaction of its own and
#: recorded in ``PRAGMA user_version``; never edit a released step, add a new one.
MIGRATIONS: list[tuple[int, str]] = [
    (
        3,
        """
        -- Bytes of text each chat stores (its messages' content, and the edits kept for
        -- idempotency), so a user's usage is a sum over their chats, not over every message.
        -- Triggers keep it, in the transaction of every write, whichever code does the write.
        ALTER TABLE chats ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
        UPDATE chats SET bytes =
            (SELECT COALESCE(SUM(length(CAST(content AS BLOB))), 0) FROM messages WHERE chat_id = chats.id)
            + (SELECT COALESCE(SUM(length(CAST(content AS BLOB))), 0) FROM edits WHERE chat_id = chats.id);
        -- (WHEN: an empty reply inserted, or a reply ended with no text, writes nothing.)
        CREATE TRIGGER message_bytes_added AFTER INSERT ON messages WHEN NEW.content != '' BEGIN
            UPDATE chats SET bytes = bytes + length(CAST(NEW.content AS BLOB)) WHERE id = NEW.chat_id;
        END;
        CREATE TRIGGER message_bytes_changed AFTER UPDATE OF content ON messages
        WHEN NEW.content IS NOT OLD.content BEGIN
            UPDATE chats SET bytes = bytes + length(CAST(NEW.content AS BLOB)) - length(CAST(OLD.content AS BLOB))
            WHERE id = NEW.chat_id;
        END;
        CREATE TRIGGER message_bytes_removed AFTER DELETE ON messages WHEN OLD.content != '' BEGIN
            UPDATE chats SET bytes = bytes - length(CAST(OLD.content AS BLOB)) WHERE id = OLD.chat_id;
        END;
        CREATE TRIGGER edit_bytes_added AFTER INSERT ON edits BEGIN
            UPDATE chats SET bytes = bytes + length(CAST(NEW.content AS BLOB)) WHERE id = NEW.chat_id;
        END;
        CREATE TRIGGER edit_bytes_removed AFTER DELETE ON edits BEGIN
            UPDATE chats SET bytes = bytes - length(CAST(OLD.content AS BLOB)) WHERE id = OLD.chat_id;
        END;
        """,
    ),
    (
        4,
        """
        -- Search: index the messages stored before the index existed (SCHEMA made it and its triggers).
        INSERT INTO message_search (rowid, body) SELECT n, substr(content, 1, 100000) FROM messages;
        """,
    ),
    (
        5,
        """
        -- Archived chats are listed apart; each chat's system prompt and sampling parameters
        -- (NULL: none, the model's default).
        ALTER TABLE chats ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE chats ADD COLUMN system_prompt TEXT;
        ALTER TABLE chats ADD COLUMN temperature REAL;
        ALTER TABLE chats ADD COLUMN top_p REAL;
        ALTER TABLE chats ADD COLUMN max_tokens INTEGER;
        ALTER TABLE chats ADD COLUMN seed INTEGER;
        -- list_chats: one section of a user's chats, pinned first, each newest first.
        CREATE INDEX chats_listed ON chats (user, archived, pinned DESC, updated_at DESC, id DESC);
        """,
    ),
    (
        7,
        """
        -- Imported chats (import_chat): the key naming the conversation where it came from, unique
        -- per user, and how many of its entries are stored, so a part sent again stores nothing.
        ALTER TABLE chats ADD COLUMN import_key TEXT;
        ALTER TABLE chats ADD COLUMN imported INTEGER NOT NULL DEFAULT 0;
        CREATE UNIQUE INDEX chat_import_keys ON chats (user, import_key) WHERE import_key IS NOT NULL;
        """,
    ),
    (
        8,
        """
        -- What the server measured of each answer (NULL: not known, as for user messages
        -- and the answers stored before): the tokens the model server reported, the time
        -- to the first piece of text, and the tokens per second after it.
        ALTER TABLE messages ADD COLUMN prompt_tokens INTEGER;
        ALTER TABLE messages ADD COLUMN completion_tokens INTEGER;
        ALTER TABLE messages ADD COLUMN first_token_ms INTEGER;
        ALTER TABLE messages ADD COLUMN tokens_per_second REAL;
        """,
    ),
    (
        9,
        """
        -- Files sent with user messages (attachment_part), by their sender's key; message_id and
        -- chat_id once a message took the file, NULL while it is unsent. Their bytes are in
        -- attachment_parts as they came, one row a part, read in order of start.
        CREATE TABLE attachments (
            id                   TEXT PRIMARY KEY,
            user                 TEXT NOT NULL,
            client_attachment_id TEXT NOT NULL,
            name                 TEXT NOT NULL,
            media_type           TEXT NOT NULL,
            size                 INTEGER NOT NULL,
            received             INTEGER NOT NULL DEFAULT 0,
            created_at           REAL NOT NULL,
            chat_id              TEXT,
            message_id           TEXT,
            position             INTEGER
        );
        CREATE UNIQUE INDEX attachment_keys ON attachments (user, client_attachment_id);
        CREATE INDEX attachments_unsent ON attachments (user, created_at) WHERE message_id IS NULL;
        CREATE INDEX attachments_of_chat ON attachments (chat_id, message_id, position) WHERE chat_id IS NOT NULL;
        CREATE TABLE attachment_parts (
            attachment_id TEXT NOT NULL,
            start         INTEGER NOT NULL,
            data          BLOB NOT NULL,
            PRIMARY KEY (attachment_id, start)
        );
        """,
    ),
    (
        10,
        """
        -- A chat's system prompt counts toward its bytes like its messages: otherwise a user could
        -- hold 20,000 characters per chat outside the storage quota.
        UPDATE chats SET bytes = bytes + length(CAST(system_prompt AS BLOB)) WHERE system_prompt IS NOT NULL;
        CREATE TRIGGER prompt_bytes_added AFTER INSERT ON chats WHEN NEW.system_prompt IS NOT NULL BEGIN
            UPDATE chats SET bytes = bytes + length(CAST(NEW.system_prompt AS BLOB)) WHERE id = NEW.id;
        END;
        CREATE TRIGGER prompt_bytes_changed AFTER UPDATE OF system_prompt ON chats
        WHEN NEW.system_prompt IS NOT OLD.system_prompt BEGIN
            UPDATE chats SET bytes = bytes + COALESCE(length(CAST(NEW.system_prompt AS BLOB)), 0)
                - COALESCE(length(CAST(OLD.system_prompt AS BLOB)), 0)
            WHERE id = NEW.id;
        END;
        """,
    ),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]


class _Write:
    """One queued write: a function of the writer's connection, and its future."""

    __slots__ = ("function", "future")

    def __init__(self, function: Callable[[sqlite3.Connection], Any], future: asyncio.Future[Any]) -> None:
        self.function = function
        self.future = future


_STOP = object()

#: A write's future with its result or its error.


class SqliteStore(Store):
    """``Store`` on one SQLite file.

    Args:
        path: The database file (created with its directory if missing).
        commit_interval: Seconds the writer waits after the first queued write
            to gather more into the same commit.
    """

    def __init__(self, path: Path, commit_interval: float = 0.005) -> None:
        self.path = Path(path)
        self.commit_interval = commit_interval
        self._queue: collections.deque[Any] = collections.deque()
        self._wake = threading.Event()
        self._writer: threading.Thread | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._reader_local = threading.local()
        self._reader_connections: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Commits done, for benchmarks and tests of the batching.
        self.commits = 0

    # --- life cycle ---------------------------------------------------------

    async def open(self) -> list[Interrupted]:
        self._loop = asyncio.get_running_loop()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            # Chats are private: the file (and the -wal/-shm files SQLite
            # creates with the same mode) is readable by its owner only.
            self.path.touch(mode=0o600)
        connection = self._connect()
        connection.execute("PRAGMA journal_mode=WAL")
        connection.executescript(SCHEMA)
        _migrate(connection)
        self._writer = threading.Thread(
            target=self._write_loop, args=(connection,), name="mfu-store-writer", daemon=True
        )
        self._writer.start()
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mfu-store-reader")
        return await self._write(_recover_interrupted)

    async def close(self) -> None:
        if self._writer is None:
            return
        self._queue.append(_STOP)
        self._wake.set()
        await asyncio.to_thread(self._writer.join)
        self._writer = None
        if self._readers is not None:
            self._readers.shutdown(wait=True)
            self._readers = None
        for connection in self._reader_connections:
            connection.close()
        self._reader_connections.clear()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA busy_timeout=30000")
        return connection

    # --- the writer thread --------------------------------------------------

    def _write_loop(self, connection: sqlite3.Connection) -> None:
        stopping = False
        while not stopping:
            self._wake.wait()
            self._wake.clear()
            if self.commit_interval > 0:
                time.sleep(self.commit_interval)
            batch = []
            while self._queue:
                item = self._queue.popleft()
                if item is _STOP:
                    stopping = True
                    continue
                batch.append(item)
            if batch:
                self._commit(connection, batch)
        connection.close()

    def _commit(self, connection: sqlite3.Connection, batch: list[Any]) -> None:
        try:
            outcomes = self._transaction(connection, batch)
        except Exception:
            # Something failed below the level of one write (a chunk insert,
            # the commit itself). Retry each write alone, so one bad write
            # does not fail the unrelated ones that shared its batch.
            log.exception("a group commit of %d writes failed; retrying them one by one", len(batch))
            outcomes = []
            for write in batch:
                try:
                    outcomes += self._transaction(connection, [write])
                except Exception as error:
                    outcomes.append((write.future, None, error))
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(settle, outcomes)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    def _transaction(self, connection: sqlite3.Connection, batch: list[Any]) -> list[Outcome]:
        """Run ``batch`` in one transaction; the outcome of each write, in settling order."""
        outcomes: list[Outcome] = []
        connection.execute("BEGIN IMMEDIATE")
        try:
            chunks = [write for write in batch if isinstance(write, ChunkWrite)]
            if chunks:
                connection.executemany(
                    "INSERT INTO chunks (message_id, seq, content) VALUES (?, ?, ?)", [write.row for write in chunks]
                )
                outcomes.extend((write.future, None, None) for write in chunks)
            for write in batch:
                if isinstance(write, _Write):
                    outcomes.append((write.future, *self._run_one(connection, write)))
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        self.commits += 1
        return outcomes

    @staticmethod
    def _run_one(connection: sqlite3.Connection, write: _Write) -> tuple[Any, BaseException | None]:
        # A savepoint per write: one failing write must not undo the others of its batch.
        connection.execute("SAVEPOINT one")
        try:
            result = write.function(connection)
        except Exception as error:
            connection.execute("ROLLBACK TO one")
            connection.execute("RELEASE one")
            return None, error
        connection.execute("RELEASE one")
        return result, None

    def _write(self, function: Callable[[sqlite3.Connection], _T]) -> asyncio.Future[_T]:
        if self._writer is None or self._loop is None:
            raise RuntimeError("the store is not open")
        future: asyncio.Future[_T] = self._loop.create_future()
        self._queue.append(_Write(function, future))
        if not self._wake.is_set():
            self._wake.set()
        return future

    # --- readers --------------------------------------------------------------

    async def _read(self, function: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._readers is None or self._loop is None:
            raise RuntimeError("the store is not open")
        return await self._loop.run_in_executor(self._readers, self._run_read, function)

    def _run_read(self, function: Callable[[sqlite3.Connection], _T]) -> _T:
        connection = getattr(self._reader_local, "connection", None)
        if connection is None:
            connection = self._connect()
            connection.execute("PRAGMA query_only=1")
            self._reader_local.connection = connection
            with self._reader_lock:
                self._reader_connections.append(connection)
        return function(connection)

    # --- the Store interface ----------------------------------------------------

    async def record_message(
        self,
        user: str,
        chat_id: str | None,
        content: str,
        client_message_id: str,
        model_id: str | None,
        *,
        settings: ChatSettings | None = None,
        attachments: list[str] | None = None,
    ) -> Exchange | None:
        def write(db: sqlite3.Connection) -> Exchange | None:
            known = _known_exchange(db, user, client_message_id)
            if known is not None:
                return known
            now = time.time()
            created = chat_id is None
            target = chat_id or new_id()
            if created:
                db.execute(
                    f"INSERT INTO chats (id, user, title, model_id, created_at, updated_at, {SETTINGS_COLUMNS})"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        target,
                        user,
                        make_title(content),
                        model_id,
                        now,
                        now,
                        *settings_values(settings or ChatSettings()),
                    ),
                )
            elif db.execute("SELECT 1 FROM chats WHERE id = ? AND user = ?", (target, user)).fetchone() is None:
                return None
            message_id, reply_id = new_id(), new_id()
            db.execute(
                "INSERT INTO messages"
                " (id, chat_id, user, role, content, status, model_id, client_message_id, created_at)"
                " VALUES (?, ?, ?, 'user', ?, 'complete', ?, ?, ?)",
                (message_id, target, user, content, model_id, client_message_id, now),
            )
            for position, key in enumerate(attachments or []):
                taken = db.execute(
                    "UPDATE attachments SET chat_id = ?, message_id = ?, position = ? WHERE user = ?"
                    " AND client_attachment_id = ? AND message_id IS NULL AND received = size",
                    (target, message_id, position, user, key),
                ).rowcount
                if not taken:  # the savepoint of this write undoes the rows above
                    raise AttachmentsNotReady(f"attachment {key!r} is not whole, or was sent with another message")
            db.execute(
                "INSERT INTO messages (id, chat_id, user, role, content, status, model_id, reply_to, created_at)"
                " VALUES (?, ?, ?, 'assistant', '', 'streaming', ?, ?, ?)",
                (reply_id, target, user, model_id, message_id, now),
            )
            db.execute(
                "UPDATE chats SET updated_at = ?, message_count = message_count + 2, model_id = COALESCE(?, model_id)"
                " WHERE id = ?",
                (now, model_id, target),
            )
            chat = _summary(db, target)
            assert chat is not None  # created or checked above, in this transaction
            return Exchange(
                chat=chat,
                user_message_id=message_id,
                reply_id=reply_id,
                history=_history(db, target, reply_id),
                created=created,
                settings=_settings(db, target),
            )

        return await self._write(write)

    async def store_part(self, user: str, part: AttachmentPart, *, unsent_limit: int, expire_before: float) -> int:
        def write(db: sqlite3.Connection) -> int:
            row = db.execute(
                f"SELECT id, {UPLOAD_COLUMNS} FROM attachments WHERE user = ? AND client_attachment_id = ?",
                (user, part.client_attachment_id),
            ).fetchone()
            if row is None:
                if part.offset != 0:
                    return 0
                expired = "SELECT id FROM attachments WHERE user = ? AND message_id IS NULL AND created_at < ?"
                db.execute(f"DELETE FROM attachment_parts WHERE attachment_id IN ({expired})", (user, expire_before))
                db.execute(
                    "DELETE FROM attachments WHERE user = ? AND message_id IS NULL AND created_at < ?",
                    (user, expire_before),
                )
                unsent = db.execute(
                    "SELECT COALESCE(SUM(size), 0) FROM attachments WHERE user = ? AND message_id IS NULL", (user,)
                ).fetchone()[0]
                if unsent + part.size > unsent_limit:
                    raise UploadTooLarge(unsent)
                attachment_id, received = new_id(), 0
                file = (part.client_attachment_id, part.name, part.media_type, part.size)
                db.execute(
                    "INSERT INTO attachments (id, user, client_attachment_id, name, media_type, size, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (attachment_id, user, *file, time.time()),
                )
            else:
                attachment_id, upload = row[0], upload_of(row[1:])
                check_same_upload(upload, part)
                if upload.sent:
                    return upload.size
                if part.offset != upload.received:
                    return upload.received
                received = upload.received
            if part.data:
                db.execute(
                    "INSERT INTO attachment_parts (attachment_id, start, data) VALUES (?, ?, ?)",
                    (attachment_id, part.offset, part.data),
                )
                db.execute(
                    "UPDATE attachments SET received = received + ? WHERE id = ?", (len(part.data), attachment_id)
                )
            return received + len(part.data)

        return await self._write(write)

    async def uploads(self, user: str, client_attachment_ids: list[str]) -> dict[str, Upload]:
        def read(db: sqlite3.Connection) -> dict[str, Upload]:
            marks = ", ".join("?" * len(client_attachment_ids))
            rows = db.execute(
                f"SELECT {UPLOAD_COLUMNS} FROM attachments WHERE user = ? AND client_attachment_id IN ({marks})",
                (user, *client_attachment_ids),
            ).fetchall()
            return {upload.client_attachment_id: upload for upload in map(upload_of, rows)}

        return await self._read(read)

    async def find_exchange(self, user: str, client_message_id: str) -> Exchange | None:
        return await self._read(lambda db: _known_exchange(db, user, client_message_id))

    def append_chunk(self, message_id: str, seq: int, content: str) -> asyncio.Future[None]:
        if self._writer is None or self._loop is None:
            raise RuntimeError("the store is not open")
        future: asyncio.Future[None] = self._loop.create_future()
        self._queue.append(ChunkWrite((message_id, seq, content), future))
        if not self._wake.is_set():
            self._wake.set()
        return future

    async def finish_message(
        self,
        message_id: str,
        content: str,
        status: Status,
        finish_reason: str,
        seq: int,
        figures: AnswerFigures | None = None,
    ) -> ChatSummary:
        def write(db: sqlite3.Connection) -> ChatSummary:
            now = time.time()
            db.execute(
                "UPDATE messages SET content = ?, status = ?, finish_reason = ?, seq = ?, ended_at = ?,"
                " prompt_tokens = ?, completion_tokens = ?, first_token_ms = ?, tokens_per_second = ? WHERE id = ?",
                (content, status, finish_reason, seq, now, *figures_values(figures), message_id),
            )
            row = db.execute("SELECT chat_id FROM messages WHERE id = ?", (message_id,)).fetchone()
            if row is None:
                raise LookupError(f"message {message_id} is gone")
            db.execute("UPDATE chats SET updated_at = ? WHERE id = ?", (now, row[0]))
            chat = _summary(db, row[0])
            assert chat is not None  # delete_chat removes a chat's messages with it, in one transaction
            return chat

        return await self._write(write)

    async def chat(self, user: str, chat_id: str) -> ChatSummary | None:
        return await self._read(lambda db: _summary(db, chat_id, user))

    async def chat_detail(
        self,
        user: str,
        chat_id: str,
        limit: int,
        before: str | None = None,
        *,
        offset: int | None = None,
        at: str | None = None,
    ) -> ChatDetail | None:
        def read(db: sqlite3.Connection) -> ChatDetail | None:
            db.execute("BEGIN")  # one snapshot for the chat and its messages
            try:
                chat = _summary(db, chat_id, user)
                if chat is None:
                    return None
                settings = _settings(db, chat_id)
                # Sizes first, so a page of long messages never reads past what it sends.
                if offset is None and at is None:
                    end = END_OF_CHAT
                    if before is not None:
                        found = db.execute("SELECT n FROM messages WHERE id = ? AND chat_id = ?", (before, chat_id))
                        end = message_position(found.fetchone())
                    sizes = db.execute(
                        "SELECT n, length(content) FROM messages WHERE chat_id = ? AND n < ? ORDER BY n DESC LIMIT ?",
                        (chat_id, end, limit + 1),
                    ).fetchall()
                    count = page_length(size for _, size in sizes[:limit])
                    first, last = (sizes[count - 1][0], sizes[0][0]) if count else (end, end)
                else:
                    start, skip = -1, offset or 0
                    if at is not None:
                        found = db.execute("SELECT n FROM messages WHERE id = ? AND chat_id = ?", (at, chat_id))
                        start, skip = message_position(found.fetchone(), "at"), 0
                    sizes = db.execute(
                        "SELECT n, length(content) FROM messages WHERE chat_id = ? AND n >= ?"
                        " ORDER BY n LIMIT ? OFFSET ?",
                        (chat_id, start, limit, skip),
                    ).fetchall()
                    count = page_length(size for _, size in sizes)
                    first, last = (sizes[0][0], sizes[count - 1][0]) if count else (END_OF_CHAT, END_OF_CHAT)
                index = db.execute("SELECT COUNT(*) FROM messages WHERE chat_id = ? AND n < ?", (chat_id, first))
                page_offset = int(index.fetchone()[0])
                if not count:
                    return ChatDetail(chat=chat, messages=[], settings=settings, offset=page_offset)
                rows = db.execute(
                    f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE chat_id = ? AND n >= ? AND n <= ? ORDER BY n",
                    (chat_id, first, last),
                ).fetchall()
                messages = []
                for row in rows:
                    id_, _, content, status, seq = row[:5]
                    if status == "streaming":
                        pieces = db.execute(
                            "SELECT seq, content FROM chunks WHERE message_id = ? ORDER BY seq", (id_,)
                        ).fetchall()
                        content = "".join(piece for _, piece in pieces)
                        seq = pieces[-1][0] if pieces else 0
                    messages.append(message_of(row, content, seq))
                chips = db.execute(
                    "SELECT message_id, name, media_type, size FROM attachments WHERE chat_id = ?"
                    f" AND message_id IN ({', '.join('?' * len(messages))}) ORDER BY message_id, position",
                    (chat_id, *(message.id for message in messages)),
                ).fetchall()
                messages = with_attachments(messages, chips)
                cursor = messages[0].id if page_offset else None
                return ChatDetail(
                    chat=chat, messages=messages, next_cursor=cursor, settings=settings, offset=page_offset
                )
            finally:
                db.execute("COMMIT")

        return await self._read(read)

    async def list_chats(self, user: str, limit: int, before: str | None, archived: bool = False) -> ChatPage:
        after = parse_cursor(before) if before else None

        def read(db: sqlite3.Connection) -> ChatPage:
            query = f"SELECT {SUMMARY_COLUMNS} FROM chats WHERE user = ? AND archived = ?"
            params: list[Any] = [user, archived]
            if after is not None:
                # A row value: after the cursor's place in the (descending) order, whichever column decides.
                query += " AND (pinned, updated_at, id) < (?, ?, ?)"
                params += [*after]
            query += " ORDER BY pinned DESC, updated_at DESC, id DESC LIMIT ?"
            rows = db.execute(query, [*params, limit + 1]).fetchall()
            chats = [summary_of(row) for row in rows[:limit]]
            cursor = page_cursor(rows[limit - 1]) if len(rows) > limit else None
            return ChatPage(chats=chats, next_cursor=cursor)

        return await self._read(read)

    async def search(self, user: str, words: list[str], limit: int, before: str | None) -> SearchResults:
        def read(db: sqlite3.Connection) -> SearchResults:
            db.execute("BEGIN")  # one snapshot for the cursor and the hits
            try:
                end = END_OF_CHAT
                if before is not None:
                    found = db.execute("SELECT n FROM messages WHERE id = ? AND user = ?", (before, user)).fetchone()
                    if found is None:
                        raise BadCursor("'before' is not a cursor from an earlier search")
                    end = found[0]
                # Newest first straight from the index (FTS5 walks its rowids, n, backwards), so
                # a LIMIT stops early; the user's rows are picked on the way.
                rows = db.execute(
                    "SELECT messages.id, messages.chat_id, chats.title, messages.role,"
                    " substr(messages.content, 1, ?), messages.created_at"
                    " FROM message_search JOIN messages ON messages.n = message_search.rowid"
                    " JOIN chats ON chats.id = messages.chat_id"
                    " WHERE message_search MATCH ? AND message_search.rowid < ? AND messages.user = ?"
                    " ORDER BY message_search.rowid DESC LIMIT ?",
                    (INDEXED_CHARS, fts5_query(words), end, user, limit + 1),
                ).fetchall()
            finally:
                db.execute("COMMIT")
            hits = [hit_of(row, words) for row in rows[:limit]]
            return SearchResults(hits=hits, next_cursor=hits[-1].message_id if len(rows) > limit else None)

        return await self._read(read)

    async def chats_page(self, user: str, offset: int, limit: int) -> tuple[list[ListedChat], int]:
        def read(db: sqlite3.Connection) -> tuple[list[ListedChat], int]:
            db.execute("BEGIN")  # one snapshot for the page and the total
            try:
                rows = db.execute(
                    f"SELECT {SUMMARY_COLUMNS}, created_at FROM chats WHERE user = ?"
                    " ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?",
                    (user, limit, offset),
                ).fetchall()
                total = db.execute("SELECT COUNT(*) FROM chats WHERE user = ?", (user,)).fetchone()[0]
            finally:
                db.execute("COMMIT")
            return [ListedChat(summary_of(row[:-1]), row[-1]) for row in rows], total

        return await self._read(read)

    async def update_chat(self, user: str, chat_id: str, change: ChatChange) -> UpdatedChat | None:
        columns = changed_columns(change, time.time())

        def write(db: sqlite3.Connection) -> UpdatedChat | None:
            assignments = ", ".join(f"{column} = ?" for column, _ in columns)
            values = [value for _, value in columns]
            changed = db.execute(
                f"UPDATE chats SET {assignments} WHERE id = ? AND user = ?", (*values, chat_id, user)
            ).rowcount
            chat = _summary(db, chat_id) if changed else None
            return UpdatedChat(chat=chat, settings=_settings(db, chat_id)) if chat else None

        return await self._write(write)

    async def delete_chat(self, user: str, chat_id: str) -> ChatSummary | None:
        def write(db: sqlite3.Connection) -> ChatSummary | None:
            chat = _summary(db, chat_id, user)
            if chat is None:
                return None
            # The chat first: the triggers counting its bytes then find no row to update per message.
            db.execute("DELETE FROM chats WHERE id = ?", (chat_id,))
            db.execute("DELETE FROM chunks WHERE message_id IN (SELECT id FROM messages WHERE chat_id = ?)", (chat_id,))
            db.execute("DELETE FROM messages WHERE chat_id = ?", (chat_id,))
            db.execute("DELETE FROM edits WHERE chat_id = ?", (chat_id,))
            files = "SELECT id FROM attachments WHERE chat_id = ?"
            db.execute(f"DELETE FROM attachment_parts WHERE attachment_id IN ({files})", (chat_id,))
            db.execute("DELETE FROM attachments WHERE chat_id = ?", (chat_id,))
            return chat

        return await self._write(write)

    async def edit_message(
        self,
        user: str,
        chat_id: str,
        message_id: str,
        content: str,
        regenerate: bool,
        client_edit_id: str | None = None,
    ) -> Edit | None:
        def write(db: sqlite3.Connection) -> Edit | None:
            if client_edit_id is not None:
                known = _known_edit(db, user, client_edit_id)
                if known is not None:
                    return known
            row = db.execute(
                "SELECT n, role, model_id FROM messages WHERE id = ? AND chat_id = ? AND user = ?",
                (message_id, chat_id, user),
            ).fetchone()
            if row is None:
                return None
            n, role, model_id = row
            if role != "user":
                raise NotEditable("only user messages can be edited")
            now = time.time()
            db.execute("UPDATE messages SET content = ?, edited_at = ? WHERE id = ?", (content, now, message_id))
            reply_id = history = None
            if regenerate:
                later = "SELECT id FROM messages WHERE chat_id = ? AND n > ?"
                db.execute(f"DELETE FROM chunks WHERE message_id IN ({later})", (chat_id, n))
                files = f"SELECT id FROM attachments WHERE chat_id = ? AND message_id IN ({later})"
                db.execute(f"DELETE FROM attachment_parts WHERE attachment_id IN ({files})", (chat_id, chat_id, n))
                db.execute(
                    f"DELETE FROM attachments WHERE chat_id = ? AND message_id IN ({later})", (chat_id, chat_id, n)
                )
                db.execute("DELETE FROM messages WHERE chat_id = ? AND n > ?", (chat_id, n))
                reply_id = new_id()
                db.execute(
                    "INSERT INTO messages (id, chat_id, user, role, content, status, model_id, reply_to, created_at)"
                    " VALUES (?, ?, ?, 'assistant', '', 'streaming', ?, ?, ?)",
                    (reply_id, chat_id, user, model_id, message_id, now),
                )
                history = _history(db, chat_id, reply_id)
            db.execute(
                "UPDATE chats SET updated_at = ?,"
                " message_count = (SELECT COUNT(*) FROM messages WHERE chat_id = ?) WHERE id = ?",
                (now, chat_id, chat_id),
            )
            if client_edit_id is not None:
                db.execute(
                    "INSERT INTO edits (user, client_edit_id, chat_id, message_id, content, edited_at, reply_id)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (user, client_edit_id, chat_id, message_id, content, now, reply_id),
                )
            chat = _summary(db, chat_id)
            assert chat is not None  # its message was found above, in this transaction
            settings = _settings(db, chat_id)
            return Edit(chat, message_id, content, edited_at=now, reply_id=reply_id, history=history, settings=settings)

        return await self._write(write)

    async def find_edit(self, user: str, client_edit_id: str) -> Edit | None:
        return await self._read(lambda db: _known_edit(db, user, client_edit_id))

    async def import_progress(self, user: str, import_key: str) -> tuple[ChatSummary, int] | None:
        def read(db: sqlite3.Connection) -> tuple[ChatSummary, int] | None:
            row = db.execute(
                f"SELECT {SUMMARY_COLUMNS}, imported FROM chats WHERE user = ? AND import_key = ?", (user, import_key)
            ).fetchone()
            return (summary_of(row[:-1]), row[-1]) if row else None

        return await self._read(read)

    async def import_chat(self, user: str, part: ImportChat) -> Imported:
        key = part.import_key

        def write(db: sqlite3.Connection) -> Imported:
            found = db.execute(
                "SELECT id, imported FROM chats WHERE user = ? AND import_key = ?", (user, key)
            ).fetchone()
            created = found is None
            chat_id, stored = (new_id(), 0) if found is None else found
            entries = new_entries(part, stored)
            if created:
                db.execute(
                    "INSERT INTO chats (id, user, title, created_at, updated_at, import_key) VALUES (?, ?, ?, ?, ?, ?)",
                    (chat_id, user, part.title, part.created_at.timestamp(), part.updated_at.timestamp(), key),
                )
            last = db.execute(
                "SELECT id, created_at FROM messages WHERE chat_id = ? ORDER BY n DESC LIMIT 1", (chat_id,)
            ).fetchone()
            last_id, when = last if last else (None, part.created_at.timestamp())
            for entry in entries:
                if entry.continued and last_id is not None:
                    db.execute("UPDATE messages SET content = content || ? WHERE id = ?", (entry.content, last_id))
                    continue
                last_id = new_id()
                when = entry.created_at.timestamp() if entry.created_at else when
                db.execute(
                    "INSERT INTO messages (id, chat_id, user, role, content, status, finish_reason, created_at,"
                    " ended_at) VALUES (?, ?, ?, ?, ?, 'complete', ?, ?, ?)",
                    (last_id, chat_id, user, entry.role, entry.content, imported_finish_reason(entry.role), when, when),
                )
            if entries:
                db.execute(
                    "UPDATE chats SET imported = ?, updated_at = MAX(updated_at, ?),"
                    " message_count = (SELECT COUNT(*) FROM messages WHERE chat_id = ?) WHERE id = ?",
                    (stored + len(entries), part.updated_at.timestamp(), chat_id, chat_id),
                )
            chat = _summary(db, chat_id)
            assert chat is not None  # found or created above, in this transaction
            return Imported(chat, created, stored + len(entries), len(entries))

        return await self._write(write)

    async def message_state(self, user: str, chat_id: str, message_id: str | None) -> MessageState | None:
        def read(db: sqlite3.Connection) -> MessageState | None:
            columns = STATE_COLUMNS
            if message_id is None:
                row = db.execute(
                    f"SELECT {columns} FROM messages WHERE chat_id = ? AND user = ? AND role = 'assistant'"
                    " ORDER BY n DESC LIMIT 1",
                    (chat_id, user),
                ).fetchone()
            else:
                row = db.execute(
                    f"SELECT {columns} FROM messages WHERE id = ? AND chat_id = ? AND user = ?",
                    (message_id, chat_id, user),
                ).fetchone()
            return state_of(row) if row else None

        return await self._read(read)

    async def stored_bytes(self, user: str) -> int:
        return await self._read(
            lambda db: db.execute(
                "SELECT (SELECT COALESCE(SUM(bytes), 0) FROM chats WHERE user = ?)"
                " + (SELECT COALESCE(SUM(received), 0) FROM attachments WHERE user = ?)",
                (user, user),
            ).fetchone()[0]
        )

    async def chunks_after(self, message_id: str, seq: int) -> list[tuple[int, str]]:
        return await self._read(
            lambda db: db.execute(
                "SELECT seq, content FROM chunks WHERE message_id = ? AND seq > ? ORDER BY seq", (message_id, seq)
            ).fetchall()
        )

    async def prune_chunks(self, ended_before: float) -> int:
        return await self._write(
            lambda db: (
                db.execute(
                    "DELETE FROM chunks WHERE message_id IN"
                    " (SELECT id FROM messages WHERE role = 'assistant' AND ended_at < ?)",
                    (ended_before,),
                ).rowcount
            )
        )


# --- helpers run inside the threads -------------------------------------------


def _migrate(db: sqlite3.Connection) -> None:
    """Apply the ``MIGRATIONS`` this database lacks, each in one transaction with its new version."""
    current = db.execute("PRAGMA user_version").fetchone()[0]
    for version, sql in MIGRATIONS:
        if version <= current:
            continue
        log.info("migrating the database to schema version %d", version)
        try:
            db.executescript(f"BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {version}; COMMIT;")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise


def _summary(db: sqlite3.Connection, chat_id: str, user: str | None = None) -> ChatSummary | None:
    if user is None:
        row = db.execute(f"SELECT {SUMMARY_COLUMNS} FROM chats WHERE id = ?", (chat_id,)).fetchone()
    else:
        row = db.execute(f"SELECT {SUMMARY_COLUMNS} FROM chats WHERE id = ? AND user = ?", (chat_id, user)).fetchone()
    return summary_of(row) if row else None


def _settings(db: sqlite3.Connection, chat_id: str) -> ChatSettings:
    """The settings of a chat the caller knows to exist."""
    return settings_of(db.execute(f"SELECT {SETTINGS_COLUMNS} FROM chats WHERE id = ?", (chat_id,)).fetchone())


def _known_exchange(db: sqlite3.Connection, user: str, client_message_id: str) -> Exchange | None:
    known = db.execute(
        "SELECT id, chat_id FROM messages WHERE user = ? AND client_message_id = ?", (user, client_message_id)
    ).fetchone()
    if known is None:
        return None
    message_id, chat_id = known
    reply = db.execute("SELECT id FROM messages WHERE reply_to = ? ORDER BY n DESC LIMIT 1", (message_id,)).fetchone()
    chat = _summary(db, chat_id)
    if chat is None:  # deleted since the message was read (a reader sees each query's own snapshot)
        return None
    return Exchange(
        chat=chat,
        user_message_id=message_id,
        reply_id=reply[0] if reply else "",
        history=[],
        duplicate=True,
    )


def _history(db: sqlite3.Connection, chat_id: str, reply_id: str) -> list[ModelTurn]:
    """The messages before the reply ``reply_id``, oldest first, with their files, as model input.

    An empty answer is left out; a user message never is (it may be files only).
    """
    rows = db.execute(
        "SELECT id, role, content FROM messages WHERE chat_id = ?"
        " AND n < (SELECT n FROM messages WHERE id = ?) AND (content != '' OR role = 'user') ORDER BY n",
        (chat_id, reply_id),
    ).fetchall()
    files = db.execute(
        "SELECT attachments.message_id, attachments.position, name, media_type, attachment_parts.data"
        " FROM attachments LEFT JOIN attachment_parts ON attachment_parts.attachment_id = attachments.id"
        " WHERE attachments.chat_id = ? AND attachments.message_id IS NOT NULL"
        " ORDER BY attachments.message_id, attachments.position, attachment_parts.start",
        (chat_id,),
    ).fetchall()
    return turns_of(rows, files)


def _known_edit(db: sqlite3.Connection, user: str, client_edit_id: str) -> Edit | None:
    row = db.execute(
        "SELECT chat_id, message_id, content, edited_at, reply_id FROM edits WHERE user = ? AND client_edit_id = ?",
        (user, client_edit_id),
    ).fetchone()
    if row is None:
        return None
    chat_id, message_id, content, edited_at, reply_id = row
    chat = _summary(db, chat_id)
    if chat is None:
        return None
    return Edit(chat, message_id, content, edited_at=edited_at, reply_id=reply_id, duplicate=True)


def _recover_interrupted(db: sqlite3.Connection) -> list[Interrupted]:
    """Replies left ``streaming`` by a crash: keep their chunks as the text, mark them interrupted."""
    now = time.time()
    rows = db.execute(
        "SELECT messages.id, messages.chat_id, chats.user FROM messages JOIN chats ON chats.id = messages.chat_id"
        " WHERE messages.status = 'streaming'"
    ).fetchall()
    interrupted = []
    for message_id, chat_id, user in rows:
        pieces = db.execute(
            "SELECT seq, content FROM chunks WHERE message_id = ? ORDER BY seq", (message_id,)
        ).fetchall()
        seq = pieces[-1][0] if pieces else 0
        db.execute(
            "UPDATE messages SET content = ?, seq = ?, status = 'error', finish_reason = 'interrupted', ended_at = ?"
            " WHERE id = ?",
            ("".join(piece for _, piece in pieces), seq, now, message_id),
        )
        db.execute("UPDATE chats SET updated_at = ? WHERE id = ?", (now, chat_id))
        chat = _summary(db, chat_id)
        assert chat is not None  # joined above
        interrupted.append(Interrupted(user=user, chat=chat, message_id=message_id, seq=seq))
    return interrupted
