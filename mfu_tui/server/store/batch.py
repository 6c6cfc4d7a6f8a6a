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
    """A queued write: a coroutine function of the writer's connection, its future, and whether it is brief."""

    __slots__ = ("function", "future", "brief")

    def __init__(self, function: Callable[[Db], Awaitable[Any]], future: asyncio.Future[Any], brief: bool) -> None:
        self.function = function
        self.future = future
        #: Its cost is small and bounded: SQLite commits it in the event loop, with chunks.
        self.brief = brief


class ChunkWrite:
    """A queued chunk insert, its text in parts (``extend_chunk`` adds to it while queued), and its future."""

    __slots__ = ("message_id", "seq", "parts", "reasoning", "future")

    def __init__(self, message_id: str, seq: int, content: str, reasoning: bool, future: asyncio.Future[None]) -> None:
        self.message_id = message_id
        self.seq = seq
        #: Joined only when a commit takes the chunk: adding to a long chunk costs its part, not the whole.
        self.parts = [content]
        self.reasoning = reasoning
        self.future = future

    @property
    def row(self) -> tuple[str, int, str, bool]:
        """The row to insert: ``(message_id, seq, content, reasoning)``."""
        return (self.message_id, self.seq, "".join(self.parts), self.reasoning)


def settle(outcomes: list[Outcome]) -> None:
    """Resolve the futures of one commit, in queue order (runs in the event loop)."""
    for future, result, error in outcomes:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
