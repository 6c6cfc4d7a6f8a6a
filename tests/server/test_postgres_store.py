"""What only the PostgreSQL store does: versioned migrations, a clear error when unreachable."""

from __future__ import annotations

import asyncio
import socket

import asyncpg
import pytest

from mfu_tui.server.config import ServerConfig
from mfu_tui.server.store import SqliteStore, make_store
from mfu_tui.server.store.postgres import MIGRATIONS, PostgresStore, StoreUnavailable


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
    with pytest.raises(StoreUnavailable, match="schema version 999"):
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
        return make_store(ServerConfig(secret="s" * 40, db_path=db).database(), 0.005)

    assert isinstance(store_for("postgresql://mfu@127.0.0.1:5432/chat"), PostgresStore)
    assert isinstance(store_for("postgres://mfu@127.0.0.1:5432/chat"), PostgresStore)
    sqlite = store_for(str(tmp_path / "postgresql" / "chat.sqlite3"))
    assert isinstance(sqlite, SqliteStore) and sqlite.path == tmp_path / "postgresql" / "chat.sqlite3"
