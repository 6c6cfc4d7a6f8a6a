"""The SQLite store: the store algorithm (``sql_store``) on one file.

The group commit's writer (``GroupCommit._write_loop``) is a task of the
event loop, and owns one connection. A batch of chunks and of brief writes
(``Write.brief``: a message stored, an answer ended, with no more than
``BRIEF_TEXT`` of text), the steady work of streaming answers, commits in
the loop itself: a few rows appended to the ``-wal`` file, no sync, tens of
microseconds, with no thread to wake and no hop back. Any other batch (a
chat deleted, a long answer stored: their cost grows with the data) commits
in a thread while the loop runs on; the writer waits for it, so commits stay
in order. In a thread, a brief write took milliseconds under load, each of
its statements waiting for the interpreter's lock, and every chunk queued
behind it waited too: at 200 streams, the questions of the first second put
p99 over 10 ms (docs/benchmarks.md). The chat's history for the model is
read after a message's write (``BRIEF_HISTORY``), not in it. Checkpoints,
which sync the disk, run in a thread of their own (``checkpoints``). Reads
run on a small thread pool, each thread with its own connection; WAL lets
them proceed while the writer commits. Brief reads (a few rows by key, as
each question makes before it is stored) run in the loop, on a connection
of their own.

The algorithm's coroutines run on ``SqliteDb``, whose calls block and never
wait: in the loop they are awaited, in threads ``run_sync`` runs each in
one step. One writer means no write of another node to race:
``Dialect.lock`` is empty and no unique violation is another node's twin;
the checks before each insert (a streaming reply in the chat: ``ChatBusy``)
see everything committed.

``synchronous=NORMAL`` in WAL mode: a committed transaction survives a crash
of the process (kill -9), which is the failure the protocol's "persist, then
send" is about; a power cut may lose the last few milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, TypeVar

from mfu_tui.server.store import checkpoints, tables
from mfu_tui.server.store.base import Interrupted, StoreUnavailable
from mfu_tui.server.store.batch import ChunkWrite, Outcome, Write
from mfu_tui.server.store.checkpoints import Checkpointer
from mfu_tui.server.store.dialect import Db, Dialect, run_sync
from mfu_tui.server.store.schema import Migrated, SchemaTooNew, check_not_newer
from mfu_tui.server.store.search import fts5_query
from mfu_tui.server.store.sql_store import SqlStore

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Seconds the writer waits for another program's write lock on the file (``mfu-chat admin delete-user``).
LOCK_WAIT = 30.0

#: The tables of schema version 2, created if missing; ``MIGRATIONS`` take them on from there.
SCHEMA = (
    tables.conversations(tables.SQLITE)
    + tables.edits(tables.SQLITE)
    + """
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
)

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
    *zip((5, 7, 8, 9), tables.released_together(tables.SQLITE)),
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
    (
        11,
        """
        -- One naming in both stores: the user a row belongs to is its owner, as in PostgreSQL
        -- (where user is a reserved word). Indexes and triggers follow the renamed columns.
        ALTER TABLE chats RENAME COLUMN user TO owner;
        ALTER TABLE messages RENAME COLUMN user TO owner;
        ALTER TABLE edits RENAME COLUMN user TO owner;
        ALTER TABLE attachments RENAME COLUMN user TO owner;
        """,
    ),
    (12, tables.reasoning(tables.SQLITE)),
    (
        13,
        """
        -- An answer's reasoning is stored text too, and counts toward its chat's bytes like its
        -- content: otherwise a reasoning model could fill the disk outside the storage quota.
        -- The triggers of migration 3 give way to ones counting both, and every chat is counted
        -- again from what it holds (the answers stored since migration 12 had their reasoning uncounted).
        DROP TRIGGER message_bytes_added;
        DROP TRIGGER message_bytes_changed;
        DROP TRIGGER message_bytes_removed;
        CREATE TRIGGER message_bytes_added AFTER INSERT ON messages
        WHEN NEW.content != '' OR NEW.reasoning != '' BEGIN
            UPDATE chats SET bytes = bytes + length(CAST(NEW.content AS BLOB)) + length(CAST(NEW.reasoning AS BLOB))
            WHERE id = NEW.chat_id;
        END;
        CREATE TRIGGER message_bytes_changed AFTER UPDATE OF content, reasoning ON messages
        WHEN NEW.content IS NOT OLD.content OR NEW.reasoning IS NOT OLD.reasoning BEGIN
            UPDATE chats SET bytes = bytes
                + length(CAST(NEW.content AS BLOB)) + length(CAST(NEW.reasoning AS BLOB))
                - length(CAST(OLD.content AS BLOB)) - length(CAST(OLD.reasoning AS BLOB))
            WHERE id = NEW.chat_id;
        END;
        CREATE TRIGGER message_bytes_removed AFTER DELETE ON messages
        WHEN OLD.content != '' OR OLD.reasoning != '' BEGIN
            UPDATE chats SET bytes = bytes - length(CAST(OLD.content AS BLOB)) - length(CAST(OLD.reasoning AS BLOB))
            WHERE id = OLD.chat_id;
        END;
        UPDATE chats SET bytes =
            (SELECT COALESCE(SUM(length(CAST(content AS BLOB)) + length(CAST(reasoning AS BLOB))), 0)
             FROM messages WHERE chat_id = chats.id)
            + (SELECT COALESCE(SUM(length(CAST(content AS BLOB))), 0) FROM edits WHERE chat_id = chats.id)
            + COALESCE(length(CAST(system_prompt AS BLOB)), 0);
        """,
    ),
    (14, tables.deleted_users(tables.SQLITE)),
    (
        15,
        """
        -- mfu-chat serve --workers: the worker generating a streaming reply, so that a worker
        -- restarted after a crash ends its own replies and none of its siblings'.
        ALTER TABLE messages ADD COLUMN node_id TEXT;
        """,
    ),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]

