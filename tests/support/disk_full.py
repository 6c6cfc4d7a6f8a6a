"""A SQLite database that is full, without a full file system: SQLite's own bound on its size.

A test cannot fill a real file system unprivileged. ``PRAGMA max_page_count``
bounds the database instead, on the store's writer connection (the bound is
the connection's): a write that needs a page past it fails with SQLITE_FULL,
"database or disk is full", as it does when the disk is full.
"""

from __future__ import annotations

from mfu_tui.server.store import Store
from mfu_tui.server.store.sqlite import SqliteStore

#: SQLite's largest page count: no bound but the file system's.
NO_BOUND = 4294967294


async def fill_disk(store: Store, room: int = 0) -> None:
    """Let ``store``'s SQLite file grow by ``room`` pages at most from now on."""

    async def bound(db) -> None:
        pages = await db.fetchval("PRAGMA page_count")
        await db.fetchval(f"PRAGMA max_page_count = {pages + room}")

    assert isinstance(store, SqliteStore)
    await store._write(bound)


async def free_disk(store: Store) -> None:
    """Lift the bound ``fill_disk`` set: room again."""
    assert isinstance(store, SqliteStore)
    await store._write(lambda db: db.fetchval(f"PRAGMA max_page_count = {NO_BOUND}"))
