"""The stores, SQLite and PostgreSQL, through the same ``Store`` interface.

Every test that takes ``open_store`` runs once per store, the PostgreSQL one
on a real server (tests/support/postgres.py) with a fresh database per test.
"""

from __future__ import annotations

import asyncio
import sqlite3
import stat
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from mfu_tui.protocol import SENT_MESSAGE_CHARS, AttachmentPart, ChatParams, ChatSettings, Usage
from mfu_tui.server.store import AnswerFigures, ChatChange, SqliteStore, Store, make_store
from mfu_tui.server.store import sqlite as sqlite_schema
from mfu_tui.server.store.base import BadCursor, ChatBusy
from mfu_tui.server.store.rows import PAGE_CHARS, new_id
from mfu_tui.server.store.search import INDEXED_CHARS

OpenStore = Callable[..., Awaitable[Store]]

#: The node every store of these tests belongs to: a store opened again is that node restarted.
NODE = "node-under-test"


@pytest.fixture(params=["sqlite", "postgres"])
def store_location(request, tmp_path) -> str:
    """``--db`` of a store of each kind: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "store.sqlite3")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
async def open_store(store_location) -> AsyncIterator[OpenStore]:
    """Opens a store on ``store_location`` (the same database each time it is called)."""
    location = store_location
    opened: list[Store] = []

    async def open_() -> Store:
        store = make_store(location, node_id=NODE)
        await store.open()
        opened.append(store)
        return store

    yield open_
    for store in opened:
        await store.close()


async def _streaming_reply(store: Store) -> str:
    """A reply streaming under this store's lease: what chunks belong to."""
    exchange = await store.record_message("alice", None, "hi", new_id(), None)
    assert exchange is not None
    return exchange.reply_id


async def _hold_the_writer(store: Store) -> tuple[asyncio.Future[None], threading.Event]:
    """Queue a write that keeps the writer busy until the event is set; return once it runs."""
    running, release = threading.Event(), threading.Event()

    async def hold(db) -> None:
        running.set()
        while not release.is_set():  # each query yields the loop (PostgreSQL) or spins the writer thread (SQLite)
            await db.fetchval("SELECT 1")

    busy = store._write(hold)
    await asyncio.to_thread(running.wait)
    return busy, release


def unique_violation(store: Store) -> type[Exception]:
    if isinstance(store, SqliteStore):
        return sqlite3.IntegrityError
    import asyncpg

    return asyncpg.UniqueViolationError


async def test_chunks_are_committed_in_groups_not_one_by_one(open_store):
    store = await open_store()
    m1 = await _streaming_reply(store)
    before = store.commits
    futures = [store.append_chunk(m1, seq, f"piece {seq} ") for seq in range(1, 1001)]
    await asyncio.gather(*futures)
    commits = store.commits - before
    stored = await store.chunks_after(m1, 0)
    assert [seq for seq, *_ in stored] == list(range(1, 1001))
    assert commits < 100  # 1000 chunks, a handful of transactions


async def test_an_idle_writer_commits_a_lone_write_at_once(open_store):
    store = await open_store()
    m1 = await _streaming_reply(store)
    before = store.commits
    started = time.monotonic()
    await store.append_chunk(m1, 1, "alone")
    assert store.commits == before + 1
    # Far below the old fixed 5 ms window on any machine that commits at all
    # quickly; the point is that nothing waits for company.
    assert time.monotonic() - started < 0.5


async def test_writes_queued_while_a_commit_runs_share_the_next_commit(open_store):
    store = await open_store()
    m1 = await _streaming_reply(store)
    busy, release = await _hold_the_writer(store)
    before = store.commits
    chunks = [store.append_chunk(m1, seq, f"piece {seq}") for seq in range(1, 4)]
    release.set()
    await asyncio.gather(busy, *chunks)
    assert store.commits - before == 2  # the one that held the writer, then the three together
    assert [seq for seq, *_ in await store.chunks_after(m1, 0)] == [1, 2, 3]


async def test_text_added_to_a_queued_chunk_commits_with_it_and_never_after_a_commit_took_it(open_store):
    store = await open_store()
    m1 = await _streaming_reply(store)
    taken = store.append_chunk(m1, 1, "taken ")
    busy, release = await _hold_the_writer(store)  # queued after chunk 1: a commit took chunk 1 already
    assert not store.extend_chunk(m1, 1, "too late")
    second = store.append_chunk(m1, 2, "two")
    assert store.extend_chunk(m1, 2, " and")
    assert store.extend_chunk(m1, 2, " more")
    assert not store.extend_chunk(m1, 2, " thought", reasoning=True)  # never two kinds in one chunk
    assert not store.extend_chunk(m1, 1, " late")  # not the last chunk: its text must stay in order
    third = store.append_chunk(m1, 3, "Hmm", reasoning=True)
    assert not store.extend_chunk(m1, 2, " again")  # chunk 3 came between
    assert store.extend_chunk(m1, 3, ", yes", reasoning=True)
    release.set()
    await asyncio.gather(taken, busy, second, third)
    assert not store.extend_chunk(m1, 3, " after", reasoning=True)  # committed: it can no longer grow
    assert await store.chunks_after(m1, 0) == [(1, "taken ", False), (2, "two and more", False), (3, "Hmm, yes", True)]


async def test_one_failing_write_does_not_fail_the_others_of_its_group_commit(open_store):
    store = await open_store()
    m1 = await _streaming_reply(store)
    busy, release = await _hold_the_writer(store)  # so the three below share one commit
    first = store.append_chunk(m1, 1, "kept")
    duplicate = store.append_chunk(m1, 1, "same key again")
    recorded = asyncio.ensure_future(store.record_message("alice", None, "hello", "c1", None))
    await asyncio.sleep(0)  # record_message queues its write
    release.set()
    await busy
    results = await asyncio.gather(first, duplicate, recorded, return_exceptions=True)
    stored = await store.chunks_after(m1, 0)
    assert results[0] is None
    assert isinstance(results[1], unique_violation(store))
    assert results[2].chat.title == "hello"
    assert stored == [(1, "kept", False)]


async def test_a_client_message_id_is_stored_once_per_user(open_store):
    store = await open_store()
    first = await store.record_message("alice", None, "hello there", "c1", "m")
    again = await store.record_message("alice", None, "hello there", "c1", "m")
    other_user = await store.record_message("bob", None, "hello there", "c1", "m")
    found = await store.find_exchange("alice", "c1")
    assert not first.duplicate and first.created
    assert again.duplicate and again.user_message_id == first.user_message_id and again.reply_id == first.reply_id
    assert found is not None and found.reply_id == first.reply_id
    assert not other_user.duplicate and other_user.chat.id != first.chat.id
    assert (await store.list_chats("alice", 10, None)).chats == [again.chat]


async def test_chats_are_private_to_their_user(open_store):
    store = await open_store()
    mine = await store.record_message("alice", None, "secret", "c1", None)
    assert await store.chat("bob", mine.chat.id) is None
    assert await store.chat_detail("bob", mine.chat.id, 50) is None
    assert await store.record_message("bob", mine.chat.id, "intrude", "c2", None) is None
    assert await store.rename_chat("bob", mine.chat.id, "mine now") is None
    assert await store.delete_chat("bob", mine.chat.id) is None
    assert await store.message_state("bob", mine.chat.id, None) is None
    assert (await store.chat("alice", mine.chat.id)).title == "secret"


