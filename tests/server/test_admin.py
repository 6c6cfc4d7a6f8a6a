"""``mfu-chat admin export-user`` and ``delete-user`` on both stores, run as an operator runs them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import msgspec

from mfu_tui.importing.chatgpt import parse_export
from mfu_tui.protocol import Chunk, ImportChat, ListChats, Result, is_terminal
from mfu_tui.server.store import Store, make_store
from mfu_tui.server.store.sqlite import SCHEMA_VERSION
from mfu_tui.server.store.user_data import ExportedChat
from tests.server.peer import TIMEOUT, peer
from tests.server.test_generation import send_message
from tests.server.test_store import open_store, store_location  # noqa: F401 (fixtures)
from tests.server.test_store_attachments import upload
from tests.server.test_store_import import CREATED, ENTRIES, UPDATED
from tests.support.postgres import postgres_server, postgres_url  # noqa: F401 (fixtures)
from tests.support.server import running_server


def mfu_chat(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """The installed command, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "mfu_tui", *args], capture_output=True, timeout=60, env={**os.environ, **(env or {})}
    )


async def fill(store: Store, user: str) -> dict[str, str]:
    """Two chats of ``user``: one with a file, an edit and an answer; one imported. Their ids by name."""
    await upload(store, user, f"{user}-file", b"file bytes \x00\xff")
    exchange = await store.record_message(user, None, "read this", f"{user}-m1", "demo", attachments=[f"{user}-file"])
    assert exchange is not None
    await store.finish_message(exchange.reply_id, "I read it.", "complete", "stop", 1)
    edit = await store.edit_message(user, exchange.chat.id, exchange.user_message_id, "read this, please", False, "e1")
    assert edit is not None
    imported = await store.import_chat(
        user,
        ImportChat(
            request_id="r1", import_key="chatgpt:conv-1", title="Monads", created_at=CREATED, updated_at=UPDATED,
            first=0, total=len(ENTRIES), messages=ENTRIES,
        ),
    )  # fmt: skip
    # An upload never sent: it is the user's data too.
    await upload(store, user, f"{user}-unsent", b"half")
    return {"with file": exchange.chat.id, "imported": imported.chat.id}


async def test_export_user_writes_every_chat_of_the_user_and_only_theirs(open_store, store_location, tmp_path):  # noqa: F811
    store = await open_store()
    chats = await fill(store, "alice")
    await fill(store, "bob")
    answering = await store.record_message("alice", None, "still answering?", "m-live", None)
    assert answering is not None
    await store.append_chunk(answering.reply_id, 1, "so far, ")
    await store.append_chunk(answering.reply_id, 2, "yes")
    chats["answering"] = answering.chat.id

    done = mfu_chat("admin", "export-user", "alice", "--db", store_location, "--output", str(tmp_path / "a.jsonl"))

    assert done.returncode == 0, done.stderr
    assert (tmp_path / "a.jsonl").stat().st_mode & 0o777 == 0o600
    lines = (tmp_path / "a.jsonl").read_bytes().splitlines()
    exported = {chat.id: chat for chat in (msgspec.json.decode(line, type=ExportedChat) for line in lines)}
    assert set(exported) == set(chats.values())
    with_file = exported[chats["with file"]]
    assert [(m.role, m.content, m.status) for m in with_file.messages] == [
        ("user", "read this, please", "complete"),
        ("assistant", "I read it.", "complete"),
    ]
    files = with_file.messages[0].attachments
    assert [(f.name, f.data) for f in files] == [("notes.txt", b"file bytes \x00\xff")]
    imported = exported[chats["imported"]]
    assert imported.import_key == "chatgpt:conv-1" and imported.title == "Monads"
    assert [m.content for m in imported.messages] == [
        "What is a monad?",
        "A monad is a monoid in the category of endofunctors.",
        "Thanks",
    ]
    live = exported[chats["answering"]].messages[1]
    assert (live.content, live.status) == ("so far, yes", "streaming")
    assert b"3 chats of 'alice'" in done.stderr


async def test_export_user_of_a_name_with_nothing_stored_fails_and_makes_no_file(open_store, store_location, tmp_path):  # noqa: F811
    store = await open_store()
    await fill(store, "alice")
    await upload(store, "carol", "carol-unsent", b"half")  # carol has a file and no chat
    output = tmp_path / "alcie.jsonl"

    typo = mfu_chat("admin", "export-user", "alcie", "--db", store_location, "--output", str(output))
    carol = mfu_chat("admin", "export-user", "carol", "--db", store_location)

    assert (typo.returncode, typo.stdout) == (1, b"")
    assert typo.stderr.decode() == (
        "mfu-chat admin export-user: no user 'alcie': nothing is stored under that name (check its spelling)\n"
    )
    assert not output.exists()
    assert (carol.returncode, carol.stdout) == (0, b"") and b" of 'carol'" in carol.stderr


