"""Retention (``--max-chat-age``): old chats deleted in the background, never one streaming, one node at a time."""

from __future__ import annotations

import time

import asyncpg

from mfu_tui.cli import build_parser
from mfu_tui.protocol import ChatUpdated, ImportChat
from mfu_tui.server.cli import _config_from
from mfu_tui.server.store import make_store
from mfu_tui.server.store.postgres import _RETENTION_LOCK
from tests.server.peer import peer
from tests.server.test_cli import run_cli
from tests.server.test_cluster import list_chats
from tests.server.test_generation import send_message
from tests.server.test_store import NODE, open_store, store_location  # noqa: F401 (fixtures)
from tests.server.test_store_attachments import upload
from tests.server.test_store_import import CREATED, ENTRIES, UPDATED
from tests.support.postgres import postgres_server, postgres_url  # noqa: F401 (fixtures)
from tests.support.server import new_secret, running_server


def old_conversation(key: str) -> ImportChat:
    """A conversation last updated in 2023: older than any age a test gives."""
    return ImportChat(
        request_id="r1", import_key=key, title="Monads", created_at=CREATED, updated_at=UPDATED,
        first=0, total=len(ENTRIES), messages=ENTRIES,
    )  # fmt: skip


async def test_old_chats_are_deleted_whole_but_never_one_with_an_answer_streaming(open_store):  # noqa: F811
    store = await open_store()
    await upload(store, "alice", "f1", b"some bytes")
    done = await store.record_message("alice", None, "hello", "m1", None, attachments=["f1"])
    streaming = await store.record_message("alice", None, "still answering", "m2", None)
    assert done is not None and streaming is not None
    await store.finish_message(done.reply_id, "hi", "complete", "stop", 1)
    await store.append_chunk(streaming.reply_id, 1, "so far")

    # A cut-off in the future: every chat is old.
    pruned = await store.prune_chats(time.time() + 60, 100)

    assert [(owner, chat.id) for owner, chat in pruned] == [("alice", done.chat.id)]
    assert await store.chat("alice", done.chat.id) is None
    assert await store.uploads("alice", ["f1"]) == {}
    assert await store.chat("alice", streaming.chat.id) is not None
    # What is left counts only the streaming chat's user message.
    assert await store.stored_bytes("alice") == len("still answering")
    await store.finish_message(streaming.reply_id, "so far", "complete", "stop", 1)
    assert [chat.id for _, chat in await store.prune_chats(time.time() + 60, 100)] == [streaming.chat.id]


async def test_the_oldest_go_first_a_batch_at_a_time_and_newer_chats_stay(open_store):  # noqa: F811
    store = await open_store()
    first = await store.import_chat("alice", old_conversation("chatgpt:a"))
    second = await store.import_chat("bob", old_conversation("chatgpt:b"))
    recent = await store.record_message("alice", None, "today", "m1", None)
    assert recent is not None
    await store.finish_message(recent.reply_id, "yes", "complete", "stop", 1)

    one = await store.prune_chats(time.time() - 3600, 1)
    rest = await store.prune_chats(time.time() - 3600, 1)
    nothing = await store.prune_chats(time.time() - 3600, 1)

    assert {one[0][1].id, rest[0][1].id} == {first.chat.id, second.chat.id}
    assert nothing == []
    assert await store.chat("alice", recent.chat.id) is not None


async def test_one_node_prunes_at_a_time_on_postgresql(postgres_url):  # noqa: F811
    store = make_store(postgres_url, node_id=NODE)
    await store.open()
    other_node = await asyncpg.connect(postgres_url)
    try:
        old = await store.import_chat("alice", old_conversation("chatgpt:a"))
        # Another node pruning holds the lock: this one prunes nothing meanwhile.
        await other_node.execute("SELECT pg_advisory_lock($1)", _RETENTION_LOCK)
        assert await store.prune_chats(time.time(), 100) == []
        assert await store.chat("alice", old.chat.id) is not None
        await other_node.execute("SELECT pg_advisory_unlock($1)", _RETENTION_LOCK)
        assert [chat.id for _, chat in await store.prune_chats(time.time(), 100)] == [old.chat.id]
    finally:
        await other_node.close()
        await store.close()


async def test_a_server_with_a_max_chat_age_deletes_old_chats_and_tells_their_user(tmp_path, store_location):  # noqa: F811
    async with running_server(
        tmp_path, db_path=store_location, max_chat_age_days=1.0, retention_interval=0.05
    ) as srv, peer(srv.url, srv.token()) as alice:  # fmt: skip
        ack = await send_message(alice, "today")
        old = await srv.server.store.import_chat("alice", old_conversation("chatgpt:a"))

        gone = await alice.expect(ChatUpdated, deleted=True)

        assert gone.chat.id == old.chat.id
        assert [chat.id for chat in (await list_chats(alice)).chats] == [ack.chat_id]


def test_the_max_chat_age_comes_from_the_flag_then_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MFU_JWT_SECRET", new_secret())
    monkeypatch.setenv("MFU_MAX_CHAT_AGE", "30")
    assert _config_from(build_parser().parse_args(["serve"])).max_chat_age_days == 30
    assert _config_from(build_parser().parse_args(["serve", "--max-chat-age", "7"])).max_chat_age_days == 7

    refused = run_cli("serve", "--port", "0", "--db", str(tmp_path / "db"), "--max-chat-age", "0", secret=new_secret())

    assert refused.returncode == 2
    assert refused.stderr == "mfu-chat serve: --max-chat-age must be a positive number of days\n"
