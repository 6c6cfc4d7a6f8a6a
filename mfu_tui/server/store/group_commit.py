"""The group commit: writes queued to one writer, committed in batches, their futures settled after.

Writes (a user message, each chunk of a reply, an edit) are queued to one
writer, a task of the event loop. An idle writer starts a commit as soon as
a write arrives (no waiting for company: one chunk alone is durable, and
sent, within one commit's time); whatever arrives while a commit runs is
queued, and the next commit takes all of it. So batches grow with the load
by themselves. A commit runs everything it takes in ONE transaction: the
chunks first, with one ``executemany`` (a chunk is always queued before the
``finish_message`` of its reply, so this keeps every read-after-write the
code relies on), then each other write in a savepoint of its own, so one
failing write does not undo the others; one that PostgreSQL ends to break a
deadlock with another node's transaction (a chat deleted on one node while
another stores its answer) is run again in a new savepoint, up to
``LOCK_CONFLICT_TRIES`` times. Only then are the futures settled: persist,
then send. So 500 concurrent streams cost a few hundred commits a second,
not thousands, and an idle server adds no wait to a chunk.

A reply's text that comes while its last chunk is still queued (no commit
took it yet) is added to that chunk (``extend_chunk``) rather than queued as
another: it would have waited for the same commit anyway, and one row and
one frame carry it. Under load, chunks grow with the batches.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from mfu_tui.server.store.batch import ChunkWrite, Outcome, Write, settle
from mfu_tui.server.store.dialect import Db
from mfu_tui.server.store.outage import OutageLog, is_lock_conflict, is_outage

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Characters of text up to which a message's or an answer's write is ``brief``. Past it, the copy
#: and the search index's work grow with the text, and SQLite commits the write in a thread.
BRIEF_TEXT = 64 * 1024

#: Times a write is run when PostgreSQL ends it to break a deadlock (``is_lock_conflict``).
LOCK_CONFLICT_TRIES = 3

_INSERT_CHUNK = "INSERT INTO chunks (message_id, seq, content, reasoning) VALUES (?, ?, ?, ?)"


class Fenced(LookupError):
    """A chunk was not stored: its answer was ended by another node (this node's lease ran out)."""

    def __init__(self, message_id: str) -> None:
        super().__init__(f"answer {message_id} was ended by another node: its chunk was not stored")


class GroupCommit(abc.ABC):
    """The write queue and its writer task; a subclass supplies the connection a batch commits on."""

    def __init__(self) -> None:
        self._queue: collections.deque[Write | ChunkWrite] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Per answer, its last chunk while no commit has taken it yet: ``extend_chunk`` adds to it.
        self._open_chunks: dict[str, ChunkWrite] = {}
        #: Set when a write is queued (or ``close`` is called): the writer wakes.
        self._wake = asyncio.Event()
        #: The writer (``_write_loop``), from ``_start_writer`` to ``_stop_writer``.
        self._writer: asyncio.Task[None] | None = None
        #: True from ``open`` until ``close`` starts: writes are taken.
        self._accepting = False
        #: Set by ``close``: the writer commits what is queued, then stops.
        self._stopping = False
        #: Commits done, for benchmarks and tests of the batching.
        self.commits = 0
        #: The database's outages, as the node's parts meet them; a commit done says it is back.
        self.outages = OutageLog()

    @abc.abstractmethod
    async def _commit_batch(self, batch: list[Write | ChunkWrite]) -> list[Outcome]:
        """``_commit`` the batch on a connection of the writer's."""

    def _turn(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Held while a batch is taken and committed: nothing, unless writers of other processes take turns.

        Taken before the batch, so what is queued while it waits for its turn commits with it.
        """
        return contextlib.nullcontext()

    # --- the queue and the writer -------------------------------------------------

    def _write(self, function: Callable[[Db], Awaitable[_T]], *, brief: bool = False) -> asyncio.Future[_T]:
        """Queue a write; its future resolves with its result once its batch is committed.

        Args:
            brief: Its cost is small and bounded (``Write.brief``): the writes every
                answer makes, with no more than ``BRIEF_TEXT`` of text.
        """
        future: asyncio.Future[_T] = self._new_future()
        self._queue.append(Write(function, future, brief))
        self._wake.set()
        return future

    def append_chunk(self, message_id: str, seq: int, content: str, *, reasoning: bool = False) -> asyncio.Future[None]:
        future: asyncio.Future[None] = self._new_future()
        write = ChunkWrite(message_id, seq, content, reasoning, future)
        self._queue.append(write)
        self._open_chunks[message_id] = write
        self._wake.set()
        return future

    def extend_chunk(self, message_id: str, seq: int, content: str, *, reasoning: bool = False) -> bool:
        write = self._open_chunks.get(message_id)
        if not self._accepting or write is None or write.seq != seq or write.reasoning != reasoning:
            return False
        write.parts.append(content)
        return True

    def _new_future(self) -> asyncio.Future[Any]:
        if not self._accepting or self._loop is None:
            raise RuntimeError("the store is not open")
        return self._loop.create_future()

    def _start_writer(self) -> None:
        """Start the writer task and take writes (``open``, once the database is ready)."""
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._wake = asyncio.Event()  # of this loop (a store may be opened again, in another)
        self._writer = self._loop.create_task(self._write_loop(), name="mfu-store-writer")
        self._accepting = True

    async def _stop_writer(self) -> bool:
        """Take no more writes; return once the writer has committed what was queued (False: it was not running)."""
        if self._writer is None:
            return False
        self._accepting = False
        self._stopping = True
        self._wake.set()
        await self._writer
        self._writer = None
        return True

    async def _write_loop(self) -> None:
        """The writer: commit what is queued, a batch at a time, until ``close``.

        An idle writer commits a write as soon as it is queued; what is queued while a commit
        runs waits for the next, which takes all of it.
        """
        while True:
            await self._wake.wait()
            self._wake.clear()
            async with self._turn():
                # Read before the queue: ``close`` stops the writes first, so this batch holds the last.
                stopping = self._stopping
                batch = list(self._queue)  # from here on no chunk of the batch grows: it is no longer open
                self._queue.clear()
                self._open_chunks.clear()
                if batch:
                    settle(await self._commit_batch(batch))
            if stopping:
                return

    async def _insert_chunks(self, db: Db, rows: list[tuple[str, int, str, bool]]) -> set[int]:
        """Insert the chunk rows; the indexes of those refused because their answer is no longer this node's.

        A database that only one node uses (SQLite) has no leases to lose: all are stored.
        """
        await db.executemany(_INSERT_CHUNK, rows)
        return set()

    async def _commit(self, db: Db, batch: list[Write | ChunkWrite]) -> list[Outcome]:
        """Commit ``batch`` on the writer's connection; the outcome of each write, in settling order."""
        try:
            return await self._transaction(db, batch)
        except Exception as error:
            if self.outages.failed("commits failed", error):
                # The connection is gone: each write tried again on it would fail too, with asyncpg's
                # errors of a connection in pieces ("released back to the pool"), taken for bugs.
                return [(write.future, None, error) for write in batch]
            # Something failed below the level of one write (a chunk insert,
            # the commit itself). Retry each write alone, so one bad write
            # does not fail the unrelated ones that shared its batch.
            outcomes: list[Outcome] = []
            for write in batch:
                try:
                    outcomes += await self._transaction(db, [write])
                except Exception as alone:
                    outcomes.append((write.future, None, alone))
            if is_lock_conflict(error):  # PostgreSQL broke a deadlock with another node's transaction: not a bug
                log.info("a group commit met another transaction in a deadlock; its writes were tried one by one")
            # A connection PostgreSQL just dropped first fails with asyncpg's errors of misuse
            # ("cannot switch to state 15; another operation is in progress"), then as an
            # outage: that was the outage starting, which is logged once, not a bug.
            elif not any(failure is not None and is_outage(failure) for _, _, failure in outcomes):
                log.error("a group commit of %d writes failed; retried them one by one", len(batch), exc_info=error)
            return outcomes

    async def _transaction(self, db: Db, batch: list[Write | ChunkWrite]) -> list[Outcome]:
        """Run ``batch`` in one transaction; the outcome of each write, in settling order."""
        outcomes: list[Outcome] = []
        async with db.transaction():
            chunks = [write for write in batch if isinstance(write, ChunkWrite)]
            if chunks:
                refused = await self._insert_chunks(db, [write.row for write in chunks])
                outcomes.extend(
                    (write.future, None, Fenced(write.message_id) if index in refused else None)
                    for index, write in enumerate(chunks)
                )
            for write in batch:
                if isinstance(write, Write):
                    outcomes.append((write.future, *await _run_one(db, write)))
        self.commits += 1
        self.outages.worked()
        return outcomes


async def _run_one(db: Db, write: Write) -> tuple[Any, BaseException | None]:
    # A savepoint per write: one failing write must not undo the others of its batch.
    tries = 1
    while True:
        try:
            async with db.savepoint():
                return await write.function(db), None
        except Exception as error:
            if tries == LOCK_CONFLICT_TRIES or not is_lock_conflict(error):
                return None, error
            # Its savepoint undone, the rows it took are free: the other transaction goes on, and this
            # write, tried again, waits for it to commit.
            log.info("a write met another transaction in a deadlock; tried again (%d)", tries)
            tries += 1
