"""The SQLite store: group commit, privacy, and failure isolation."""

from __future__ import annotations

import asyncio
import sqlite3
import stat

from mfu_tui.server.store import SqliteStore


async def test_chunks_are_committed_in_groups_not_one_by_one(tmp_path):
    store = SqliteStore(tmp_path / "group.sqlite3", commit_interval=0.005)
    await store.open()
    try:
        before = store.commits
        futures = [store.append_chunk("m1", seq, f"piece {seq} ") for seq in range(1, 1001)]
        await asyncio.gather(*futures)
        commits = store.commits - before
        stored = await store.chunks_after("m1", 0)
    finally:
        await store.close()
    assert [seq for seq, _ in stored] == list(range(1, 1001))
    assert commits < 100  # 1000 chunks, a handful of transactions


async def test_the_database_is_private_to_its_owner(tmp_path):
    store = SqliteStore(tmp_path / "private" / "chat.sqlite3")
    await store.open()
    await store.close()
    assert stat.S_IMODE((tmp_path / "private" / "chat.sqlite3").stat().st_mode) == 0o600


async def test_one_failing_write_does_not_fail_the_others_of_its_group_commit(tmp_path):
    store = SqliteStore(tmp_path / "batch.sqlite3", commit_interval=0.05)
    await store.open()
    try:
        first = store.append_chunk("m1", 1, "kept")
        duplicate = store.append_chunk("m1", 1, "same key again")
        recorded = asyncio.ensure_future(store.record_message("alice", None, "hello", "c1", None))
        results = await asyncio.gather(first, duplicate, recorded, return_exceptions=True)
        stored = await store.chunks_after("m1", 0)
    finally:
        await store.close()
    assert results[0] is None
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert results[2].chat.title == "hello"
    assert stored == [(1, "kept")]
