"""``mfu-chat migrate`` and ``mfu-chat admin ...``: the operator's commands on a server's database.

Each runs on a connection of its own, beside running nodes: the same
database as ``serve`` (``--db``, else ``MFU_DATABASE_URL``, else the default
SQLite file). ``migrate`` brings the schema to this release's; the others
need it there already, and never migrate by themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO, Any

import msgspec

from mfu_tui.file_lock import Lock, claim_work_file
from mfu_tui.redaction import redact_password
from mfu_tui.server.config import ConfigError, database_location
from mfu_tui.server.store import postgres, sqlite
from mfu_tui.server.store.dialect import Db
from mfu_tui.server.store.schema import Migrated, check_current
from mfu_tui.server.store.sqlite import SqliteDb
from mfu_tui.server.store.user_data import (
    ExportedChat,
    ExportedMessage,
    UserData,
    count_user,
    delete_user,
    export_chat,
    user_chat_ids,
)

#: Bad usage: a confirmation missing, a command that does not apply to this database.
EXIT_USAGE = 2


class AdminError(Exception):
    """The command cannot do what it was asked; one line saying why."""


def run_migrate(args: argparse.Namespace) -> int:
    """``mfu-chat migrate``: bring the database's schema to this release's."""
    try:
        location = _location(args)
        if isinstance(location, str):
            migrated = asyncio.run(postgres.migrate_database(location))
        else:
            # A mistyped --db would otherwise become a new, empty database: serve makes it at its first start.
            with _database_file(location):
                migrated = sqlite.migrate_file(_existing(location))
    except (OSError, sqlite3.Error, AdminError) as error:
        return _fail("migrate", error)
    print(f"mfu-chat migrate: {_name(location)}: {_outcome(migrated)}")
    return 0


def run_export_user(args: argparse.Namespace) -> int:
    """``mfu-chat admin export-user USER``: every chat of the user, as JSON lines or a ChatGPT-like export."""
    try:
        count = asyncio.run(_export(_location(args), args.user, args.format, args.output))
    except (OSError, sqlite3.Error, AdminError) as error:
        return _fail("admin export-user", error)
    print(f"mfu-chat admin export-user: {_counted(count, 'chat')} of {args.user!r}", file=sys.stderr)
    return 0


def run_delete_user(args: argparse.Namespace) -> int:
    """``mfu-chat admin delete-user USER --yes``: delete everything of the user (without ``--yes``: say what)."""
    try:
        found = asyncio.run(_delete(_location(args), args.user, confirmed=args.yes))
    except (OSError, sqlite3.Error, AdminError) as error:
        return _fail("admin delete-user", error)
    if found.empty:
        print(f"mfu-chat admin delete-user: {args.user!r} has nothing stored")
        return 0
    if not args.yes:
        print(f"mfu-chat admin delete-user: {args.user!r} has {_tally(found)}; add --yes to delete it all")
        return EXIT_USAGE
    print(f"mfu-chat admin delete-user: deleted {_tally(found)} of {args.user!r}")
    return 0


def run_backup(args: argparse.Namespace) -> int:
    """``mfu-chat admin backup PATH``: a consistent copy of a SQLite database, made while its server runs."""
    try:
        location = _location(args)
    except AdminError as error:
        return _fail("admin backup", error)
    if isinstance(location, str):
        print(
            "mfu-chat admin backup: a PostgreSQL database is backed up with pg_dump "
            "(docs/deploy.md, Backup and restore)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        chats = backup_sqlite(location, Path(args.path))
    except (OSError, sqlite3.Error, AdminError) as error:
        return _fail("admin backup", error)
    print(f"mfu-chat admin backup: {location} -> {args.path} ({_counted(chats, 'chat')})")
    return 0


def backup_sqlite(source: Path, target: Path) -> int:
    """Copy the SQLite database ``source`` to the new file ``target`` (mode 600); the chats it holds.

    SQLite's online backup API copies every page in one step, inside one read
    transaction: a consistent snapshot, while the server's writer goes on
    committing to the WAL. The copy is written beside ``target`` and renamed
    once checked, so ``target`` is never a half-written file.

    Raises:
        AdminError: ``source`` is missing, ``target`` or its directory is not as it should be, another backup to
            ``target`` is running, or the copy fails its check.
    """
    _existing(source)
    partial = target.with_name(f".{target.name}.partial")
    lock = _claim_partial(partial, target)
    try:
        # Checked with the partial copy held: a backup to the same path that ended a moment ago made ``target``.
        if target.exists():
            raise _taken(target)
        with (
            _database_file(source),
            contextlib.closing(_connect_sqlite(source)) as db,
            contextlib.closing(sqlite3.connect(partial)) as copy,
        ):
            db.backup(copy)
            verdict = copy.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                raise AdminError(f"the copy failed its check: {verdict}")
            chats = int(copy.execute("SELECT COUNT(*) FROM chats").fetchone()[0])
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)  # while still held: once renamed, the name may be the next backup's
        raise
    finally:
        lock.release()
    return chats


def _claim_partial(partial: Path, target: Path) -> Lock:
    """The lock on the backup's partial copy, held while it is written (``file_lock.claim_work_file``).

    A partial copy whose lock is free is a killed backup's, taken over.

    Raises:
        AdminError: Another backup to ``target`` is writing it, or the system refuses a file there.
    """
    try:
        lock = claim_work_file(partial)
    except OSError as error:
        raise _refused(partial, error) from None
    if lock is None:
        raise AdminError(
            f"another backup to {target} is running (it writes {partial}): wait for its end, or give another file"
        )
    return lock


async def _export(location: Path | str, user: str, form: str, output: str | None) -> int:
    """Write the user's chats to ``output`` (``None``: standard output); how many.

    Raises:
        AdminError: Nothing is stored under ``user`` (a mistyped name): no file is made.
    """
    encode = msgspec.json.Encoder().encode
    count = 0
    async with _connection(location) as db, db.snapshot():  # every chat as of one moment
        chat_ids = await user_chat_ids(db, user)
        if not chat_ids and (await count_user(db, user)).empty:
            raise AdminError(f"no user {user!r}: nothing is stored under that name (check its spelling)")
        with _output(output) as out:
            if form == "chatgpt":
                out.write(b"[")
            for chat_id in chat_ids:
                chat = await export_chat(db, chat_id)
                if chat is None:
                    continue
                if form == "chatgpt":
                    out.write((b",\n" if count else b"\n") + encode(chatgpt_conversation(chat)))
                else:
                    out.write(encode(chat) + b"\n")
                count += 1
            if form == "chatgpt":
                out.write(b"\n]\n")
    return count


async def _delete(location: Path | str, user: str, *, confirmed: bool) -> UserData:
    """Delete everything of ``user`` if ``confirmed``; what they had."""
    async with _connection(location) as db:
        if not confirmed:
            async with db.snapshot():
                return await count_user(db, user)
        async with db.transaction():
            return await delete_user(db, user)


def chatgpt_conversation(chat: ExportedChat) -> dict[str, Any]:
    """A chat in the shape of a conversation of ChatGPT's ``conversations.json`` (text only: no files).

    One branch, from a root node without a message to the last message, as
    ``mfu-chat import`` (and other tools reading ChatGPT exports) expect. An
    answer's reasoning is a node of its own just before it, as ChatGPT exports
    a reasoning model's thoughts (``content_type`` ``thoughts``): readers that
    keep only text, ``mfu-chat import`` among them, pass over it.
    """
    root = f"{chat.id}-root"
    mapping: dict[str, dict[str, Any]] = {root: {"id": root, "message": None, "parent": None, "children": []}}
    parent = root

    def add(node_id: str, message: ExportedMessage, content: dict[str, Any]) -> None:
        nonlocal parent
        mapping[node_id] = {
            "id": node_id,
            "message": {
                "id": node_id,
                "author": {"role": message.role},
                "create_time": message.created_at.timestamp(),
                "content": content,
                "status": "finished_successfully" if message.status == "complete" else message.status,
                "metadata": {"model_slug": message.model_id} if message.model_id else {},
            },
            "parent": parent,
            "children": [],
        }
        mapping[parent]["children"].append(node_id)
        parent = node_id

    for message in chat.messages:
        if message.reasoning:
            thoughts = [{"summary": "Thinking", "content": message.reasoning}]
            add(f"{message.id}-thoughts", message, {"content_type": "thoughts", "thoughts": thoughts})
        add(message.id, message, {"content_type": "text", "parts": [message.content]})
    return {
        "id": chat.id,
        "conversation_id": chat.id,
        "title": chat.title,
        "create_time": chat.created_at.timestamp(),
        "update_time": chat.updated_at.timestamp(),
        "current_node": parent,
        "mapping": mapping,
    }


@contextlib.asynccontextmanager
async def _connection(location: Path | str) -> AsyncIterator[Db]:
    """A connection to the database, whose schema must be this release's.

    Raises:
        AdminError: a SQLite file that is not there.
        StoreUnavailable: PostgreSQL cannot be reached.
        SchemaTooNew, SchemaTooOld: the schema is not this release's.
    """
    if isinstance(location, str):
        connection = await postgres.connect(location)
        try:
            check_current(await postgres.schema_version(connection), postgres.SCHEMA_VERSION)
            yield postgres.PostgresDb(connection)
        finally:
            await connection.close()
        return
    with _database_file(location), contextlib.closing(_connect_sqlite(_existing(location))) as db:
        check_current(sqlite.schema_version(db), sqlite.SCHEMA_VERSION)
        yield SqliteDb(db)


@contextlib.contextmanager
def _database_file(path: Path) -> Iterator[None]:
    """Name ``path`` when SQLite finds it is not a database, as serve does (SQLite's own error names no file).

    Raises:
        AdminError: ``path`` is not a SQLite database.
    """
    try:
        yield
    except sqlite3.DatabaseError as error:
        if error.sqlite_errorname != "SQLITE_NOTADB":
            raise
        # serve's words (``unusable_file``), not its advice: these commands make no new database.
        raise AdminError(f"--db {path} is not a SQLite database ({error}): give the server's database") from None


def _connect_sqlite(path: Path) -> sqlite3.Connection:
    """A connection to an existing SQLite file that waits for the server's writer rather than failing."""
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None, timeout=30)
    db.execute("PRAGMA busy_timeout=30000")
    return db


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[IO[bytes]]:
    """Standard output, or a new file readable by its owner only (a user's chats are private)."""
    if path is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    with os.fdopen(_create(Path(path)), "wb") as out:
        yield out