async def test_a_streamed_reply_is_finished_with_its_text_and_history(open_store):
    store = await open_store()
    first = await store.record_message("alice", None, "question one", "c1", None)
    for seq, piece in enumerate(["an", "swer"], start=1):
        await store.append_chunk(first.reply_id, seq, piece)
    streaming = await store.chat_detail("alice", first.chat.id, 50)
    summary = await store.finish_message(first.reply_id, "answer", "complete", "stop", 2)
    second = await store.record_message("alice", first.chat.id, "question two", "c2", None)
    state = await store.message_state("alice", first.chat.id, first.reply_id)
    assert [(m.content, m.status, m.seq) for m in streaming.messages] == [
        ("question one", "complete", 0),
        ("answer", "streaming", 2),
    ]
    assert summary.message_count == 2
    assert [(turn.role, turn.content) for turn in second.history] == [
        ("user", "question one"),
        ("assistant", "answer"),
        ("user", "question two"),
    ]
    assert (state.status, state.seq, state.finish_reason) == ("complete", 2, "stop")
    assert state.ended_at is not None


async def test_an_answers_reasoning_is_stored_apart_from_its_text(open_store):
    store = await open_store()
    thought = await store.record_message("alice", None, "question", "c1", None)
    await store.finish_message(thought.reply_id, "answer", "complete", "stop", 3, reasoning="Let me think.")
    plain = await store.record_message("alice", thought.chat.id, "again", "c2", None)
    await store.finish_message(plain.reply_id, "answer", "complete", "stop", 1)
    reopened = await open_store()  # read by another connection: nothing held in memory
    detail = await reopened.chat_detail("alice", thought.chat.id, 50)
    assert [(m.role, m.content, m.reasoning) for m in detail.messages] == [
        ("user", "question", ""),
        ("assistant", "answer", "Let me think."),
        ("user", "again", ""),
        ("assistant", "answer", ""),
    ]


async def test_an_answers_figures_are_stored_with_it_and_read_back_whole(open_store):
    store = await open_store()
    measured = await store.record_message("alice", None, "question", "c1", None)
    figures = AnswerFigures(
        usage=Usage(prompt_tokens=1234, completion_tokens=56), first_token_ms=321, tokens_per_second=43.21
    )
    await store.finish_message(measured.reply_id, "answer", "complete", "stop", 1, figures)
    # A server that reported no usage: only the time to the first token is known.
    unreported = await store.record_message("alice", measured.chat.id, "again", "c2", None)
    await store.finish_message(
        unreported.reply_id, "answer", "cancelled", "cancelled", 1, AnswerFigures(first_token_ms=7)
    )
    nothing = await store.record_message("alice", measured.chat.id, "once more", "c3", None)
    await store.finish_message(nothing.reply_id, "", "error", "error", 0)
    detail = await store.chat_detail("alice", measured.chat.id, 50)
    state = await store.message_state("alice", measured.chat.id, measured.reply_id)
    reopened = await open_store()  # read by another connection: nothing held in memory
    again = await reopened.chat_detail("alice", measured.chat.id, 50)
    rows = [(m.role, m.usage, m.first_token_ms, m.tokens_per_second) for m in detail.messages]
    assert rows == [
        ("user", None, None, None),
        ("assistant", Usage(prompt_tokens=1234, completion_tokens=56), 321, 43.21),
        ("user", None, None, None),
        ("assistant", None, 7, None),
        ("user", None, None, None),
        ("assistant", None, None, None),
    ]
    assert state.figures == figures
    assert again.messages == detail.messages


async def test_open_marks_replies_left_streaming_as_interrupted_and_keeps_their_text(open_store, store_location):
    crashed = await open_store()
    exchange = await crashed.record_message("alice", None, "hi", "c1", None)
    await crashed.record_message("alice", None, "no answer yet", "c2", None)
    await crashed.append_chunk(exchange.reply_id, 1, "Hmm.", reasoning=True)
    await crashed.append_chunk(exchange.reply_id, 2, "half ")
    await crashed.append_chunk(exchange.reply_id, 3, "an answer")
    streaming = await crashed.chat_detail("alice", exchange.chat.id, 50)
    restarted = make_store(store_location, node_id=NODE)  # the same node and database, as after a crash
    try:
        interrupted = await restarted.open()
        state = await restarted.message_state("alice", exchange.chat.id, None)
        detail = await restarted.chat_detail("alice", exchange.chat.id, 50)
        chunks = await restarted.chunks_after(exchange.reply_id, 1)
    finally:
        await restarted.close()
    again = await open_store()
    assert sorted((reply.user, reply.seq) for reply in interrupted) == [("alice", 0), ("alice", 3)]
    assert exchange.reply_id in {reply.message_id for reply in interrupted}
    assert (state.status, state.finish_reason, state.seq) == ("error", "interrupted", 3)
    # The reasoning stays apart from the answer, while it streams and once ended.
    assert [(m.content, m.reasoning, m.seq) for m in (streaming.messages[1], detail.messages[1])] == [
        ("half an answer", "Hmm.", 3),
        ("half an answer", "Hmm.", 3),
    ]
    assert chunks == [(2, "half ", False), (3, "an answer", False)]
    assert await again.chunks_after(exchange.reply_id, 0) == [
        (1, "Hmm.", True), (2, "half ", False), (3, "an answer", False)
    ]  # fmt: skip
    assert (await again.message_state("alice", exchange.chat.id, None)).status == "error"


async def test_chunks_are_pruned_after_the_replay_window_but_the_text_is_kept(open_store):
    store = await open_store()
    old = await store.record_message("alice", None, "old", "c1", None)
    await store.append_chunk(old.reply_id, 1, "old answer")
    await store.finish_message(old.reply_id, "old answer", "complete", "stop", 1)
    live = await store.record_message("alice", None, "live", "c2", None)
    await store.append_chunk(live.reply_id, 1, "still going")
    pruned = await store.prune_chunks(ended_before=float("inf"))
    detail = await store.chat_detail("alice", old.chat.id, 50)
    assert pruned == 1
    assert await store.chunks_after(old.reply_id, 0) == []
    assert await store.chunks_after(live.reply_id, 0) == [(1, "still going", False)]
    assert detail.messages[-1].content == "old answer"


async def test_chats_page_most_recent_first_with_cursors(open_store):
    store = await open_store()
    ids = [(await store.record_message("alice", None, f"chat {n}", f"c{n}", None)).chat.id for n in range(5)]
    first = await store.list_chats("alice", 2, None)
    second = await store.list_chats("alice", 2, first.next_cursor)
    third = await store.list_chats("alice", 2, second.next_cursor)
    listed = [chat.id for page in (first, second, third) for chat in page.chats]
    assert listed == ids[::-1]
    assert third.next_cursor is None


async def test_edit_with_regenerate_drops_what_follows_and_adds_a_streaming_reply(open_store):
    store = await open_store()
    first = await store.record_message("alice", None, "one", "c1", None)
    await store.finish_message(first.reply_id, "reply one", "complete", "stop", 1)
    second = await store.record_message("alice", first.chat.id, "two", "c2", None)
    await store.finish_message(second.reply_id, "reply two", "complete", "stop", 1)
    edit = await store.edit_message("alice", first.chat.id, first.user_message_id, "one, edited", regenerate=True)
    detail = await store.chat_detail("alice", first.chat.id, 50)
    assert [(turn.role, turn.content) for turn in edit.history] == [("user", "one, edited")]
    assert [(m.role, m.content, m.status) for m in detail.messages] == [
        ("user", "one, edited", "complete"),
        ("assistant", "", "streaming"),
    ]
    assert detail.messages[1].id == edit.reply_id and edit.chat.message_count == 2


