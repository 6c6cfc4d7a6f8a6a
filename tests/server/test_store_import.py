"""Imported chats in the stores (SQLite and a real PostgreSQL): idempotent by import key, resumable by entry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mfu_tui.protocol import ImportChat, ImportedMessage
from mfu_tui.server.store import ImportGap
from tests.server.test_store import open_store, store_location  # noqa: F401 (fixtures)

CREATED = datetime(2023, 3, 1, 12, 0, tzinfo=UTC)
UPDATED = datetime(2023, 3, 2, 8, 30, tzinfo=UTC)


def entry(role: str, content: str, minute: int | None = None, *, continued: bool = False) -> ImportedMessage:
    when = None if minute is None else datetime(2023, 3, 1, 12, minute, tzinfo=UTC)
    return ImportedMessage(role=role, content=content, created_at=when, continued=continued)  # type: ignore[arg-type]


ENTRIES = [
    entry("user", "What is a monad?", 1),
    entry("assistant", "A monad is ", 2),
    entry("assistant", "a monoid in the category of endofunctors.", continued=True),
    entry("user", "Thanks", None),
]


def part(first: int, count: int, key: str = "chatgpt:conv-1", entries: list[ImportedMessage] = ENTRIES) -> ImportChat:
    return ImportChat(
        request_id="r1",
        import_key=key,
        title="Monads",
        created_at=CREATED,
        updated_at=UPDATED,
        first=first,
        total=len(entries),
        messages=entries[first : first + count],
    )


async def test_a_conversation_imported_in_parts_is_stored_once_with_its_times(open_store):  # noqa: F811
    store = await open_store()
    first = await store.import_chat("alice", part(0, 2))
    second = await store.import_chat("alice", part(2, 2))
    detail = await store.chat_detail("alice", first.chat.id, 50)
    assert (first.created, first.stored, first.added) == (True, 2, 2)
    assert (second.created, second.stored, second.added) == (False, 4, 2)
    assert [(m.role, m.content, m.status, m.created_at.minute) for m in detail.messages] == [
        ("user", "What is a monad?", "complete", 1),
        ("assistant", "A monad is a monoid in the category of endofunctors.", "complete", 2),
        ("user", "Thanks", "complete", 2),  # no time of its own: the one before it
    ]
    assert [m.finish_reason for m in detail.messages] == [None, "stop", None]
    assert detail.chat.title == "Monads" and detail.chat.message_count == 3
    assert detail.chat.updated_at == UPDATED
    assert await store.import_progress("alice", "chatgpt:conv-1") == (second.chat, 4)


async def test_importing_again_stores_nothing_new(open_store):  # noqa: F811
    store = await open_store()
    await store.import_chat("alice", part(0, 4))
    listed = await store.list_chats("alice", 50, None)
    used = await store.stored_bytes("alice")
    again = [await store.import_chat("alice", part(0, 2)), await store.import_chat("alice", part(2, 2))]
    assert [(i.created, i.stored, i.added) for i in again] == [(False, 4, 0), (False, 4, 0)]
    assert await store.list_chats("alice", 50, None) == listed
    assert await store.stored_bytes("alice") == used


async def test_an_overlapping_part_adds_only_what_is_new_and_a_gap_is_refused(open_store):  # noqa: F811
    store = await open_store()
    await store.import_chat("alice", part(0, 2))
    with pytest.raises(ImportGap, match="'first' is 3 but 2 messages"):
        await store.import_chat("alice", part(3, 1))
    with pytest.raises(ImportGap):  # a later part of a conversation never started
        await store.import_chat("alice", part(1, 1, key="chatgpt:conv-2"))
    overlapping = await store.import_chat("alice", part(1, 3))
    detail = await store.chat_detail("alice", overlapping.chat.id, 50)
    assert (overlapping.stored, overlapping.added) == (4, 2)
    assert [m.content for m in detail.messages] == [
        "What is a monad?",
        "A monad is a monoid in the category of endofunctors.",
        "Thanks",
    ]
    assert await store.import_progress("alice", "chatgpt:conv-2") is None


async def test_an_import_key_is_per_user_and_goes_with_its_chat(open_store):  # noqa: F811
    store = await open_store()
    alices = await store.import_chat("alice", part(0, 4))
    bobs = await store.import_chat("bob", part(0, 4))
    assert bobs.created and bobs.chat.id != alices.chat.id
    assert await store.chat("bob", alices.chat.id) is None
    await store.delete_chat("alice", alices.chat.id)
    assert await store.import_progress("alice", "chatgpt:conv-1") is None
    back = await store.import_chat("alice", part(0, 4))  # deleted, then imported again: a new chat
    assert back.created and back.stored == 4


async def test_imported_text_counts_against_the_quota_and_is_searched(open_store):  # noqa: F811
    store = await open_store()
    imported = await store.import_chat("alice", part(0, 4))
    hits = await store.search("alice", ["endofunctors"], 10, None)
    expected = sum(len(e.content.encode()) for e in ENTRIES)
    assert await store.stored_bytes("alice") == expected
    assert [hit.chat_id for hit in hits.hits] == [imported.chat.id]
