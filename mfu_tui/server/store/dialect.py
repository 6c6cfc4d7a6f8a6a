"""What the store algorithm (``sql_store.SqlStore``) needs of a database: a connection and a dialect.

The algorithm is written once, against ``Db``: a connection that runs SQL
with ``?`` placeholders and hands rows back as tuples, whatever the driver.
Each database supplies one (``sqlite.SqliteDb``, ``postgres.PostgresDb``)
and a ``Dialect``: the few pieces of SQL that differ between them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar

_T = TypeVar("_T")


class Db(Protocol):
    """A database connection, as the store algorithm uses it (``?`` placeholders, rows as tuples)."""

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Every row of a query."""

    async def fetchrow(self, sql: str, *args: Any) -> tuple[Any, ...] | None:
        """The first row of a query, or None."""

    async def fetchval(self, sql: str, *args: Any) -> Any:
        """The first column of the first row of a query, or None."""

    async def execute(self, sql: str, *args: Any) -> int:
        """Run a statement; the rows it changed."""

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """Run a statement once for each row of parameters."""

    def transaction(self) -> AbstractAsyncContextManager[None]:
        """A transaction that writes: committed at the end of the block, undone if it raises."""

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """A savepoint inside a transaction: if the block raises, only what it did is undone."""

    def snapshot(self) -> AbstractAsyncContextManager[None]:
        """A read-only transaction: every query of the block sees the same snapshot."""


def _no_twin(error: Exception) -> None:
    """One writer: no twin write of another node can violate a unique index."""
    return None


@dataclasses.dataclass(frozen=True)
class Dialect:
    """The SQL that differs between the databases (``?`` placeholders, like all the rest).

    What is left out suits a database that one writer writes (SQLite).
    """

    #: The larger of two values (a scalar function).
    greatest: str
    #: The search query: parameters (indexed characters, ``search_words(words)``, the ``n`` to
    #: stay below, user, limit); rows (message id, chat id, chat title, role, text, created_at).
    search_sql: str
    #: The words as the database's full-text query (the second parameter of ``search_sql``).
    search_words: Callable[[list[str]], str]
    #: Appended to a query of rows that the write goes on to change: a twin of
    #: that write on another node waits for this one.
    lock: str = ""
    #: Appended to the query of replies to end as interrupted: a reply another
    #: node is ending right now is passed over.
    lock_skip_locked: str = ""
    #: Assignments added when a reply ends, after the common ones ("" or ", column = ...").
    ended: str = ""
    #: The unique index that ``error`` violates, if it violates one that another node's
    #: twin write can: the algorithm then reads what that write stored.
    violated_index: Callable[[Exception], str | None] = _no_twin


def run_sync(awaitable: Awaitable[_T]) -> _T:
    """Run, in this thread, a coroutine that never waits (one on a ``Db`` over a blocking driver).

    Raises:
        RuntimeError: it waited for something after all (a bug: nothing would wake it).
    """
    steps = awaitable.__await__()
    try:
        next(steps)
    except StopIteration as done:
        result: _T = done.value
        return result
    steps.close()
    raise RuntimeError("a store coroutine waited on a blocking connection")