async def test_a_second_answer_in_a_chat_is_refused_while_one_streams(open_store):
    store = await open_store()
    first = await store.record_message("alice", None, "first", "c1", None)
    with pytest.raises(ChatBusy):
        await store.record_message("alice", first.chat.id, "second", "c2", None)
    with pytest.raises(ChatBusy):
        await store.edit_message("alice", first.chat.id, first.user_message_id, "again", True, "e1")
    refused = await store.chat_detail("alice", first.chat.id, 50)
    unknown = (await store.find_exchange("alice", "c2"), await store.find_edit("alice", "e1"))
    await store.finish_message(first.reply_id, "answer", "complete", "stop", 1)
    second = await store.record_message("alice", first.chat.id, "second", "c2", None)
    assert [(m.content, m.status) for m in refused.messages] == [("first", "complete"), ("", "streaming")]
    assert unknown == (None, None)
    assert second.chat.message_count == 4 and not second.duplicate


async def test_a_reply_is_ended_once(open_store):
    store = await open_store()
    exchange = await store.record_message("alice", None, "hello", "c1", None)
    await store.finish_message(exchange.reply_id, "answer", "complete", "stop", 1)
    with pytest.raises(LookupError):
        await store.finish_message(exchange.reply_id, "another answer", "cancelled", "cancelled", 1)
    state = await store.message_state("alice", exchange.chat.id, exchange.reply_id)
    assert (state.status, state.finish_reason) == ("complete", "stop")


async def test_both_schemas_name_the_column_of_a_rows_user_owner(open_store, store_location):
    store = await open_store()
    await store.close()
    tables = ("chats", "messages", "edits", "attachments")
    if isinstance(store, SqliteStore):
        db = sqlite3.connect(store_location)
        columns = {table: {row[1] for row in db.execute(f"PRAGMA table_info({table})")} for table in tables}
        db.close()
    else:
        import asyncpg

        pg = await asyncpg.connect(store_location)
        try:
            rows = await pg.fetch(
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_name = ANY($1)",
                list(tables),
            )
        finally:
            await pg.close()
        columns = {table: {row[1] for row in rows if row[0] == table} for table in tables}
    assert all("owner" in names and "user" not in names for names in columns.values()), columns


async def test_a_sqlite_database_from_before_the_owner_column_keeps_its_data(tmp_path):
    path = tmp_path / "old.sqlite3"
    store = SqliteStore(path)
    await store.open()
    try:
        exchange = await store.record_message("alice", None, "an old question", "c1", None)
        await store.finish_message(exchange.reply_id, "an old answer", "complete", "stop", 1)
        await store.edit_message("alice", exchange.chat.id, exchange.user_message_id, "an edited question", False, "e1")
        await store.store_part("alice", _part("f1", b"data"), unsent_limit=100, expire_before=0)
        before = (await store.stored_bytes("alice"), await store.chat_detail("alice", exchange.chat.id, 50))
    finally:
        await store.close()
    # The database as version 10 left it: the owner column was called user, and no reasoning was kept.
    db = sqlite3.connect(path)
    db.executescript(
        f"{SQLITE_WITHOUT_NODE_ID}{WITHOUT_DELETED_USERS}{SQLITE_REASONING_UNCOUNTED}{WITHOUT_REASONING}"
        f"{sqlite_without_owner('chats', 'messages', 'edits', 'attachments')} PRAGMA user_version = 10;"
    )
    db.close()
    reopened = SqliteStore(path)
    await reopened.open()
    try:
        after = (await reopened.stored_bytes("alice"), await reopened.chat_detail("alice", exchange.chat.id, 50))
        listed = await reopened.list_chats("alice", 10, None)
        again = await reopened.record_message("alice", None, "an old question", "c1", None)
        edit = await reopened.find_edit("alice", "e1")
        uploads = await reopened.uploads("alice", ["f1"])
        found = await reopened.search("alice", ["edited"], 10, None)
        other = await reopened.chat("bob", exchange.chat.id)
    finally:
        await reopened.close()
    assert after == before
    assert [chat.id for chat in listed.chats] == [exchange.chat.id]
    assert again.duplicate and again.reply_id == exchange.reply_id
    assert edit is not None and edit.content == "an edited question"
    assert uploads["f1"].received == 4
    assert [hit.message_id for hit in found.hits] == [exchange.user_message_id]
    assert other is None
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == sqlite_schema.SCHEMA_VERSION


def _part(key: str, data: bytes) -> AttachmentPart:
    return AttachmentPart(
        client_message_id="c1",
        client_attachment_id=key,
        name="notes.txt",
        media_type="text/plain",
        size=len(data),
        offset=0,
        data=data,
    )


async def test_rename_and_delete(open_store):
    store = await open_store()
    exchange = await store.record_message("alice", None, "hello", "c1", None)
    await store.append_chunk(exchange.reply_id, 1, "x")
    renamed = await store.rename_chat("alice", exchange.chat.id, "greetings")
    deleted = await store.delete_chat("alice", exchange.chat.id)
    assert renamed.title == "greetings"
    assert deleted.id == exchange.chat.id
    assert await store.chat("alice", exchange.chat.id) is None
    assert await store.chunks_after(exchange.reply_id, 0) == []
    assert await store.find_exchange("alice", "c1") is None


async def test_the_sqlite_database_is_private_to_its_owner(tmp_path):
    store = SqliteStore(tmp_path / "private" / "chat.sqlite3")
    await store.open()
    await store.close()
    assert stat.S_IMODE((tmp_path / "private" / "chat.sqlite3").stat().st_mode) == 0o600


async def test_an_edit_with_a_client_edit_id_is_applied_once(open_store):
    store = await open_store()
    exchange = await store.record_message("alice", None, "question", "c1", None)
    chat_id = exchange.chat.id
    await store.finish_message(exchange.reply_id, "answer", "complete", "stop", 0)
    first = await store.edit_message("alice", chat_id, exchange.user_message_id, "better", True, "e1")
    await store.finish_message(first.reply_id, "new answer", "complete", "stop", 0)
    again = await store.edit_message("alice", chat_id, exchange.user_message_id, "best", True, "e1")
    found = await store.find_edit("alice", "e1")
    someone_else = await store.find_edit("bob", "e1")
    detail = await store.chat_detail("alice", chat_id, 50)
    await store.delete_chat("alice", chat_id)
    after_delete = await store.find_edit("alice", "e1")
    assert (first.duplicate, again.duplicate, found.duplicate) == (False, True, True)
    assert first.reply_id == again.reply_id == found.reply_id
    assert (again.message_id, again.content) == (exchange.user_message_id, "better")
    assert [m.content for m in detail.messages] == ["better", "new answer"]
    assert someone_else is None and after_delete is None