#: Newest first straight from the index (FTS5 walks its rowids, n, backwards), so a LIMIT
#: stops early; the user's rows are picked on the way.
_SEARCH = (
    "SELECT messages.id, messages.chat_id, chats.title, messages.role,"
    " substr(messages.content, 1, ?), messages.created_at"
    " FROM message_search JOIN messages ON messages.n = message_search.rowid"
    " JOIN chats ON chats.id = messages.chat_id"
    " WHERE message_search MATCH ? AND message_search.rowid < ? AND messages.owner = ?"
    " ORDER BY message_search.rowid DESC LIMIT ?"
)


class SqliteDb:
    """A ``Db`` on a sqlite3 connection: every call runs at once, blocking its thread.

    Args:
        connection: The connection.
        in_loop: The writer's, awaited in the event loop: a transaction that finds the file's
            write lock taken by another program waits for it with ``asyncio.sleep``, not blocking
            the loop (the writer's connection has no busy timeout). Otherwise it sleeps in its thread.
    """

    def __init__(self, connection: sqlite3.Connection, *, in_loop: bool = False) -> None:
        self._connection = connection
        self._in_loop = in_loop

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return self._connection.execute(sql, args).fetchall()

    async def fetchrow(self, sql: str, *args: Any) -> tuple[Any, ...] | None:
        # All rows: a statement left half read (an UPDATE ... RETURNING) would hold the transaction open.
        rows = self._connection.execute(sql, args).fetchall()
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return row[0] if row else None

    async def execute(self, sql: str, *args: Any) -> int:
        return self._connection.execute(sql, args).rowcount

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self._connection.executemany(sql, rows)

    def transaction(self) -> AbstractAsyncContextManager[None]:
        return self._block("BEGIN IMMEDIATE", ends=("COMMIT",), undo=("ROLLBACK",))

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        # Nested savepoints may share a name: ROLLBACK TO and RELEASE name the innermost.
        return self._block("SAVEPOINT one", ends=("RELEASE one",), undo=("ROLLBACK TO one", "RELEASE one"))

    def snapshot(self) -> AbstractAsyncContextManager[None]:
        return self._block("BEGIN", ends=("COMMIT",), undo=("COMMIT",))

    @contextlib.asynccontextmanager
    async def _block(self, begin: str, *, ends: tuple[str, ...], undo: tuple[str, ...]) -> AsyncIterator[None]:
        """Run ``begin``, then the block, then ``ends``; if the block raises, ``undo`` instead."""
        await self._begin(begin)
        try:
            yield
            for statement in ends:
                self._connection.execute(statement)
        except BaseException:
            if self._connection.in_transaction:  # (a failed COMMIT may have ended it, or not)
                for statement in undo:
                    self._connection.execute(statement)
            raise

    async def _begin(self, statement: str) -> None:
        """Run ``statement``, waiting up to ``LOCK_WAIT`` while another program holds the write lock."""
        waited, pause = 0.0, 0.001
        while True:
            try:
                self._connection.execute(statement)
                return
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode != sqlite3.SQLITE_BUSY or waited >= LOCK_WAIT:
                    raise
            if self._in_loop:
                await asyncio.sleep(pause)
            else:
                time.sleep(pause)
            waited += pause
            pause = min(pause * 2, 0.05)


