"""``mfu-chat migrate``, and a node refusing a schema newer than it knows, on both stores."""

from __future__ import annotations

import sqlite3

import asyncpg

from mfu_tui.server.store import make_store, postgres, sqlite
from mfu_tui.server.store.postgres import is_postgres_url
from tests.server.peer import peer
from tests.server.test_admin import mfu_chat
from tests.server.test_cli import run_cli
from tests.server.test_generation import send_message
from tests.server.test_store import store_location  # noqa: F401 (fixtures)
from tests.support.postgres import postgres_server, postgres_url  # noqa: F401 (fixtures)
from tests.support.server import new_secret, running_server


async def schema_version(location: str) -> int:
    if is_postgres_url(location):
        db = await asyncpg.connect(location)
        try:
            return int(await db.fetchval("SELECT MAX(version) FROM schema_version"))
        finally:
            await db.close()
    with sqlite3.connect(location) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


async def make_newer(location: str) -> int:
    """Record a schema version past this release's, as a newer release's migration would; that version."""
    newer = await schema_version(location) + 1
    if is_postgres_url(location):
        db = await asyncpg.connect(location)
        try:
            await db.execute("INSERT INTO schema_version VALUES ($1, 0)", newer)
        finally:
            await db.close()
    else:
        with sqlite3.connect(location) as db:
            db.execute(f"PRAGMA user_version = {newer}")
    return newer


async def test_migrate_brings_a_new_database_to_this_schema_once_and_a_server_then_runs_on_it(
    tmp_path,
    store_location,  # noqa: F811
):
    # The tests' server trusts loopback logins: any password does, and none may be printed.
    given = store_location.replace("mfu@", "mfu:hunter2@")
    first = mfu_chat("migrate", "--db", given)
    again = mfu_chat("migrate", env={"MFU_DATABASE_URL": given})

    assert first.returncode == 0, first.stderr
    known = postgres.SCHEMA_VERSION if is_postgres_url(store_location) else sqlite.SCHEMA_VERSION
    shown = store_location.replace("mfu@", "mfu:***@")
    assert first.stdout.decode() == f"mfu-chat migrate: {shown}: schema version 0 -> {known}\n"
    assert again.stdout.decode() == f"mfu-chat migrate: {shown}: schema version {known}, nothing to do\n"
    assert await schema_version(store_location) == known
    async with running_server(tmp_path, db_path=store_location) as srv, peer(srv.url, srv.token()) as alice:
        await send_message(alice, "hello")


async def test_a_node_refuses_a_schema_newer_than_it_knows_in_one_line_and_changes_nothing(
    tmp_path,
    store_location,  # noqa: F811
):
    store = make_store(store_location)
    await store.open()
    await store.close()
    newer = await make_newer(store_location)

    refused = run_cli("serve", "--port", "0", "--db", store_location, secret=new_secret())
    migrate = mfu_chat("migrate", "--db", store_location)

    expected = (
        f"the database has schema version {newer}, newer than this mfu-chat knows ({newer - 1}): run the "
        "mfu-chat release that migrated it (or a newer one), or restore a backup made before it"
    )
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [f"mfu-chat serve: {expected}"]
    assert migrate.returncode == 1
    assert migrate.stderr.decode().splitlines() == [f"mfu-chat migrate: {expected}"]
    assert await schema_version(store_location) == newer
