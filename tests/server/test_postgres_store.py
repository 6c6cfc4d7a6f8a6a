"""What only the PostgreSQL store does: versioned migrations, a clear error when unreachable."""

from __future__ import annotations

import asyncio
import socket

import asyncpg
import pytest

from mfu_tui.server.config import ServerConfig
from mfu_tui.server.store import ChatBusy, SqliteStore, make_store
from mfu_tui.server.store.group_commit import Fenced
from mfu_tui.server.store.postgres import MIGRATIONS, PostgresStore, StoreUnavailable
from mfu_tui.server.store.schema import SchemaTooNew


async def test_migrations_run_once_and_are_recorded(postgres_url):
    stores = [PostgresStore(postgres_url), PostgresStore(postgres_url)]
    # Two servers starting at once: the advisory lock keeps them from racing.
    await asyncio.gather(*(store.open() for store in stores))
    for store in stores:
        await store.close()
    db = await asyncpg.connect(postgres_url)
    try:
        versions = [row[0] for row in await db.fetch("SELECT version FROM schema_version ORDER BY version")]
    finally:
        await db.close()
    assert versions == [version for version, _ in MIGRATIONS]


async def test_a_database_newer_than_this_code_is_refused(postgres_url):
    store = PostgresStore(postgres_url)
    await store.open()
    await store.close()
    db = await asyncpg.connect(postgres_url)
    try:
        await db.execute("INSERT INTO schema_version VALUES (999, 0)")
    finally:
        await db.close()
    with pytest.raises(SchemaTooNew, match="schema version 999"):
        await PostgresStore(postgres_url).open()


async def test_an_unreachable_database_is_one_clear_error_without_the_password():
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = PostgresStore(f"postgresql://mfu:hunter2@127.0.0.1:{port}/chat")
    with pytest.raises(StoreUnavailable) as caught:
        await store.open()
    message = str(caught.value)
    assert message.startswith(f"cannot use the database postgresql://mfu:***@127.0.0.1:{port}/chat: ")
    assert "hunter2" not in message and "\n" not in message


def test_db_selects_postgres_by_url_and_sqlite_otherwise(tmp_path):
    def store_for(db: str) -> object:
        return make_store(ServerConfig(secret="s" * 40, db_path=db).database())

    assert isinstance(store_for("postgresql://mfu@127.0.0.1:5432/chat"), PostgresStore)
    assert isinstance(store_for("postgres://mfu@127.0.0.1:5432/chat"), PostgresStore)
    sqlite = store_for(str(tmp_path / "postgresql" / "chat.sqlite3"))
    assert isinstance(sqlite, SqliteStore) and sqlite.path == tmp_path / "postgresql" / "chat.sqlite3"


# --- several nodes on one database --------------------------------------------------


async def open_node(url: str, node_id: str, lease: float = 30.0) -> PostgresStore:
    store = PostgresStore(url, node_id=node_id, lease=lease)
    await store.open()
    return store


async def expire_leases(url: str) -> None:
    """Move every lease into the past, as if its node had stopped renewing it long ago."""
    db = await asyncpg.connect(url)
    try:
        await db.execute("UPDATE messages SET lease_until = lease_until - 3600 WHERE lease_until IS NOT NULL")
    finally:
        await db.close()


async def test_a_live_nodes_reply_is_not_reaped_but_a_dead_ones_is_ended_once(postgres_url):
    dead, alive = await open_node(postgres_url, "node-a"), await open_node(postgres_url, "node-b")
    try:
        exchange = await dead.record_message("alice", None, "hi", "c1", None)
        await dead.append_chunk(exchange.reply_id, 1, "half ")
        await dead.append_chunk(exchange.reply_id, 2, "an answer")
        before_expiry = await alive.reap_expired()
        await expire_leases(postgres_url)
        reaped = await asyncio.gather(alive.reap_expired(), alive.reap_expired())
        state = await alive.message_state("alice", exchange.chat.id, exchange.reply_id)
        detail = await alive.chat_detail("alice", exchange.chat.id, 50)
        with pytest.raises(LookupError):  # the dead node cannot overwrite the ending once back
            await dead.finish_message(exchange.reply_id, "late", "complete", "stop", 3)
    finally:
        await dead.close()
        await alive.close()
    assert before_expiry == []
    assert [(reply.message_id, reply.seq, reply.user) for reply in reaped[0] + reaped[1]] == [
        (exchange.reply_id, 2, "alice")
    ]
    assert (state.status, state.finish_reason, state.seq) == ("error", "interrupted", 2)
    assert detail.messages[-1].content == "half an answer"