async def test_export_user_refuses_to_overwrite_a_file_as_backup_does(open_store, store_location, tmp_path):  # noqa: F811
    await fill(await open_store(), "alice")
    taken = tmp_path / "alice.jsonl"
    taken.write_text("keep me")

    done = mfu_chat("admin", "export-user", "alice", "--db", store_location, "--output", str(taken))

    assert (done.returncode, done.stdout) == (1, b"")
    assert done.stderr.decode() == f"mfu-chat admin export-user: {taken} exists already: give a new file\n"
    assert taken.read_text() == "keep me"


async def test_the_commands_count_one_of_a_thing_in_the_singular(tmp_path):
    database = tmp_path / "chat.sqlite3"
    store = make_store(str(database))
    await store.open()
    exchange = await store.record_message("alice", None, "hi", "m1", "demo")
    assert exchange is not None
    await store.finish_message(exchange.reply_id, "hello", "complete", "stop", 1)
    await store.close()

    exported = mfu_chat("admin", "export-user", "alice", "--db", str(database), "--output", str(tmp_path / "a.jsonl"))
    counted = mfu_chat("admin", "delete-user", "alice", "--db", str(database))
    copied = mfu_chat("admin", "backup", str(tmp_path / "copy.sqlite3"), "--db", str(database))

    assert exported.stderr.decode() == "mfu-chat admin export-user: 1 chat of 'alice'\n"
    assert counted.stdout.decode() == (
        "mfu-chat admin delete-user: 'alice' has 1 chat, 2 messages, 0 attachments, 0 edits, 7 bytes; "
        "add --yes to delete it all\n"
    )
    assert copied.stdout.decode() == f"mfu-chat admin backup: {database} -> {tmp_path / 'copy.sqlite3'} (1 chat)\n"


async def alices_database(tmp_path: Path) -> Path:
    """A SQLite database in ``tmp_path`` holding alice's chats (``fill``)."""
    database = tmp_path / "chat.sqlite3"
    store = make_store(str(database))
    await store.open()
    await fill(store, "alice")
    await store.close()
    return database


async def test_a_new_file_in_a_directory_that_is_not_there_is_refused_in_one_line(tmp_path):
    database = await alices_database(tmp_path)
    missing = tmp_path / "backups"

    copied = mfu_chat("admin", "backup", str(missing / "copy.sqlite3"), "--db", str(database))
    exported = mfu_chat("admin", "export-user", "alice", "--db", str(database), "--output", str(missing / "a.jsonl"))

    advice = f"no directory {missing}: make it first, or give a file in a directory that is there"
    assert (copied.returncode, copied.stderr.decode()) == (1, f"mfu-chat admin backup: {advice}\n")
    assert (exported.returncode, exported.stderr.decode()) == (1, f"mfu-chat admin export-user: {advice}\n")
    assert not missing.exists()


async def test_a_new_file_where_the_system_refuses_one_is_refused_in_one_line(tmp_path):
    database = await alices_database(tmp_path)
    # Under a regular file: refused even to root, as a directory one cannot write to is refused to others.
    not_a_directory = tmp_path / "notes.txt"
    not_a_directory.write_text("a file")

    copied = mfu_chat("admin", "backup", str(not_a_directory / "copy.sqlite3"), "--db", str(database))
    exported = mfu_chat(
        "admin", "export-user", "alice", "--db", str(database), "--output", str(not_a_directory / "a.jsonl")
    )

    refusal = f"cannot make a file in {not_a_directory} (Not a directory): give a file in a directory you can write to"
    assert (copied.returncode, copied.stderr.decode()) == (1, f"mfu-chat admin backup: {refusal}\n")
    assert (exported.returncode, exported.stdout, exported.stderr.decode()) == (
        1,
        b"",
        f"mfu-chat admin export-user: {refusal}\n",
    )


