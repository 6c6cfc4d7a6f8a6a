"""Attachments in both stores: parts stored once and in order, taken by a message, read back, deleted."""

from __future__ import annotations

import time

import pytest

from mfu_tui.protocol import AttachmentInfo, AttachmentPart
from mfu_tui.server.model_input import AttachedFile
from mfu_tui.server.store import AttachmentsNotReady, UploadRefused, UploadTooLarge
from tests.server.test_store import open_store, store_location  # noqa: F401 (fixtures)
from tests.support.postgres import postgres_server, postgres_url  # noqa: F401 (fixtures)

LIMIT = 1_000_000


def part(key: str, data: bytes, offset: int, size: int, name: str = "notes.txt", kind: str = "text/plain"):
    return AttachmentPart(
        client_message_id="c1",
        client_attachment_id=key,
        name=name,
        media_type=kind,
        size=size,
        offset=offset,
        data=data,
    )


async def upload(store, user: str, key: str, data: bytes, name: str = "notes.txt", kind: str = "text/plain") -> int:
    received = 0
    for start in range(0, max(len(data), 1), 4):
        received = await store.store_part(
            user, part(key, data[start : start + 4], start, len(data), name, kind), unsent_limit=LIMIT, expire_before=0
        )
    return received


async def test_parts_are_stored_in_order_once_and_a_message_takes_the_whole_file(open_store):  # noqa: F811
    store = await open_store()
    first = part("a1", b"hell", 0, 10)
    assert await store.store_part("alice", first, unsent_limit=LIMIT, expire_before=0) == 4
    # The same part again, and one past the end of what is stored: nothing stored, the place told.
    assert await store.store_part("alice", first, unsent_limit=LIMIT, expire_before=0) == 4
    assert await store.store_part("alice", part("a1", b"ld", 8, 10), unsent_limit=LIMIT, expire_before=0) == 4
    assert await store.store_part("alice", part("a1", b"o wor", 4, 10), unsent_limit=LIMIT, expire_before=0) == 9
    assert not (await store.uploads("alice", ["a1"]))["a1"].whole
    assert await store.store_part("alice", part("a1", b"d", 9, 10), unsent_limit=LIMIT, expire_before=0) == 10
    uploads = await store.uploads("alice", ["a1", "nothing"])
    assert list(uploads) == ["a1"] and uploads["a1"].whole and not uploads["a1"].sent
    assert await upload(store, "alice", "a2", b"\x89PNG....", "cat.png", "image/png") == 8

    exchange = await store.record_message("alice", None, "look", "c1", None, attachments=["a1", "a2"])

    assert exchange.history[-1].attachments == (
        AttachedFile("notes.txt", "text/plain", b"hello word"),
        AttachedFile("cat.png", "image/png", b"\x89PNG...."),
    )
    detail = await store.chat_detail("alice", exchange.chat.id, 50)
    assert detail.messages[0].attachments == [
        AttachmentInfo(name="notes.txt", media_type="text/plain", size=10),
        AttachmentInfo(name="cat.png", media_type="image/png", size=8),
    ]
    assert detail.messages[1].attachments == []
    # Sent: a part of it again is answered with its size, and no other message can take it.
    assert await store.store_part("alice", first, unsent_limit=LIMIT, expire_before=0) == 10
    assert (await store.uploads("alice", ["a1"]))["a1"].sent
    await store.finish_message(exchange.reply_id, "ok", "complete", "stop", 1)
    with pytest.raises(AttachmentsNotReady):
        await store.record_message("alice", exchange.chat.id, "again", "c2", None, attachments=["a1"])
    # Nothing of the refused message was stored.
    assert len((await store.chat_detail("alice", exchange.chat.id, 50)).messages) == 2


async def test_an_upload_is_the_users_own_and_keeps_its_name_type_and_size(open_store):  # noqa: F811
    store = await open_store()
    await upload(store, "bob", "a1", b"bob's file")
    assert await store.uploads("alice", ["a1"]) == {}
    # Alice's own a1 is another upload.
    assert await store.store_part("alice", part("a1", b"mine", 0, 4), unsent_limit=LIMIT, expire_before=0) == 4
    with pytest.raises(UploadRefused, match="a part must carry the same name, mediaType and size"):
        await store.store_part("alice", part("a1", b"mine", 0, 5), unsent_limit=LIMIT, expire_before=0)
    with pytest.raises(AttachmentsNotReady):
        await store.record_message("bob", None, "x", "c1", None, attachments=["missing"])


async def test_unsent_uploads_are_bounded_and_expire(open_store):  # noqa: F811
    store = await open_store()
    await store.store_part("alice", part("a1", b"x", 0, 600), unsent_limit=1000, expire_before=0)
    with pytest.raises(UploadTooLarge) as refused:
        await store.store_part("alice", part("a2", b"x", 0, 600), unsent_limit=1000, expire_before=0)
    assert refused.value.held == 600
    # A day later the unsent one is dropped when another starts.
    later = time.time() + 1
    assert await store.store_part("alice", part("a2", b"x", 0, 600), unsent_limit=1000, expire_before=later) == 1
    assert list(await store.uploads("alice", ["a1", "a2"])) == ["a2"]


async def test_stored_files_count_against_the_quota_and_go_with_their_chat(open_store):  # noqa: F811
    store = await open_store()
    await upload(store, "alice", "a1", b"0123456789")
    assert await store.stored_bytes("alice") == 10
    exchange = await store.record_message("alice", None, "abc", "c1", None, attachments=["a1"])
    assert await store.stored_bytes("alice") == 13
    await store.finish_message(exchange.reply_id, "", "complete", "stop", 0)
    await store.delete_chat("alice", exchange.chat.id)
    assert await store.stored_bytes("alice") == 0
    assert await store.uploads("alice", ["a1"]) == {}


async def test_a_regenerating_edit_drops_the_files_of_the_messages_it_drops(open_store):  # noqa: F811
    store = await open_store()
    first = await store.record_message("alice", None, "one", "c1", None)
    await store.finish_message(first.reply_id, "ok", "complete", "stop", 1)
    await upload(store, "alice", "a1", b"later file")
    second = await store.record_message("alice", first.chat.id, "two", "c2", None, attachments=["a1"])
    await store.finish_message(second.reply_id, "ok", "complete", "stop", 1)
    edit = await store.edit_message("alice", first.chat.id, first.user_message_id, "one again", True)
    assert [turn.content for turn in edit.history] == ["one again"]
    assert await store.uploads("alice", ["a1"]) == {}


async def test_a_message_of_files_only_is_in_the_history(open_store):  # noqa: F811
    store = await open_store()
    await upload(store, "alice", "a1", b"")
    exchange = await store.record_message("alice", None, "", "c1", None, attachments=["a1"])
    assert [(turn.content, turn.attachments) for turn in exchange.history] == [
        ("", (AttachedFile("notes.txt", "text/plain", b""),))
    ]