async def test_a_node_that_lost_its_lease_stores_no_chunk_after_the_end(postgres_url):
    stalled, reaper = await open_node(postgres_url, "node-a"), await open_node(postgres_url, "node-b")
    try:
        exchange = await stalled.record_message("alice", None, "hi", "c1", None)
        other = await stalled.record_message("bob", None, "hi", "c2", None)
        await stalled.append_chunk(exchange.reply_id, 1, "before the end")
        await expire_leases(postgres_url)
        reaped = await reaper.reap_expired()
        await stalled.renew_leases()  # too late: the ended replies are not its any more
        # The stalled node wakes with chunks queued for an ended reply and a live one, in one commit.
        late = stalled.append_chunk(exchange.reply_id, 2, "after the end")
        also_late = stalled.append_chunk(other.reply_id, 1, "after its end too")
        results = await asyncio.gather(late, also_late, return_exceptions=True)
        with pytest.raises(LookupError):
            await stalled.finish_message(exchange.reply_id, "late", "complete", "stop", 2)
        stored = await reaper.chunks_after(exchange.reply_id, 0)
        state = await reaper.message_state("alice", exchange.chat.id, exchange.reply_id)
    finally:
        await stalled.close()
        await reaper.close()
    assert sorted(reply.message_id for reply in reaped) == sorted([exchange.reply_id, other.reply_id])
    assert all(isinstance(result, Fenced) for result in results)
    assert stored == [(1, "before the end", False)]
    assert (state.status, state.finish_reason, state.seq) == ("error", "interrupted", 1)


async def test_a_restarted_node_under_the_same_name_cannot_write_to_the_new_ones_replies(postgres_url):
    old, new = await open_node(postgres_url, "node-a"), await open_node(postgres_url, "node-a")
    try:
        exchange = await new.record_message("alice", None, "hi", "c1", None)
        with pytest.raises(Fenced):  # same node name, another token: the old process is fenced off
            await old.append_chunk(exchange.reply_id, 1, "not mine")
        await new.append_chunk(exchange.reply_id, 1, "mine")
        stored = await new.chunks_after(exchange.reply_id, 0)
    finally:
        await old.close()
        await new.close()
    assert stored == [(1, "mine", False)]


async def test_a_node_knows_when_its_leases_may_have_run_out_and_renews_before_it_claims_a_reply(postgres_url):
    node = await open_node(postgres_url, "node-a", lease=1.0)
    try:
        held_at_start = node.holds_lease()
        async with asyncio.timeout(5):  # a lease goes by without a renewal (the database out of reach, say)
            while node.holds_lease():
                await asyncio.sleep(0.02)
        # The database is back before the lease beat: an answer started now must not be fenced at its first chunk.
        await node.record_message("alice", None, "hi", "c1", None)
        held_after_claim = node.holds_lease()
    finally:
        await node.close()
    assert held_at_start and held_after_claim


async def test_renewing_keeps_a_reply_alive_past_its_first_lease(postgres_url):
    node, other = await open_node(postgres_url, "node-a"), await open_node(postgres_url, "node-b")
    try:
        exchange = await node.record_message("alice", None, "hi", "c1", None)
        await expire_leases(postgres_url)
        await node.renew_leases()
        reaped = await other.reap_expired()
        state = await other.message_state("alice", exchange.chat.id, exchange.reply_id)
    finally:
        await node.close()
        await other.close()
    assert reaped == []
    assert state.status == "streaming"