async def test_chats_page_numbers_pages_most_recent_first_with_the_users_total(open_store):
    store = await open_store()
    ids = [(await store.record_message("alice", None, f"chat {n}", f"c{n}", None)).chat.id for n in range(5)]
    await store.record_message("bob", None, "not alice's", "c1", None)
    first, total = await store.chats_page("alice", 0, 2)
    last, again = await store.chats_page("alice", 4, 2)
    beyond, _ = await store.chats_page("alice", 10, 2)
    nobody = await store.chats_page("carol", 0, 2)
    assert total == again == 5
    assert [listed.chat.id for listed in first] == ids[:-3:-1]
    assert [listed.chat.id for listed in last] == ids[:1]
    assert beyond == [] and nobody == ([], 0)
    assert first[0].chat == await store.chat("alice", ids[-1])
    # Nothing happened in the chat since its first message: created when last updated.
    assert first[0].created_at == pytest.approx(first[0].chat.updated_at.timestamp(), abs=1e-3)


async def test_set_pinned_lists_the_chat_first_but_is_not_activity(open_store):
    store = await open_store()
    older = await store.record_message("alice", None, "older", "c1", None)
    newer = await store.record_message("alice", None, "newer", "c2", None)
    pinned = await store.set_pinned("alice", older.chat.id, True)
    assert await store.set_pinned("bob", older.chat.id, False) is None
    assert await store.set_pinned("alice", "no-such-chat", True) is None
    listed = (await store.list_chats("alice", 10, None)).chats
    page, _ = await store.chats_page("alice", 0, 10)
    detail = await store.chat_detail("alice", older.chat.id, 50)
    renamed = await store.rename_chat("alice", older.chat.id, "still pinned")
    unpinned = await store.set_pinned("alice", older.chat.id, False)
    assert pinned.pinned and pinned.updated_at == older.chat.updated_at
    assert [chat.id for chat in listed] == [older.chat.id, newer.chat.id]
    assert [chat.pinned for chat in listed] == [True, False]
    # The REST API's numbered pages keep the original's order: most recently updated first.
    assert [(entry.chat.id, entry.chat.pinned) for entry in page] == [(newer.chat.id, False), (older.chat.id, True)]
    assert detail.chat.pinned and renamed.pinned
    assert not unpinned.pinned and not (await store.chat("alice", older.chat.id)).pinned


async def test_update_chat_stores_settings_pin_and_archive_and_only_a_title_is_activity(open_store):
    store = await open_store()
    exchange = await store.record_message("alice", None, "hello", "c1", None)
    chat_id, before = exchange.chat.id, exchange.chat.updated_at
    params = ChatParams(temperature=0.2, top_p=0.9, max_tokens=512, seed=-(2**63))
    configured = await store.update_chat("alice", chat_id, ChatChange(system_prompt="Answer in French.", params=params))
    pinned = await store.update_chat("alice", chat_id, ChatChange(pinned=True, archived=True))
    detail = await store.chat_detail("alice", chat_id, 50)
    cleared = await store.update_chat("alice", chat_id, ChatChange(system_prompt="", params=ChatParams(seed=3)))
    renamed = await store.update_chat("alice", chat_id, ChatChange(title="Bonjour"))
    assert await store.update_chat("bob", chat_id, ChatChange(pinned=True)) is None
    assert await store.update_chat("alice", "no-such-chat", ChatChange(archived=True)) is None
    assert configured.settings == ChatSettings(system_prompt="Answer in French.", params=params)
    assert configured.chat.updated_at == before and not configured.chat.pinned
    assert (pinned.chat.pinned, pinned.chat.archived, pinned.chat.updated_at) == (True, True, before)
    assert pinned.settings == configured.settings == detail.settings
    assert (detail.chat.pinned, detail.chat.archived) == (True, True)
    # An empty prompt removes it; params replace all four.
    assert cleared.settings == ChatSettings(system_prompt=None, params=ChatParams(seed=3))
    assert renamed.chat.title == "Bonjour" and renamed.chat.updated_at > before
    assert renamed.settings == cleared.settings and renamed.chat.pinned


async def test_a_new_chats_settings_are_stored_with_its_first_message_and_reach_every_answer(open_store):
    store = await open_store()
    settings = ChatSettings(system_prompt="Be brief.", params=ChatParams(temperature=1.5))
    first = await store.record_message("alice", None, "hi", "c1", None, settings=settings)
    await store.finish_message(first.reply_id, "hello", "complete", "stop", 1)
    second = await store.record_message("alice", first.chat.id, "again", "c2", None)
    await store.finish_message(second.reply_id, "hello again", "complete", "stop", 1)
    edit = await store.edit_message("alice", first.chat.id, second.user_message_id, "once more", regenerate=True)
    plain = await store.record_message("alice", None, "no settings", "c3", None)
    assert first.settings == second.settings == edit.settings == settings
    assert (await store.chat_detail("alice", first.chat.id, 50)).settings == settings
    assert plain.settings == ChatSettings()


async def test_list_chats_pages_pinned_first_and_keeps_archived_chats_apart(open_store):
    store = await open_store()
    ids = [(await store.record_message("alice", None, f"chat {n}", f"c{n}", None)).chat.id for n in range(7)]
    for n in (1, 4):
        await store.update_chat("alice", ids[n], ChatChange(pinned=True))
    for n in (2, 6):
        await store.update_chat("alice", ids[n], ChatChange(archived=True))
    await store.update_chat("alice", ids[6], ChatChange(pinned=True))
    pages = [await store.list_chats("alice", 2, None)]
    while pages[-1].next_cursor is not None:
        pages.append(await store.list_chats("alice", 2, pages[-1].next_cursor))
    archived = await store.list_chats("alice", 10, None, archived=True)
    listed = [chat.id for page in pages for chat in page.chats]
    # Pinned, newest first; then the rest, newest first; a page boundary falls between them.
    assert listed == [ids[4], ids[1], ids[5], ids[3], ids[0]]
    assert [len(page.chats) for page in pages] == [2, 2, 1]
    assert [chat.id for chat in archived.chats] == [ids[6], ids[2]] and archived.next_cursor is None
    assert all(chat.archived for chat in archived.chats)
    assert (await store.list_chats("bob", 10, None, archived=True)).chats == []
    with pytest.raises(BadCursor):
        await store.list_chats("alice", 2, "bm90IGEgY3Vyc29y")


async def chat_of_exchanges(store: Store, count: int, answer: str = "reply") -> str:
    """A chat of ``count`` user messages, each answered with ``answer``; its id."""
    exchange = await store.record_message("alice", None, "message 0", "c0", None)
    await store.finish_message(exchange.reply_id, answer, "complete", "stop", 1)
    for n in range(1, count):
        following = await store.record_message("alice", exchange.chat.id, f"message {n}", f"c{n}", None)
        await store.finish_message(following.reply_id, answer, "complete", "stop", 1)
    return exchange.chat.id


async def test_a_chat_comes_in_pages_newest_first_each_oldest_first(open_store):
    store = await open_store()
    chat_id = await chat_of_exchanges(store, 4)  # 8 messages
    pages = [await store.chat_detail("alice", chat_id, 3)]
    while pages[-1].next_cursor is not None:
        pages.append(await store.chat_detail("alice", chat_id, 3, pages[-1].next_cursor))
    assert [len(page.messages) for page in pages] == [3, 3, 2]
    # Each cursor is the id of its page's first message.
    assert [page.next_cursor for page in pages[:-1]] == [page.messages[0].id for page in pages[:-1]]
    whole = [message.content for page in reversed(pages) for message in page.messages]
    assert whole == [text for n in range(4) for text in (f"message {n}", "reply")]


