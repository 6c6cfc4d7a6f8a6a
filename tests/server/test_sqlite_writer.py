"""The SQLite store's writer: chunks and each answer's brief writes (and reads) in the event loop, a lock
held elsewhere waited for without blocking it, checkpoints in a thread, and a ``-wal`` file that stays bounded."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from mfu_tui.server.store import SqliteStore, checkpoints
from mfu_tui.server.store import sqlite as sqlite_store
from mfu_tui.server.store.group_commit import BRIEF_TEXT
from mfu_tui.server.store.rows import new_id
from mfu_tui.server.store.sql_store import BRIEF_HISTORY


async def _open(path: Path) -> SqliteStore:
    store = SqliteStore(path)
    await store.open()
    return store


async def _streaming_reply(store: SqliteStore) -> str:
    exchange = await store.record_message("alice", None, "hi", new_id(), None)
    assert exchange is not None
    return exchange.reply_id


def _reads_in_threads(store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the threads the store's pool reads in from now on, one a read (the loop's reads are not listed)."""
    names: list[str] = []
    real_run_read = store._run_read

    def watched(function):
        names.append(threading.current_thread().name)
        return real_run_read(function)

    monkeypatch.setattr(store, "_run_read", watched)
    return names


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another program's connection holding the file's write lock (``mfu-chat admin delete-user``)."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


async def test_a_chunk_waits_for_a_lock_held_elsewhere_while_the_loop_runs_on(tmp_path):
    store = await _open(tmp_path / "chat.sqlite3")
    try:
        reply = await _streaming_reply(store)
        other = _hold_write_lock(store.path)
        committed = store.append_chunk(reply, 1, "held ")
        # The loop is free: timers fire, other tasks run, while the commit waits for the lock.
        for _ in range(20):
            await asyncio.sleep(0.005)
        assert not committed.done()
        other.execute("COMMIT")
        other.close()
        await asyncio.wait_for(committed, 10)
        assert await store.chunks_after(reply, 0) == [(1, "held ", False)]
    finally:
        await store.close()


async def test_a_lock_held_past_the_wait_fails_the_commit_with_sqlites_error(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_store, "LOCK_WAIT", 0.05)
    store = await _open(tmp_path / "chat.sqlite3")
    other = None
    try:
        reply = await _streaming_reply(store)
        other = _hold_write_lock(store.path)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await asyncio.wait_for(store.append_chunk(reply, 1, "refused "), 10)
    finally:
        if other is not None:
            other.execute("ROLLBACK")
            other.close()
        await store.close()


async def test_chunks_and_the_brief_writes_of_each_answer_commit_in_the_loop_and_other_writes_in_a_thread(
    tmp_path, monkeypatch
):
    store = await _open(tmp_path / "chat.sqlite3")
    try:
        threads: list[str] = []
        real_commit = store._commit

        async def watched(db, batch):
            threads.append(threading.current_thread().name)
            return await real_commit(db, batch)

        monkeypatch.setattr(store, "_commit", watched)
        short = await store.record_message("alice", None, "hi", new_id(), None)
        assert short is not None
        await store.append_chunk(short.reply_id, 1, "a chunk ")
        await store.finish_message(short.reply_id, "a chunk ", "complete", "stop", 1)
        long_text = "x" * (BRIEF_TEXT + 1)
        long = await store.record_message("alice", short.chat.id, long_text, new_id(), None)
        assert long is not None
        await store.finish_message(long.reply_id, long_text, "complete", "stop", 1)
        await store.delete_chat("alice", short.chat.id)
        in_loop = [name == threading.main_thread().name for name in threads]
        assert in_loop == [True, True, True, False, False, False]
    finally:
        await store.close()