@pytest.mark.parametrize("held_first", [0, 1])  # whichever the renewal comes to first, one of them deadlocked
async def test_renewing_holds_no_reply_while_it_waits_for_another_so_it_never_deadlocks_with_the_writer(
    postgres_url, held_first
):
    # CI: the renewal took the rows of a node's replies one by one as it found them, while the node's
    # writer held one and wanted another; PostgreSQL broke the deadlock after a second, the leases
    # went unrenewed past their end, and another node ended the answers as interrupted.
    node = await open_node(postgres_url, "node-a")
    writer = await asyncpg.connect(postgres_url)
    try:
        replies = [(await node.record_message(user, None, "hi", "c1", None)).reply_id for user in ("alice", "bob")]
        await expire_leases(postgres_url)
        await writer.execute("SET deadlock_timeout = '60s'")  # PostgreSQL would end the renewal, not this
        transaction = writer.transaction()
        await transaction.start()
        # A commit of the node's writer ends one answer (its row held until the commit) ...
        await writer.execute("UPDATE messages SET seq = seq WHERE id = $1", replies[held_first])
        renewing = asyncio.ensure_future(node.renew_leases())
        await _waiting_for_a_lock(postgres_url, 1)
        # ... then the other, which the renewal must not be holding while it waits.
        await writer.execute("UPDATE messages SET seq = seq WHERE id = $1", replies[1 - held_first])
        await transaction.commit()
        await asyncio.wait_for(renewing, 30)
        reaped = await node.reap_expired()
    finally:
        await writer.close()
        await node.close()
    assert reaped == []  # both renewed


async def test_a_restarted_node_ends_its_own_replies_at_once_but_not_other_nodes(postgres_url):
    first, other = await open_node(postgres_url, "node-a"), await open_node(postgres_url, "node-b")
    mine = await first.record_message("alice", None, "mine", "c1", None)
    theirs = await other.record_message("bob", None, "theirs", "c2", None)
    await first.close()  # as if killed: its reply is left streaming
    restarted = PostgresStore(postgres_url, node_id="node-a", lease=30.0)
    try:
        ended_at_open = await restarted.open()
        state_theirs = await restarted.message_state("bob", theirs.chat.id, theirs.reply_id)
        state_mine = await restarted.message_state("alice", mine.chat.id, mine.reply_id)
    finally:
        await restarted.close()
        await other.close()
    assert [reply.message_id for reply in ended_at_open] == [mine.reply_id]
    assert state_mine.finish_reason == "interrupted"
    assert state_theirs.status == "streaming"


async def test_one_client_message_id_sent_to_two_nodes_at_once_is_stored_once(postgres_url):
    nodes = [await open_node(postgres_url, "node-a"), await open_node(postgres_url, "node-b")]
    try:
        first, second = await asyncio.gather(
            *(node.record_message("alice", None, "same", "c1", None) for node in nodes)
        )
        detail = await nodes[0].chat_detail("alice", first.chat.id, 50)
        page = await nodes[0].list_chats("alice", 10, None)
    finally:
        for node in nodes:
            await node.close()
    assert (first.user_message_id, first.reply_id) == (second.user_message_id, second.reply_id)
    assert sorted([first.duplicate, second.duplicate]) == [False, True]
    assert len(page.chats) == 1 and len(detail.messages) == 2


async def test_a_second_answer_in_a_chat_is_refused_whichever_node_asks(postgres_url):
    nodes = [await open_node(postgres_url, "node-a"), await open_node(postgres_url, "node-b")]
    try:
        exchange = await nodes[0].record_message("alice", None, "first", "c1", None)
        with pytest.raises(ChatBusy):
            await nodes[1].record_message("alice", exchange.chat.id, "second", "c2", None)
        with pytest.raises(ChatBusy):
            await nodes[1].edit_message("alice", exchange.chat.id, exchange.user_message_id, "again", True)
        detail = await nodes[1].chat_detail("alice", exchange.chat.id, 50)
    finally:
        for node in nodes:
            await node.close()
    assert [message.content for message in detail.messages] == ["first", ""]