def _location(args: argparse.Namespace) -> Path | str:
    """The database of ``--db``, else ``MFU_DATABASE_URL``, else serve's default.

    Raises:
        AdminError: A URL of a database this server does not know.
    """
    try:
        return database_location(args.db or os.environ.get("MFU_DATABASE_URL") or None)
    except ConfigError as error:
        raise AdminError(str(error)) from None


def _existing(path: Path) -> Path:
    """``path``, a SQLite file that is there.

    Raises:
        AdminError: There is no file at ``path``.
    """
    if not path.is_file():
        raise AdminError(f"no database at {path}")
    return path


def _create(path: Path) -> int:
    """A new file at ``path``, private from its first byte (mode 600); its descriptor.

    Raises:
        AdminError: ``path`` exists, its directory does not, or the system refuses a file there.
    """
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise _taken(path) from None
    except OSError as error:
        raise _refused(path, error) from None


def _refused(path: Path, error: OSError) -> AdminError:
    """The refusal of the system to make the file ``path``, named by its directory."""
    if isinstance(error, FileNotFoundError):
        # Not made for the admin: a mistyped directory would hold the backups no one looks for.
        return AdminError(f"no directory {path.parent}: make it first, or give a file in a directory that is there")
    # Not writable, read-only, not a directory...: the directory's fault, and so named (a backup makes
    # its partial copy first, a name the admin never gave).
    return AdminError(
        f"cannot make a file in {path.parent} ({error.strerror}): give a file in a directory you can write to"
    )


def _taken(path: Path) -> AdminError:
    """The refusal to write over ``path``: a backup or an export is only ever a new file."""
    return AdminError(f"{path} exists already: give a new file")


def _name(location: Path | str) -> str:
    return redact_password(location) if isinstance(location, str) else str(location)


def _outcome(migrated: Migrated) -> str:
    if migrated.before == migrated.after:
        return f"schema version {migrated.after}, nothing to do"
    return f"schema version {migrated.before} -> {migrated.after}"


def _tally(found: UserData) -> str:
    counts = zip(
        (found.chats, found.messages, found.attachments, found.edits, found.bytes),
        ("chat", "message", "attachment", "edit", "byte"),
        strict=True,
    )
    return ", ".join(_counted(count, thing) for count, thing in counts)


def _counted(count: int, thing: str) -> str:
    """``1 chat``, ``2 chats``: every ``thing`` counted here takes an s."""
    return f"{count} {thing}" if count == 1 else f"{count} {thing}s"


def _fail(command: str, error: BaseException) -> int:
    print(f"mfu-chat {command}: {error}", file=sys.stderr)
    return 1