async def test_every_page_says_where_it_starts_and_any_page_can_be_asked_by_offset(open_store):
    store = await open_store()
    chat_id = await chat_of_exchanges(store, 5)  # 10 messages
    newest = await store.chat_detail("alice", chat_id, 3)
    assert newest.offset == 7 and [m.content for m in newest.messages] == ["reply", "message 4", "reply"]
    before = await store.chat_detail("alice", chat_id, 3, newest.next_cursor)
    assert before.offset == 4 and before.messages[-1].content == "message 3"
    first = await store.chat_detail("alice", chat_id, 3, offset=0)
    assert first.offset == 0 and first.next_cursor is None
    assert [m.content for m in first.messages] == ["message 0", "reply", "message 1"]
    middle = await store.chat_detail("alice", chat_id, 4, offset=5)
    assert middle.offset == 5 and [m.content for m in middle.messages] == ["reply", "message 3", "reply", "message 4"]
    # Its cursor pages back as a newest page's does.
    assert middle.next_cursor == middle.messages[0].id
    back = await store.chat_detail("alice", chat_id, 50, middle.next_cursor)
    assert back.offset == 0 and len(back.messages) == 5
    tail = await store.chat_detail("alice", chat_id, 50, offset=8)
    assert tail.offset == 8 and [m.content for m in tail.messages] == ["message 4", "reply"]
    past = await store.chat_detail("alice", chat_id, 50, offset=40)
    assert past.messages == [] and past.offset == 10


async def test_a_page_can_be_asked_from_a_message_and_says_where_it_is(open_store):
    store = await open_store()
    chat_id = await chat_of_exchanges(store, 5)
    whole = await store.chat_detail("alice", chat_id, 50)
    found = await store.chat_detail("alice", chat_id, 2, at=whole.messages[6].id)
    assert found.offset == 6 and [m.id for m in found.messages] == [m.id for m in whole.messages[6:8]]
    other = await store.record_message("alice", None, "another chat", "other", None)
    with pytest.raises(BadCursor, match="'at'"):
        await store.chat_detail("alice", chat_id, 50, at=other.user_message_id)
    assert await store.chat_detail("bob", chat_id, 50, offset=0) is None