async def test_one_client_edit_id_sent_to_two_nodes_at_once_is_applied_once(postgres_url):
    nodes = [await open_node(postgres_url, "node-a"), await open_node(postgres_url, "node-b")]
    try:
        exchange = await nodes[0].record_message("alice", None, "question", "c1", None)
        await nodes[0].finish_message(exchange.reply_id, "answer", "complete", "stop", 0)
        first, second = await asyncio.gather(
            *(
                node.edit_message("alice", exchange.chat.id, exchange.user_message_id, "better", True, "e1")
                for node in nodes
            )
        )
        detail = await nodes[1].chat_detail("alice", exchange.chat.id, 50)
    finally:
        for node in nodes:
            await node.close()
    assert first.reply_id == second.reply_id
    assert sorted([first.duplicate, second.duplicate]) == [False, True]
    assert [m.id for m in detail.messages if m.role == "assistant"] == [first.reply_id]


async def test_a_database_of_schema_3_gets_its_stored_bytes_counted(postgres_url):
    db = await asyncpg.connect(postgres_url)
    try:
        await db.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
        )
        for version, sql in MIGRATIONS[:3]:
            await db.execute(sql)
            await db.execute("INSERT INTO schema_version VALUES ($1, 0)", version)
        await db.execute(
            "INSERT INTO chats (id, owner, title, created_at, updated_at) VALUES ('c', 'alice', 't', 0, 0)"
        )
        await db.execute(
            "INSERT INTO messages (id, chat_id, owner, role, content, status, created_at)"
            " VALUES ('m1', 'c', 'alice', 'user', 'héllo', 'complete', 0),"
            " ('m2', 'c', 'alice', 'assistant', 'hi', 'complete', 0)"
        )
        await db.execute(
            "INSERT INTO edits (owner, client_edit_id, chat_id, message_id, content, edited_at)"
            " VALUES ('alice', 'e1', 'c', 'm1', 'héllo', 0)"
        )
    finally:
        await db.close()
    store = PostgresStore(postgres_url)
    await store.open()
    try:
        stored = await store.stored_bytes("alice")
        await store.record_message("alice", "c", "more", "c1", None)
        more = await store.stored_bytes("alice")
    finally:
        await store.close()
    assert stored == 2 * len("héllo".encode()) + len(b"hi")
    assert more == stored + len(b"more")


async def _waiting_for_a_lock(url: str, count: int) -> None:
    """Return once ``count`` sessions wait for a lock (``pg_stat_activity``), asking at most 500 times."""
    watcher = await asyncpg.connect(url)
    try:
        for _ in range(500):
            waiting = await watcher.fetchval("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            if waiting >= count:
                return
            await asyncio.sleep(0.01)  # a poll of the database's own view: nothing to wait on instead
        raise AssertionError(f"{count} sessions never waited for a lock")
    finally:
        await watcher.close()


async def test_a_write_that_postgres_ends_to_break_a_deadlock_is_tried_again_and_goes_through(postgres_url):
    node = await open_node(postgres_url, "node-a")
    other = await asyncpg.connect(postgres_url)
    try:
        exchange = await node.record_message("alice", None, "question", "c1", None)
        await node.finish_message(exchange.reply_id, "answer", "complete", "stop", 0)
        chat_id = exchange.chat.id
        # Another node's transaction holds the chat's messages, as one storing an answer's chunks does...
        await other.execute("SET deadlock_timeout = '60s'")  # so that PostgreSQL ends the delete, not this one
        transaction = other.transaction()
        await transaction.start()
        await other.execute("SELECT id FROM messages WHERE chat_id = $1 FOR UPDATE", chat_id)
        deleting = asyncio.ensure_future(node.delete_chat("alice", chat_id))  # deletes the chat row, then waits
        await _waiting_for_a_lock(postgres_url, 1)
        # ... and then wants the chat row, which the delete holds: a deadlock, which PostgreSQL breaks.
        await other.execute("UPDATE chats SET title = 'renamed' WHERE id = $1", chat_id)
        await transaction.commit()
        deleted = await asyncio.wait_for(deleting, 30)
        detail = await node.chat_detail("alice", chat_id, 50)
    finally:
        await other.close()
        await node.close()
    assert deleted is not None and deleted.id == chat_id
    assert detail is None
