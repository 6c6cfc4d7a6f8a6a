"""Backup and restore as docs/deploy.md says: SQLite with ``mfu-chat admin backup`` while the server writes,
PostgreSQL with pg_dump and pg_restore."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess

from mfu_tui.file_lock import Lock
from mfu_tui.protocol import ChatPage, ListChats, Result, decode_result
from mfu_tui.server.store import make_store
from tests.server.peer import Peer, new_id, peer
from tests.server.test_admin import alices_database, mfu_chat
from tests.server.test_generation import send_message
from tests.support.postgres import find_binaries, postgres_server, postgres_url  # noqa: F401 (fixtures)
from tests.support.server import ServerProcess


async def chat_ids(client: Peer) -> set[str]:
    """Every chat of the client's user, page after page."""
    found: set[str] = set()
    before = None
    while True:
        request_id = new_id()
        await client.send(ListChats(request_id=request_id, before=before))
        page = decode_result((await client.expect(Result, request_id=request_id)).data, ChatPage)
        found |= {chat.id for chat in page.chats}
        if page.next_cursor is None:
            return found
        before = page.next_cursor


async def test_a_live_servers_sqlite_database_backed_up_while_it_writes_restores_with_its_chats(tmp_path):
    server = ServerProcess(tmp_path, "--demo-words", "5", "--demo-delay-ms", "10", "--rate-limit", "100000")
    server.start()
    copy = tmp_path / "backup.sqlite3"
    acked: list[str] = []
    sent_after_backup: list[str] = []
    enough = asyncio.Event()
    backed_up = asyncio.Event()
    stop = asyncio.Event()

    async def keep_writing(alice: Peer) -> None:
        while not stop.is_set():
            after = backed_up.is_set()
            ack = await send_message(alice, f"message {len(acked)}")
            (sent_after_backup if after else acked).append(ack.chat_id)
            await alice.stream(ack.reply_id)
            if len(acked) >= 5:
                enough.set()
            if len(sent_after_backup) >= 2:
                stop.set()

    try:
        async with peer(server.url, server.token()) as alice:
            writer = asyncio.create_task(keep_writing(alice))
            await enough.wait()
            before = set(acked)
            done = await asyncio.to_thread(mfu_chat, "admin", "backup", str(copy), "--db", str(server.db_path))
            backed_up.set()
            await writer
    finally:
        server.terminate()
        server.wait()

    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().startswith(f"mfu-chat admin backup: {server.db_path} -> {copy} (")
    assert copy.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(copy) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # Restore as docs/deploy.md says: the server stopped, its WAL files removed with the file, the copy in place.
    for suffix in ("", "-wal", "-shm"):
        server.db_path.with_name(server.db_path.name + suffix).unlink(missing_ok=True)
    shutil.copyfile(copy, server.db_path)
    server.db_path.chmod(0o600)
    server.start()
    try:
        async with peer(server.url, server.token()) as alice:
            restored = await chat_ids(alice)
            await send_message(alice, "after the restore")
    finally:
        server.terminate()
        server.wait()
    # Everything acknowledged before the backup began is there; nothing sent after it ended is.
    assert before <= restored <= set(acked)
    assert restored.isdisjoint(sent_after_backup)


def test_backup_refuses_to_overwrite_a_file_and_points_postgresql_to_pg_dump(tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("keep me")
    db = tmp_path / "chat.sqlite3"
    sqlite3.connect(db).close()

    overwrite = mfu_chat("admin", "backup", str(taken), "--db", str(db))
    postgres = mfu_chat("admin", "backup", str(tmp_path / "new"), "--db", "postgresql://mfu@127.0.0.1/chat")

    assert overwrite.returncode == 1
    assert overwrite.stderr.decode() == f"mfu-chat admin backup: {taken} exists already: give a new file\n"
    assert taken.read_text() == "keep me"
    assert postgres.returncode == 2 and b"pg_dump" in postgres.stderr


async def test_a_postgresql_database_dumped_and_restored_keeps_its_chats(tmp_path, postgres_server, postgres_url):  # noqa: F811
    store = make_store(postgres_url)
    await store.open()
    exchange = await store.record_message("alice", None, "what is a monad?", "m1", None)
    assert exchange is not None
    await store.finish_message(exchange.reply_id, "a monoid", "complete", "stop", 1)
    before = (await store.list_chats("alice", 50, None), await store.stored_bytes("alice"))
    await store.close()
    binaries = find_binaries()
    dump = tmp_path / "chat.dump"

    # The commands of docs/deploy.md: a dump of the live database, restored into a new empty one.
    subprocess.run([binaries / "pg_dump", "--format=custom", f"--file={dump}", postgres_url], check=True, timeout=60)
    restored_url = postgres_server.new_database()
    subprocess.run([binaries / "pg_restore", "--no-owner", f"--dbname={restored_url}", dump], check=True, timeout=60)

    restored = make_store(restored_url)
    await restored.open()
    try:
        assert (await restored.list_chats("alice", 50, None), await restored.stored_bytes("alice")) == before
        hits = await restored.search("alice", ["monoid"], 10, None)
        assert [hit.message_id for hit in hits.hits] == [exchange.reply_id]
        later = await restored.record_message("alice", exchange.chat.id, "and a functor?", "m2", None)
        assert later is not None and later.chat.message_count == 4
    finally:
        await restored.close()


async def test_a_partial_copy_left_by_a_killed_backup_is_replaced_by_the_next_backup(tmp_path):
    database = await alices_database(tmp_path)
    copy = tmp_path / "copy.sqlite3"
    # What a backup killed while copying leaves: its hidden partial copy, half written, its lock dropped.
    left = tmp_path / ".copy.sqlite3.partial"
    left.write_bytes(b"SQLite format 3\x00" + b"\x00" * 4000)
    left.chmod(0o600)

    done = mfu_chat("admin", "backup", str(copy), "--db", str(database))

    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout.decode() == f"mfu-chat admin backup: {database} -> {copy} (2 chats)\n"
    assert not left.exists()
    assert copy.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(copy) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_a_backup_to_the_path_another_backup_is_writing_is_refused_in_one_line(tmp_path):
    database = await alices_database(tmp_path)
    copy = tmp_path / "copy.sqlite3"
    partial = tmp_path / ".copy.sqlite3.partial"
    # The lock a running backup holds on its partial copy while it writes it.
    running = Lock(partial)
    assert running.try_acquire()
    try:
        done = mfu_chat("admin", "backup", str(copy), "--db", str(database))
    finally:
        running.release()

    assert done.returncode == 1
    assert done.stderr.decode() == (
        f"mfu-chat admin backup: another backup to {copy} is running (it writes {partial}): "
        "wait for its end, or give another file\n"
    )
    assert partial.exists() and not copy.exists()