async def test_the_chatgpt_export_reads_back_with_mfu_chat_import(open_store, store_location):  # noqa: F811
    store = await open_store()
    chats = await fill(store, "alice")

    done = mfu_chat("admin", "export-user", "alice", "--format", "chatgpt", "--db", store_location)

    assert done.returncode == 0, done.stderr
    export = parse_export(done.stdout)
    assert export.skipped == []
    by_title = {conversation.title: conversation for conversation in export.conversations}
    assert [(m.role, m.content) for m in by_title["Monads"].messages] == [
        ("user", "What is a monad?"),
        ("assistant", "A monad is a monoid in the category of endofunctors."),
        ("user", "Thanks"),
    ]
    assert by_title["Monads"].created_at == CREATED and by_title["Monads"].updated_at == UPDATED
    assert {conversation.key for conversation in export.conversations} == {f"chatgpt:{id_}" for id_ in chats.values()}


async def test_export_user_keeps_each_answers_reasoning_apart_in_both_formats(open_store, store_location, tmp_path):  # noqa: F811
    store = await open_store()
    ended = await store.record_message("alice", None, "think: why?", "c1", "demo")
    assert ended is not None
    await store.finish_message(ended.reply_id, "Because.", "complete", "stop", 2, reasoning="They ask why.")
    live = await store.record_message("alice", None, "and now?", "c2", None)
    assert live is not None
    for seq, (text, thought) in enumerate([("Still ", True), ("thinking", True), ("Now", False)], start=1):
        await store.append_chunk(live.reply_id, seq, text, reasoning=thought)

    lines = mfu_chat("admin", "export-user", "alice", "--db", store_location)
    chatgpt = mfu_chat("admin", "export-user", "alice", "--format", "chatgpt", "--db", store_location)

    assert lines.returncode == 0 and chatgpt.returncode == 0, lines.stderr + chatgpt.stderr
    exported = {chat.id: chat for chat in map(_decode, lines.stdout.splitlines())}
    answers = {chat_id: chat.messages[1] for chat_id, chat in exported.items()}
    assert (answers[ended.chat.id].content, answers[ended.chat.id].reasoning) == ("Because.", "They ask why.")
    assert (answers[live.chat.id].content, answers[live.chat.id].reasoning) == ("Now", "Still thinking")
    assert lines.stdout.count(b'"reasoning":') == 2  # a message without any leaves it out
    conversation = next(c for c in msgspec.json.decode(chatgpt.stdout) if c["id"] == ended.chat.id)
    thoughts = conversation["mapping"][f"{ended.reply_id}-thoughts"]
    assert thoughts["message"]["content"] == {
        "content_type": "thoughts",
        "thoughts": [{"summary": "Thinking", "content": "They ask why."}],
    }
    assert (thoughts["parent"], thoughts["children"]) == (ended.user_message_id, [ended.reply_id])
    # Read back, the reasoning is passed over and the answer kept.
    by_title = {c.title: c for c in parse_export(chatgpt.stdout).conversations}
    assert [(m.role, m.content) for m in by_title[ended.chat.title].messages] == [
        ("user", "think: why?"),
        ("assistant", "Because."),
    ]


def _decode(line: bytes) -> ExportedChat:
    return msgspec.json.decode(line, type=ExportedChat)


async def test_delete_user_asks_for_yes_then_deletes_everything_of_the_user_and_nothing_else(
    open_store,  # noqa: F811
    store_location,  # noqa: F811
):
    store = await open_store()
    await fill(store, "alice")
    await fill(store, "bob")
    bob_before = (await store.list_chats("bob", 50, None), await store.stored_bytes("bob"))

    unconfirmed = mfu_chat("admin", "delete-user", "alice", "--db", store_location)
    assert unconfirmed.returncode == 2
    assert b"'alice' has 2 chats, 5 messages, 2 attachments, 1 edit," in unconfirmed.stdout
    assert b"add --yes" in unconfirmed.stdout
    assert len((await store.list_chats("alice", 50, None)).chats) == 2

    done = mfu_chat("admin", "delete-user", "alice", "--yes", "--db", store_location)

    assert done.returncode == 0, done.stderr
    assert b"deleted 2 chats, 5 messages, 2 attachments, 1 edit," in done.stdout
    assert (await store.list_chats("alice", 50, None)).chats == []
    assert await store.stored_bytes("alice") == 0
    assert await store.find_exchange("alice", "alice-m1") is None
    assert await store.find_edit("alice", "e1") is None
    assert await store.uploads("alice", ["alice-file", "alice-unsent"]) == {}
    assert await store.import_progress("alice", "chatgpt:conv-1") is None
    assert (await store.list_chats("bob", 50, None), await store.stored_bytes("bob")) == bob_before
    # The keys are free again: alice starts afresh.
    again = await store.record_message("alice", None, "hello again", "alice-m1", None)
    assert again is not None and not again.duplicate
    assert mfu_chat("admin", "delete-user", "nobody", "--db", store_location).stdout.endswith(
        b"'nobody' has nothing stored\n"
    )