async def test_the_reads_each_question_makes_run_in_the_loop_and_other_reads_in_a_thread(tmp_path, monkeypatch):
    store = await _open(tmp_path / "chat.sqlite3")
    try:
        exchange = await store.record_message("alice", None, "hi", new_id(), None)
        assert exchange is not None
        chat = exchange.chat.id
        in_threads = _reads_in_threads(store, monkeypatch)
        known = await store.find_exchange("alice", new_id())  # a question not sent before
        stored = await store.stored_bytes("alice")
        summary = await store.chat("alice", chat)
        state = await store.message_state("alice", chat, exchange.reply_id)
        assert (known, stored > 0, summary is not None, state is not None) == (None, True, True, True)
        assert in_threads == []
        page = await store.list_chats("alice", 10, None)
        assert [listed.id for listed in page.chats] == [chat]
        assert len(in_threads) == 1 and in_threads[0] != threading.main_thread().name
    finally:
        await store.close()


async def test_a_questions_history_is_read_once_it_is_stored_in_a_thread_if_the_chat_is_long(tmp_path, monkeypatch):
    store = await _open(tmp_path / "chat.sqlite3")
    try:
        first = await store.record_message("alice", None, "question 0", new_id(), None)
        assert first is not None and [turn.content for turn in first.history] == ["question 0"]
        chat, reply = first.chat.id, first.reply_id
        for n in range(1, BRIEF_HISTORY // 2 + 1):
            await store.finish_message(reply, f"answer {n - 1}", "complete", "stop", 1)
            exchange = await store.record_message("alice", chat, f"question {n}", new_id(), None)
            assert exchange is not None
            reply = exchange.reply_id
        await store.finish_message(reply, "the last answer", "complete", "stop", 1)
        reads_in_threads = _reads_in_threads(store, monkeypatch)
        long = await store.record_message("alice", chat, "one more", new_id(), None)
        assert long is not None and long.chat.message_count > BRIEF_HISTORY
        assert len(reads_in_threads) == 1 and reads_in_threads[0] != threading.main_thread().name
        assert len(long.history) == BRIEF_HISTORY + 3
        assert [turn.content for turn in long.history[-3:]] == [
            f"question {BRIEF_HISTORY // 2}",
            "the last answer",
            "one more",
        ]
    finally:
        await store.close()


async def test_checkpoints_run_beside_the_writer_and_keep_the_wal_file_bounded(tmp_path, monkeypatch):
    # Small figures, so that the rounds below pass the -wal file's limit many times over.
    monkeypatch.setattr(checkpoints, "CHECKPOINT_EVERY", 5)
    monkeypatch.setattr(checkpoints, "WAL_LIMIT", 64 * 1024)
    resets = []
    real_reset = checkpoints.Checkpointer.reset
    monkeypatch.setattr(checkpoints.Checkpointer, "reset", lambda self: (resets.append(1), real_reset(self)))
    path = tmp_path / "chat.sqlite3"
    store = await _open(path)
    wal = path.with_name(path.name + "-wal")
    rounds, largest = 300, 0
    try:
        replies = [await _streaming_reply(store) for _ in range(20)]
        for seq in range(1, rounds + 1):
            # One commit a round, touching the pages of twenty answers (and their parents).
            await asyncio.gather(*(store.append_chunk(reply, seq, "x" * 300) for reply in replies))
            largest = max(largest, wal.stat().st_size)
        stored = await store.chunks_after(replies[-1], 0)
        assert [seq for seq, *_ in stored] == list(range(1, rounds + 1))
    finally:
        await store.close()
    # With no checkpoint the -wal file would hold every page the rounds wrote: 60 MiB (measured: 40 MiB
    # for 200 rounds); with them it stayed under 5 MiB in every run.
    assert largest < 12 * 1024 * 1024
    assert resets  # the file passed its limit, and the writer let a checkpoint run alone
    assert not wal.exists()  # checkpointed into the database file as the store closed: every chunk is there
    reader = sqlite3.connect(path)
    try:
        assert reader.execute("SELECT COUNT(*) FROM chunks").fetchone()[0] == 20 * rounds
    finally:
        reader.close()