async def test_a_page_by_offset_ends_at_the_character_budget_but_holds_one(open_store):
    store = await open_store()
    chat_id = await chat_of_exchanges(store, 2, answer="x" * (PAGE_CHARS // 2 + 1))
    first = await store.chat_detail("alice", chat_id, 50, offset=0)
    # The first question, its answer and the next question fit; the second answer would pass the budget.
    assert [m.content[:9] for m in first.messages] == ["message 0", "xxxxxxxxx", "message 1"]
    following = await store.chat_detail("alice", chat_id, 50, offset=3)
    assert following.offset == 3 and [m.content[:9] for m in following.messages] == ["xxxxxxxxx"]


async def test_a_page_of_long_messages_ends_at_the_character_budget_but_holds_one(open_store):
    store = await open_store()
    chat_id = await chat_of_exchanges(store, 2, answer="x" * (PAGE_CHARS // 2 + 1))
    newest = await store.chat_detail("alice", chat_id, 50)
    # The newest answer and the user message before it fit; the answer before that would pass the budget.
    assert [m.content[:9] for m in newest.messages] == ["message 1", "xxxxxxxxx"]
    older = await store.chat_detail("alice", chat_id, 50, newest.next_cursor)
    assert [m.content[:9] for m in older.messages] == ["message 0", "xxxxxxxxx"]
    assert older.next_cursor is None


async def test_a_message_too_long_to_send_whole_is_sent_cut_and_marked(open_store):
    store = await open_store()
    exchange = await store.record_message("alice", None, "write a lot", "c1", None)
    huge = "y" * (SENT_MESSAGE_CHARS + 10)  # stored before answers were capped
    await store.finish_message(exchange.reply_id, huge, "complete", "stop", 1)
    detail = await store.chat_detail("alice", exchange.chat.id, 50)
    answer = detail.messages[-1]
    assert answer.truncated and len(answer.content) == SENT_MESSAGE_CHARS
    # It is alone in its page: the budget would be passed by anything with it.
    assert len(detail.messages) == 1 and detail.next_cursor == answer.id
    question = await store.chat_detail("alice", exchange.chat.id, 50, detail.next_cursor)
    assert [(m.content, m.truncated) for m in question.messages] == [("write a lot", False)]


async def test_a_message_text_is_read_in_parts_by_characters_for_its_owner_only(open_store):
    store = await open_store()
    exchange = await store.record_message("alice", None, "write a lot", "c1", None)
    text = "a\N{CRAB}b\x1bc\N{CRAB}"  # characters are code points, in both databases
    await store.finish_message(exchange.reply_id, text, "complete", "stop", 1)
    chat_id, reply_id = exchange.chat.id, exchange.reply_id
    parts = [await store.message_text("alice", chat_id, reply_id, offset, 2) for offset in (0, 2, 4, 6, 9)]
    assert parts == [("a\N{CRAB}", 6), ("b\x1b", 6), ("c\N{CRAB}", 6), ("", 6), ("", 6)]
    assert await store.message_text("mallory", chat_id, reply_id, 0, 2) is None
    other = await store.record_message("alice", None, "another chat", "c2", None)
    assert await store.message_text("alice", other.chat.id, reply_id, 0, 2) is None
    # A reply still streaming: the text its chunks hold so far.
    streaming = await store.record_message("alice", chat_id, "and more", "c3", None)
    await store.append_chunk(streaming.reply_id, 1, "so far")
    assert await store.message_text("alice", chat_id, streaming.reply_id, 3, 2) == ("fa", 6)


async def test_a_cursor_must_be_a_message_of_that_chat(open_store):
    store = await open_store()
    mine = await chat_of_exchanges(store, 1)
    other = await store.record_message("alice", None, "another chat", "other", None)
    with pytest.raises(BadCursor):
        await store.chat_detail("alice", mine, 50, other.user_message_id)
    with pytest.raises(BadCursor):
        await store.chat_detail("alice", mine, 50, "no-such-message")


def utf8(text: str) -> int:
    return len(text.encode())


async def test_stored_bytes_follow_every_write_of_a_users_text(open_store, store_location):
    store = await open_store()
    first = await store.record_message("alice", None, "héllo", "c1", None)  # é: two bytes
    asked = await store.stored_bytes("alice")
    await store.append_chunk(first.reply_id, 1, "ça va")  # chunks do not count: the reply does, once ended
    streaming = await store.stored_bytes("alice")
    await store.finish_message(first.reply_id, "ça va ?", "complete", "stop", 1)
    answered = await store.stored_bytes("alice")
    other = await store.record_message("alice", None, "another chat", "c2", None)
    await store.edit_message("alice", first.chat.id, first.user_message_id, "hi", regenerate=True, client_edit_id="e1")
    regenerated = await store.stored_bytes("alice")  # the new text, the kept edit; the old reply is gone
    left_streaming = await store.record_message("bob", None, "bob's", "c3", None)
    await store.append_chunk(left_streaming.reply_id, 1, "half")
    await store.delete_chat("alice", other.chat.id)
    after_delete = await store.stored_bytes("alice")
    restarted = make_store(store_location, node_id=NODE)  # ends bob's reply as interrupted, with its text
    try:
        await restarted.open()
        bob = await restarted.stored_bytes("bob")
    finally:
        await restarted.close()
    assert (asked, streaming) == (utf8("héllo"), utf8("héllo"))
    assert answered == utf8("héllo") + utf8("ça va ?")
    assert regenerated == utf8("hi") + utf8("hi") + utf8("another chat")
    assert after_delete == utf8("hi") * 2
    assert bob == utf8("bob's") + utf8("half")
    assert await store.stored_bytes("nobody") == 0


async def test_a_chats_system_prompt_counts_toward_its_stored_bytes(open_store):
    store = await open_store()
    settings = ChatSettings(system_prompt="Réponds en français.")
    first = await store.record_message("alice", None, "hi", "c1", None, settings=settings)
    created = await store.stored_bytes("alice")
    await store.update_chat("alice", first.chat.id, ChatChange(system_prompt="Be brief."))
    changed = await store.stored_bytes("alice")
    await store.update_chat("alice", first.chat.id, ChatChange(title="renamed", pinned=True))
    untouched = await store.stored_bytes("alice")
    await store.update_chat("alice", first.chat.id, ChatChange(system_prompt=""))
    cleared = await store.stored_bytes("alice")
    assert created == utf8("hi") + utf8("Réponds en français.")
    assert changed == untouched == utf8("hi") + utf8("Be brief.")
    assert cleared == utf8("hi")


async def test_an_answers_reasoning_counts_toward_its_stored_bytes(open_store, store_location):
    store = await open_store()
    first = await store.record_message("alice", None, "why?", "c1", None)
    await store.append_chunk(first.reply_id, 1, "hmm, ", reasoning=True)  # counted once the reply ends
    streaming = await store.stored_bytes("alice")
    await store.finish_message(first.reply_id, "Because.", "complete", "stop", 2, reasoning="hmm, pourquoi ?")
    answered = await store.stored_bytes("alice")
    left_streaming = await store.record_message("bob", None, "bob's", "c2", None)
    await store.append_chunk(left_streaming.reply_id, 1, "pondering", reasoning=True)
    restarted = make_store(store_location, node_id=NODE)  # ends bob's reply as interrupted, reasoning kept
    try:
        await restarted.open()
        bob = await restarted.stored_bytes("bob")
    finally:
        await restarted.close()
    await store.delete_chat("alice", first.chat.id)
    assert streaming == utf8("why?")
    assert answered == utf8("why?") + utf8("Because.") + utf8("hmm, pourquoi ?")
    assert bob == utf8("bob's") + utf8("pondering")
    assert await store.stored_bytes("alice") == 0


async def test_opening_a_database_from_before_reasoning_counted_counts_the_reasoning_it_has(open_store, store_location):
    store = await open_store()
    first = await store.record_message("alice", None, "why?", "c1", None, settings=ChatSettings(system_prompt="Be."))
    await store.finish_message(first.reply_id, "Because.", "complete", "stop", 2, reasoning="They ask.")
    await store.edit_message("alice", first.chat.id, first.user_message_id, "why not?", False, "e1")
    counted = await store.stored_bytes("alice")
    await store.close()
    # The database as the version before left it: the reasoning stored, not counted.
    if isinstance(store, SqliteStore):
        db = sqlite3.connect(store_location)
        db.executescript(
            f"{SQLITE_WITHOUT_NODE_ID} {WITHOUT_DELETED_USERS} {SQLITE_REASONING_UNCOUNTED} PRAGMA user_version = 12;"
        )
        db.close()
    else:
        import asyncpg

        pg = await asyncpg.connect(store_location)
        try:
            await pg.execute(
                f"{WITHOUT_DELETED_USERS} {PG_REASONING_UNCOUNTED} DELETE FROM schema_version WHERE version >= 14"
            )
        finally:
            await pg.close()
    reopened = await open_store()
    recounted = await reopened.stored_bytes("alice")
    await reopened.finish_message(
        (await reopened.record_message("alice", first.chat.id, "and?", "c2", None)).reply_id,
        "And.", "complete", "stop", 2, reasoning="More.",
    )  # fmt: skip
    assert counted == utf8("why not?") * 2 + utf8("Be.") + utf8("Because.") + utf8("They ask.")
    assert recounted == counted
    assert await reopened.stored_bytes("alice") == counted + utf8("and?") + utf8("And.") + utf8("More.")


async def test_opening_a_database_from_before_prompts_counted_counts_the_prompts_it_has(open_store, store_location):
    store = await open_store()
    settings = ChatSettings(system_prompt="Be brief.")
    await store.record_message("alice", None, "hi", "c1", None, settings=settings)
    await store.close()
    # The database as the version before left it: prompts stored, not counted.
    if isinstance(store, SqliteStore):
        db = sqlite3.connect(store_location)
        db.executescript(
            "DROP TRIGGER prompt_bytes_added; DROP TRIGGER prompt_bytes_changed;"
            " UPDATE chats SET bytes = bytes - length(CAST(system_prompt AS BLOB));"
            f" {SQLITE_WITHOUT_NODE_ID} {WITHOUT_DELETED_USERS} {SQLITE_REASONING_UNCOUNTED} {WITHOUT_REASONING}"
            f" {sqlite_without_owner('chats', 'messages', 'edits', 'attachments')} PRAGMA user_version = 9;"
        )
        db.close()
    else:
        import asyncpg

        pg = await asyncpg.connect(store_location)
        try:
            await pg.execute(
                "DROP TRIGGER prompt_bytes ON chats; DROP FUNCTION count_prompt_bytes;"
                f" UPDATE chats SET bytes = bytes - octet_length(system_prompt);"
                f" {WITHOUT_DELETED_USERS} {PG_REASONING_UNCOUNTED} {WITHOUT_REASONING}"
                f" {PG_WITHOUT_LEASE_TOKENS}"
                " DELETE FROM schema_version WHERE version >= 11"
            )
        finally:
            await pg.close()
    reopened = await open_store()
    assert await reopened.stored_bytes("alice") == utf8("hi") + utf8("Be brief.")


async def test_a_sqlite_database_of_schema_2_gets_its_stored_bytes_counted(tmp_path):
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(sqlite_schema.SCHEMA)
    old.execute("PRAGMA user_version = 2")
    old.execute("INSERT INTO chats (id, user, title, created_at, updated_at) VALUES ('c', 'alice', 't', 0, 0)")
    old.execute(
        "INSERT INTO messages (id, chat_id, user, role, content, status, created_at)"
        " VALUES ('m1', 'c', 'alice', 'user', 'héllo', 'complete', 0),"
        " ('m2', 'c', 'alice', 'assistant', 'hi', 'complete', 0)"
    )
    old.execute(
        "INSERT INTO edits (user, client_edit_id, chat_id, message_id, content, edited_at)"
        " VALUES ('alice', 'e1', 'c', 'm1', 'héllo', 0)"
    )
    old.commit()
    old.close()
    store = SqliteStore(path)
    await store.open()
    try:
        stored = await store.stored_bytes("alice")
        await store.record_message("alice", "c", "more", "c1", None)
        more = await store.stored_bytes("alice")
    finally:
        await store.close()
    assert stored == 2 * utf8("héllo") + utf8("hi")
    assert more == stored + utf8("more")
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == sqlite_schema.SCHEMA_VERSION


# --- search ---------------------------------------------------------------------

#: A word in none of the generated messages.
RARE = "xylophonist"


async def fill(store: Store, user: str, rounds: int, chats: int = 10) -> None:
    """``rounds`` questions with finished answers in each of ``chats`` new chats.

    Each round asks in every chat at once, then ends every answer: a chat has
    one answer streaming at a time.
    """
    chat_ids: list[str | None] = [None] * chats
    for round_ in range(rounds):
        exchanges = await asyncio.gather(
            *(
                store.record_message(user, chat_id, f"question {round_} about the weather", new_id(), None)
                for chat_id in chat_ids
            )
        )
        chat_ids = [exchange.chat.id for exchange in exchanges]
        answer = f"answer {round_}: rain, then sun"
        await asyncio.gather(*(store.finish_message(e.reply_id, answer, "complete", "stop", 1) for e in exchanges))


async def test_search_finds_one_word_in_one_message_among_thousands(open_store):
    store = await open_store()
    await fill(store, "alice", rounds=100)  # 2,000 messages
    content = f"Who plays? The {RARE.upper()}, they said."
    exchange = await store.record_message("alice", None, content, "needle", None)
    await store.finish_message(exchange.reply_id, "An answer.", "complete", "stop", 1)
    await store.record_message("bob", None, f"bob's {RARE} too", "b1", None)
    await fill(store, "alice", rounds=10, chats=2)  # newer messages after it

    found = await store.search("alice", [RARE], 20, None)

    assert len(found.hits) == 1 and found.next_cursor is None
    hit = found.hits[0]
    assert (hit.chat_id, hit.chat_title, hit.message_id, hit.role) == (
        exchange.chat.id,
        exchange.chat.title,
        exchange.user_message_id,
        "user",
    )
    assert hit.snippet == content
    assert [hit.snippet[start:end] for start, end in hit.highlights] == [RARE.upper()]
    assert (await store.search("bob", [RARE], 20, None)).hits[0].snippet == f"bob's {RARE} too"


async def test_search_matches_every_word_whole_and_the_last_as_a_prefix(open_store):
    store = await open_store()
    await store.record_message("alice", None, "the zebra AND the lion NEAR the river", "c1", None)
    await store.record_message("alice", None, "zebras only", "c2", None)

    async def snippets(*words: str) -> list[str]:
        return [hit.snippet for hit in (await store.search("alice", list(words), 20, None)).hits]

    assert await snippets("zebra") == ["zebras only", "the zebra AND the lion NEAR the river"]
    assert await snippets("zebra", "lion") == ["the zebra AND the lion NEAR the river"]
    assert await snippets("zebra", "on") == []  # not a prefix of any word of it: "zebra" is whole
    # Operators of the databases' syntaxes are words like any other.
    assert await snippets("and", "near") == ["the zebra AND the lion NEAR the river"]
    assert await snippets("or") == []
    assert await snippets("not") == []


async def test_an_answer_is_found_once_it_ends_and_edits_and_deletes_are_followed(open_store):
    store = await open_store()
    first = await store.record_message("alice", None, "tell me about aardvarks", "c1", None)
    chat_id = first.chat.id
    store.append_chunk(first.reply_id, 1, "Aardvarks eat termites")
    await store.append_chunk(first.reply_id, 2, " at night.")
    assert [h.role for h in (await store.search("alice", ["termites"], 20, None)).hits] == []  # still streaming
    await store.finish_message(first.reply_id, "Aardvarks eat termites at night.", "complete", "stop", 2)
    assert [h.message_id for h in (await store.search("alice", ["termites"], 20, None)).hits] == [first.reply_id]

    await store.edit_message("alice", chat_id, first.user_message_id, "tell me about pangolins", regenerate=True)
    assert (await store.search("alice", ["aardvarks"], 20, None)).hits == []  # the question changed, the answer went
    assert (await store.search("alice", ["termites"], 20, None)).hits == []
    assert [h.snippet for h in (await store.search("alice", ["pangolins"], 20, None)).hits] == [
        "tell me about pangolins"
    ]

    await store.delete_chat("alice", chat_id)
    assert (await store.search("alice", ["pangolins"], 20, None)).hits == []


async def test_search_pages_newest_first_and_refuses_cursors_it_did_not_hand_out(open_store):
    store = await open_store()
    made = [await store.record_message("alice", None, f"walrus number {n}", f"c{n}", None) for n in range(5)]
    bobs = await store.record_message("bob", None, "walrus of bob", "b1", None)
    pages = [await store.search("alice", ["walrus"], 2, None)]
    while pages[-1].next_cursor is not None:
        pages.append(await store.search("alice", ["walrus"], 2, pages[-1].next_cursor))
    found = [hit.message_id for page in pages for hit in page.hits]
    assert found == [exchange.user_message_id for exchange in reversed(made)]
    assert [len(page.hits) for page in pages] == [2, 2, 1]
    for cursor in (bobs.user_message_id, "nonsense"):
        with pytest.raises(BadCursor):
            await store.search("alice", ["walrus"], 2, cursor)


async def test_only_the_first_indexed_characters_of_a_message_are_searched(open_store):
    store = await open_store()
    padding = "x " * (INDEXED_CHARS // 2)
    await store.record_message("alice", None, padding[:-10] + "early bird", "c1", None)
    await store.record_message("alice", None, padding + "late bird", "c2", None)
    assert [hit.snippet.split()[-1] for hit in (await store.search("alice", ["bird"], 20, None)).hits] == ["bird"]
    assert (await store.search("alice", ["late"], 20, None)).hits == []


async def test_a_answer_body_of_distinct_words_is_stored_whole_and_its_start_indexed(open_store):
    # Distinct words make the largest index entry (a PostgreSQL tsvector holds at most 1 MiB).
    answer = " ".join(f"w{n}x" for n in range(60_000))  # about 400,000 characters
    store = await open_store()
    exchange = await store.record_message("alice", None, "say many words", "c1", None)
    await store.finish_message(exchange.reply_id, answer, "complete", "stop", 1)
    detail = await store.chat_detail("alice", exchange.chat.id, 10)
    assert detail is not None and detail.messages[-1].content == answer
    assert [hit.message_id for hit in (await store.search("alice", ["w10x"], 20, None)).hits] == [exchange.reply_id]
    assert (await store.search("alice", ["w59999x"], 20, None)).hits == []


async def test_opening_an_older_database_indexes_the_messages_it_has(open_store, store_location):
    store = await open_store()
    exchange = await store.record_message("alice", None, "an okapi in the forest", "c1", None)
    await store.finish_message(exchange.reply_id, "Okapis are shy.", "complete", "stop", 1)
    await store.close()
    await without_search_index(store, store_location)
    reopened = await open_store()
    found = await reopened.search("alice", ["okapi"], 20, None)
    assert [hit.message_id for hit in found.hits] == [exchange.reply_id, exchange.user_message_id]


async def without_search_index(store: Store, location: str) -> None:
    """Make the database what the version before search left: no index, an older schema version."""
    if isinstance(store, SqliteStore):
        db = sqlite3.connect(location)
        db.executescript(
            "DROP TRIGGER message_search_insert; DROP TRIGGER message_search_delete;"
            " DROP TRIGGER message_search_update; DROP TABLE message_search;"
            # The system prompt's bytes came later still: its triggers go before its column.
            " DROP TRIGGER prompt_bytes_added; DROP TRIGGER prompt_bytes_changed;"
            f" {WITHOUT_CHAT_SETTINGS}"
            # The import's migration and the answers' figures came later: undone too, so that they apply again.
            " DROP INDEX chat_import_keys; ALTER TABLE chats DROP COLUMN import_key;"
            " ALTER TABLE chats DROP COLUMN imported;"
            f" {WITHOUT_FIGURES} {WITHOUT_ATTACHMENTS} {SQLITE_WITHOUT_NODE_ID} {WITHOUT_DELETED_USERS}"
            f" {SQLITE_REASONING_UNCOUNTED}"
            f" {WITHOUT_REASONING}"
            f" {sqlite_without_owner('chats', 'messages', 'edits')}"
            " PRAGMA user_version = 3;"
        )
        db.close()
        return
    import asyncpg

    pg = await asyncpg.connect(location)
    try:
        await pg.execute(
            "ALTER TABLE messages DROP COLUMN search; DROP TRIGGER prompt_bytes ON chats;"
            f" DROP FUNCTION count_prompt_bytes; {WITHOUT_CHAT_SETTINGS}"
            " ALTER TABLE chats DROP COLUMN import_key; ALTER TABLE chats DROP COLUMN imported;"
            f" {WITHOUT_FIGURES} {WITHOUT_ATTACHMENTS} {WITHOUT_DELETED_USERS} {PG_REASONING_UNCOUNTED}"
            f" {WITHOUT_REASONING}"
            f" {PG_WITHOUT_LEASE_TOKENS}"
            " DELETE FROM schema_version WHERE version >= 5"
        )
    finally:
        await pg.close()


def sqlite_without_owner(*tables: str) -> str:
    """SQL that undoes SQLite's migration 11 in ``tables``: the owner column was called ``user``."""
    return "".join(f" ALTER TABLE {table} RENAME COLUMN owner TO user;" for table in tables)


#: SQL that undoes the migration of attachments (SQLite 9, PostgreSQL 10).
WITHOUT_ATTACHMENTS = "DROP TABLE attachment_parts; DROP TABLE attachments;"
#: PostgreSQL's fencing tokens (migration 12), undone so that it applies again.
PG_WITHOUT_LEASE_TOKENS = "DROP SEQUENCE lease_tokens; ALTER TABLE messages DROP COLUMN lease_token;"

#: SQL that undoes the migration of chat settings and archives (SQLite 5, PostgreSQL 6).
WITHOUT_CHAT_SETTINGS = "DROP INDEX chats_listed;" + "".join(
    f" ALTER TABLE chats DROP COLUMN {column};"
    for column in ("archived", "system_prompt", "temperature", "top_p", "max_tokens", "seed")
)


#: SQL that undoes SQLite's migration 15: the worker generating a reply (``--workers``).
SQLITE_WITHOUT_NODE_ID = " ALTER TABLE messages DROP COLUMN node_id;"

#: SQL that undoes the migration of the deleted users (SQLite 14, PostgreSQL 15).
WITHOUT_DELETED_USERS = "DROP TABLE deleted_users;"

#: SQL that undoes SQLite's migration 13: the triggers of migration 3 count the messages' text
#: alone, and the reasoning stored is not counted.
SQLITE_REASONING_UNCOUNTED = """
    DROP TRIGGER message_bytes_added; DROP TRIGGER message_bytes_changed; DROP TRIGGER message_bytes_removed;
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
    UPDATE chats SET bytes = bytes
        - (SELECT COALESCE(SUM(length(CAST(reasoning AS BLOB))), 0) FROM messages WHERE chat_id = chats.id);
"""
#: SQL that undoes PostgreSQL's migration 14, as ``SQLITE_REASONING_UNCOUNTED`` does SQLite's 13.
PG_REASONING_UNCOUNTED = """
    DROP TRIGGER message_bytes ON messages; DROP FUNCTION count_message_bytes;
    CREATE TRIGGER message_bytes AFTER INSERT OR DELETE OR UPDATE OF content ON messages
        FOR EACH ROW EXECUTE FUNCTION count_chat_bytes();
    UPDATE chats SET bytes = bytes
        - (SELECT COALESCE(SUM(octet_length(reasoning)), 0) FROM messages WHERE chat_id = chats.id);
"""

#: SQL that undoes the migration of the answers' reasoning (SQLite 12, PostgreSQL 13; the counting of
#: its bytes goes first: ``SQLITE_REASONING_UNCOUNTED``, ``PG_REASONING_UNCOUNTED``).
WITHOUT_REASONING = " ALTER TABLE chunks DROP COLUMN reasoning; ALTER TABLE messages DROP COLUMN reasoning;"


#: SQL that undoes the migration of the answers' figures (SQLite 8, PostgreSQL 9).
WITHOUT_FIGURES = "".join(
    f" ALTER TABLE messages DROP COLUMN {column};"
    for column in ("prompt_tokens", "completion_tokens", "first_token_ms", "tokens_per_second")
)


async def test_opening_a_database_from_before_chat_settings_keeps_its_chats_unpinned_and_unarchived(
    open_store, store_location
):
    store = await open_store()
    exchange = await store.record_message("alice", None, "an old chat", "c1", None)
    await store.close()
    await without_search_index(store, store_location)  # and without chat settings: the schema before both
    reopened = await open_store()
    listed = await reopened.list_chats("alice", 10, None)
    detail = await reopened.chat_detail("alice", exchange.chat.id, 50)
    archived = await reopened.update_chat("alice", exchange.chat.id, ChatChange(archived=True))
    assert [(chat.id, chat.pinned, chat.archived) for chat in listed.chats] == [(exchange.chat.id, False, False)]
    assert detail.settings == ChatSettings()
    assert archived.chat.archived


async def test_opening_a_database_from_before_the_answers_figures_reads_its_answers_with_none(
    open_store, store_location
):
    store = await open_store()
    old = await store.record_message("alice", None, "an old question", "c1", None)
    await store.finish_message(old.reply_id, "an old answer", "complete", "stop", 1)
    await store.close()
    await without_search_index(store, store_location)  # the schema from before the figures (and more)
    reopened = await open_store()
    new = await reopened.record_message("alice", old.chat.id, "a new question", "c2", None)
    figures = AnswerFigures(
        usage=Usage(prompt_tokens=9, completion_tokens=3), first_token_ms=40, tokens_per_second=75.0
    )
    await reopened.finish_message(new.reply_id, "a new answer", "complete", "stop", 1, figures)
    detail = await reopened.chat_detail("alice", old.chat.id, 50)
    state = await reopened.message_state("alice", old.chat.id, old.reply_id)
    assert [(m.content, m.usage, m.first_token_ms, m.tokens_per_second) for m in detail.messages] == [
        ("an old question", None, None, None),
        ("an old answer", None, None, None),
        ("a new question", None, None, None),
        ("a new answer", Usage(prompt_tokens=9, completion_tokens=3), 40, 75.0),
    ]
    assert (state.finish_reason, state.figures) == ("stop", AnswerFigures())