def test_admin_commands_refuse_a_database_migrate_has_not_reached(tmp_path: Path):
    import sqlite3

    old = tmp_path / "old.sqlite3"
    with sqlite3.connect(old) as db:
        db.execute("PRAGMA user_version = 5")

    done = mfu_chat("admin", "export-user", "alice", "--db", str(old))

    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [
        "mfu-chat admin export-user: the database has schema version 5, older than this mfu-chat's "
        f"({SCHEMA_VERSION}): "
        "run `mfu-chat migrate` first (with the same --db or MFU_DATABASE_URL)"
    ]


def test_admin_commands_name_a_file_that_is_not_a_database_as_serve_does(tmp_path: Path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database, but the admin's notes\n" * 100)

    done = {
        "migrate": mfu_chat("migrate", "--db", str(notes)),
        "admin export-user": mfu_chat("admin", "export-user", "alice", "--db", str(notes)),
        "admin delete-user": mfu_chat("admin", "delete-user", "alice", "--db", str(notes)),
        "admin backup": mfu_chat("admin", "backup", str(tmp_path / "copy.sqlite3"), "--db", str(notes)),
    }

    for command, run in done.items():
        assert (run.returncode, run.stdout, run.stderr.decode()) == (
            1,
            b"",
            f"mfu-chat {command}: --db {notes} is not a SQLite database (file is not a database): "
            "give the server's database\n",
        )
    assert notes.read_text() == "not a database, but the admin's notes\n" * 100
    assert sorted(tmp_path.iterdir()) == [notes]


def test_admin_commands_take_the_database_from_the_environment(tmp_path: Path):
    missing = tmp_path / "missing.sqlite3"
    done = mfu_chat("admin", "delete-user", "alice", env={"MFU_DATABASE_URL": str(missing)})
    assert done.returncode == 1
    assert done.stderr.decode() == f"mfu-chat admin delete-user: no database at {missing}\n"
    assert not missing.exists()


async def test_delete_user_closes_the_users_connections_on_a_running_sqlite_node(tmp_path: Path):
    async with running_server(tmp_path, lease=0.6) as srv:  # deletions are read every lease / 3
        async with peer(srv.url, srv.token("alice")) as alice, peer(srv.url, srv.token("bob")) as bob:
            ack = await send_message(alice, "soon gone")
            await alice.stream(ack.reply_id)
            done = await asyncio.to_thread(mfu_chat, "admin", "delete-user", "alice", "--yes", "--db", str(srv.db_path))
            code = await alice.close_code()
            reason = alice.ws.close_reason
            await bob.send(ListChats(request_id="r1"))
            still_served = await bob.expect(Result, request_id="r1")
    assert done.returncode == 0, done.stderr
    assert (code, reason) == (4410, "the server's operator deleted this account's data")
    assert is_terminal(code)  # the app stops rather than send its outbox into the emptied account
    assert still_served.request_id == "r1"


async def test_delete_user_closes_the_users_connections_and_stops_their_answers_on_every_node(
    tmp_path: Path,
    postgres_url,  # noqa: F811
):
    # Two nodes on one database and no broker: the deletion reaches each through the database.
    settings = {"db_path": postgres_url, "lease": 0.6, "demo_words": 100000, "demo_delay_ms": 20}
    async with (
        running_server(tmp_path, node_id="node-a", **settings) as a,
        running_server(tmp_path, node_id="node-b", **settings) as b,
        peer(a.url, a.token("alice")) as on_a,
        peer(b.url, b.token("alice")) as on_b,
        peer(b.url, b.token("bob")) as bob,
    ):
        running = await send_message(on_a, "a long answer")
        await on_a.expect(Chunk, message_id=running.reply_id)
        done = await asyncio.to_thread(mfu_chat, "admin", "delete-user", "alice", "--yes", "--db", postgres_url)
        codes = [await on_a.close_code(), await on_b.close_code()]
        async with asyncio.timeout(TIMEOUT):
            while a.server.generations.running():
                await asyncio.sleep(0.05)  # the stopped answer ends as its store write finds nothing
        await bob.send(ListChats(request_id="r1"))
        still_served = await bob.expect(Result, request_id="r1")
    assert done.returncode == 0, done.stderr
    assert codes == [4410, 4410]
    assert still_served.request_id == "r1"
