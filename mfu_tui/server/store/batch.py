"""The queued writes of a group commit, and settling their futures.

A store queues writes and commits them in batches (``group_commit.GroupCommit``);
a write's future resolves only once its batch is committed (persist, then
send). Chunk inserts are kept apart so a batch inserts them with one
``executemany``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from mfu_tui.server.store.dialect import Db

#: What one write of a committed batch came to: its future, its result, its error.
Outcome = tuple[asyncio.Future[Any], Any, BaseException | None]


class Write:
    """A queued write: a coroutine function of the writer's connection, and its future."""

    __slots__ = ("function", "future")

    def __init__(self, function: Callable[[Db], Awaitable[Any]], future: asyncio.Future[Any]) -> None:
        self.function = function
        self.future = future


class ChunkWrite:
    """A queued chunk insert: the row ``(message_id, seq, content, reasoning)`` and its future."""

    __slots__ = ("row", "future")

    def __init__(self, row: tuple[str, int, str, bool], future: asyncio.Future[None]) -> None:
        self.row = row
        self.future = future


def settle(outcomes: list[Outcome]) -> None:
    """Resolve the futures of one commit, in queue order (runs in the event loop)."""
    for future, result, error in outcomes:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
