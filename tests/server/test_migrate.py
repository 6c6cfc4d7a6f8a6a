"""``mfu-chat migrate``, and a node refusing a schema newer than it knows, on both stores."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

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
    if not is_postgres_url(store_location):
        Path(store_location).touch()  # an empty file is a new database; migrate makes no file (below)
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


def test_migrate_refuses_a_sqlite_file_that_is_not_there_and_makes_none(tmp_path):
    typo = tmp_path / "chat.sqllite3"
    done = mfu_chat("migrate", "--db", str(typo))
    assert (done.returncode, done.stdout, done.stderr.decode()) == (
        1,
        b"",
        f"mfu-chat migrate: no database at {typo}\n",
    )
    assert list(tmp_path.iterdir()) == []


def test_a_sqlite_url_names_its_absolute_path_and_other_schemes_are_refused_in_one_line(tmp_path):
    database = tmp_path / "chat.sqlite3"
    database.touch()
    for url in (f"sqlite://{database}", f"sqlite:///{database}"):  # sqlite:///ABS, and SQLAlchemy's sqlite:////ABS
        done = mfu_chat("migrate", "--db", url)
        assert done.returncode == 0, done.stderr
        assert done.stdout.decode().startswith(f"mfu-chat migrate: {database}: schema version ")
    assert schema_version_of(database) == sqlite.SCHEMA_VERSION
    refusal = "--db (MFU_DATABASE_URL) takes a SQLite file, sqlite:///ABSOLUTE/PATH or a postgresql:// URL, got "
    for url, scheme in (
        ("mysql://chat:secret@db.example.edu/chat", "mysql://"),
        ("sqlite://host/chat.sqlite3", "sqlite://"),
    ):
        migrate = mfu_chat("migrate", env={"MFU_DATABASE_URL": url})
        serve = run_cli("serve", "--port", "0", "--db", url, secret=new_secret())
        assert (migrate.returncode, migrate.stderr.decode()) == (1, f"mfu-chat migrate: {refusal}{scheme}\n")
        assert (serve.returncode, serve.stderr) == (2, f"mfu-chat serve: {refusal}{scheme}\n")


def schema_version_of(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