class SqliteStore(SqlStore):
    """``Store`` on one SQLite file.

    Several worker processes of one ``mfu-chat serve --workers N`` may share
    the file: SQLite's lock makes their writers take turns (each transaction
    starts with ``BEGIN IMMEDIATE``, so a check before an insert sees every
    commit of the others), and each reply records its worker's ``node_id``.
    SQLite's own wait for its lock polls, sleeping 1, 2, 5, 10... ms between
    tries, which puts tens of milliseconds on a chunk when two busy writers
    meet; so the workers' writers first queue on ``writer_lock`` (``flock``:
    the kernel wakes the next as soon as the lock is free), and SQLite's lock
    is then free but for other programs (``mfu-chat admin``). A writer waits
    for its turn in a thread, the loop running on. A writer takes
    its batch once it has its turn, so what was queued while it waited
    commits with it: the batches grow with the contention.

    Args:
        path: The database file (created with its directory if missing).
        node_id: This worker's name when several share the file: its replies
            are marked with it and ``open`` ends only those. ``None`` (one
            process): ``open`` ends every reply left streaming.
        writer_lock: The lock file the writers of the workers sharing the file take turns on.
    """

    dialect = Dialect(greatest="MAX", search_sql=_SEARCH, search_words=fts5_query)

    def __init__(self, path: Path, *, node_id: str | None = None, writer_lock: Path | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.node_id = node_id
        self.writer_lock = writer_lock
        self._writer_lock_fd: int | None = None
        self._writer_connection: sqlite3.Connection | None = None
        #: The writer's connection, as the loop uses it (batches of chunks) and as its threads do (the rest).
        self._loop_db: SqliteDb | None = None
        self._thread_db: SqliteDb | None = None
        self._checkpointer: Checkpointer | None = None
        self._commits_since_checkpoint = 0
        self._readers: ThreadPoolExecutor | None = None
        #: The event loop's reading connection, for brief reads.
        self._loop_reader: sqlite3.Connection | None = None
        self._reader_local = threading.local()
        self._reader_connections: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()

    # --- life cycle ---------------------------------------------------------

    async def open(self) -> list[Interrupted]:
        try:
            connection = self._open_file()
        except SchemaTooNew:
            raise  # its own line says what to do
        except (OSError, sqlite3.Error) as error:
            raise StoreUnavailable(unusable_file(self.path, error)) from None
        # No busy timeout (``SqliteDb._begin`` waits instead) and no checkpoints (``checkpoints``).
        connection.execute("PRAGMA busy_timeout=0")
        connection.execute("PRAGMA wal_autocheckpoint=0")
        connection.execute(f"PRAGMA journal_size_limit={checkpoints.WAL_LIMIT}")
        self._checkpointer = Checkpointer(self._connect, self.path)
        self._writer_connection = connection
        self._loop_db = SqliteDb(connection, in_loop=True)
        self._thread_db = SqliteDb(connection)
        if self.writer_lock is not None:
            self._writer_lock_fd = os.open(self.writer_lock, os.O_RDWR | os.O_CREAT, 0o600)
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mfu-store-reader")
        self._loop_reader = self._connect()
        self._loop_reader.execute("PRAGMA query_only=1")
        self._start_writer()
        if self.node_id is None:
            return await self._write(lambda db: self._end_interrupted(db, "TRUE"))
        # A worker restarted by its supervisor: its own replies died with it, its siblings' still run.
        return await self._write(lambda db: self._end_interrupted(db, "node_id = ?", self.node_id))

    async def close(self) -> None:
        if not await self._stop_writer():
            return
        assert self._checkpointer is not None and self._writer_connection is not None
        await asyncio.to_thread(self._checkpointer.stop)
        self._checkpointer = None
        if self._readers is not None:
            self._readers.shutdown(wait=True)
            self._readers = None
        if self._loop_reader is not None:
            self._loop_reader.close()
            self._loop_reader = None
        for connection in self._reader_connections:
            connection.close()
        self._reader_connections.clear()
        # The last connection to close checkpoints the -wal file into the database, syncing both: not in the loop.
        await asyncio.to_thread(self._writer_connection.close)
        self._writer_connection = None
        if self._writer_lock_fd is not None:
            os.close(self._writer_lock_fd)
            self._writer_lock_fd = None

    def _open_file(self) -> sqlite3.Connection:
        """The writer's connection, the file made if missing and brought to ``SCHEMA_VERSION``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            # Chats are private: the file (and the -wal/-shm files SQLite
            # creates with the same mode) is readable by its owner only.
            self.path.touch(mode=0o600)
        connection = self._connect()
        try:
            prepare(connection)
        except BaseException:
            connection.close()
            raise
        return connection

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA busy_timeout=30000")
        return connection

    def _reply_claim(self) -> tuple[str, str, tuple[Any, ...]]:
        return ("", "", ()) if self.node_id is None else (", node_id", ", ?", (self.node_id,))

    def _claimed_here(self) -> tuple[str, tuple[Any, ...]]:
        # Workers (``serve --workers``) share the file: only this worker's replies are its own.
        return ("", ()) if self.node_id is None else (" AND node_id = ?", (self.node_id,))

    # --- the writer ---------------------------------------------------------

    async def _commit_batch(self, batch: list[Write | ChunkWrite]) -> list[Outcome]:
        assert self._loop_db is not None and self._thread_db is not None and self._checkpointer is not None
        if self._checkpointer.reset_due:
            await asyncio.to_thread(self._checkpointer.reset)
        if all(isinstance(write, ChunkWrite) or write.brief for write in batch):
            outcomes = await self._commit(self._loop_db, batch)
        else:
            outcomes = await asyncio.to_thread(run_sync, self._commit(self._thread_db, batch))
        self._commits_since_checkpoint += 1
        if self._commits_since_checkpoint >= checkpoints.CHECKPOINT_EVERY:
            self._commits_since_checkpoint = 0
            self._checkpointer.ask()
        return outcomes

    @contextlib.asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        lock = self._writer_lock_fd
        if lock is None:
            yield
            return
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # A sibling worker's writer commits: the kernel hands the lock over in a thread, the loop runs on.
            taken = asyncio.ensure_future(asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX))
            try:
                await asyncio.shield(taken)
            except asyncio.CancelledError:
                taken.add_done_callback(lambda _: fcntl.flock(lock, fcntl.LOCK_UN))  # taken after all: give it back
                raise
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)

    # --- readers --------------------------------------------------------------

    async def _read(self, function: Callable[[Db], Awaitable[_T]], *, brief: bool = False) -> _T:
        if self._readers is None or self._loop is None or self._loop_reader is None:
            raise RuntimeError("the store is not open")
        if brief:
            # In WAL mode a reader waits for nobody but a sibling worker recovering the file as it
            # restarts after a crash: a pause of the loop at that rare moment, as long as the recovery.
            return await function(SqliteDb(self._loop_reader, in_loop=True))
        return await self._loop.run_in_executor(self._readers, self._run_read, function)

    def _run_read(self, function: Callable[[Db], Awaitable[_T]]) -> _T:
        connection = getattr(self._reader_local, "connection", None)
        if connection is None:
            connection = self._connect()
            connection.execute("PRAGMA query_only=1")
            self._reader_local.connection = connection
            with self._reader_lock:
                self._reader_connections.append(connection)
        return run_sync(function(SqliteDb(connection)))


def unusable_file(path: Path, error: OSError | sqlite3.Error) -> str:
    """One line for ``error``, met opening the SQLite file ``path`` (``--db``): what is wrong, what to do."""
    if getattr(error, "sqlite_errorname", None) == "SQLITE_NOTADB":
        return f"--db {path} is not a SQLite database ({error}): give the server's database, or a path for a new one"
    if isinstance(error, NotADirectoryError):
        where = "give a path in a directory, or where one can be made"
        return f"--db {path}: {error.filename} is a file, not a directory: {where}"
    reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    return (
        f"--db {path}: cannot read and write it ({reason}): the user running the server needs both, on the file "
        f"and on its directory (SQLite makes {path.name}-wal and -shm there)"
    )


def prepare(connection: sqlite3.Connection) -> Migrated:
    """Put the file in WAL mode and bring its schema to ``SCHEMA_VERSION``.

    Raises:
        SchemaTooNew: a newer release migrated it (nothing is changed).
    """
    check_not_newer(schema_version(connection), SCHEMA_VERSION)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.executescript(SCHEMA)
    return _migrate(connection)


def schema_version(connection: sqlite3.Connection) -> int:
    """The schema version of the file (0: a new one)."""
    version: int = connection.execute("PRAGMA user_version").fetchone()[0]
    return version


def migrate_file(path: Path) -> Migrated:
    """``mfu-chat migrate`` on a SQLite file (created if missing, as ``serve`` would), beside a running server.

    Raises:
        SchemaTooNew: a newer release migrated it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.touch(mode=0o600)  # as open() makes it: readable by its owner only
    connection = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        connection.execute("PRAGMA busy_timeout=30000")
        return prepare(connection)
    finally:
        connection.close()


def _migrate(db: sqlite3.Connection) -> Migrated:
    """Apply the ``MIGRATIONS`` this database lacks, each in one transaction with its new version."""
    current = schema_version(db)
    if current == 0:  # not an upgrade: one line, not one per step
        log.info("creating a new database at schema version %d", SCHEMA_VERSION)
    for version, sql in MIGRATIONS:
        if version <= current:
            continue
        if current:
            log.info("migrating the database to schema version %d", version)
        try:
            db.executescript(f"BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {version}; COMMIT;")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    return Migrated(before=current, after=SCHEMA_VERSION)
