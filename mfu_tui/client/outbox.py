"""The outbox: user messages (and edits) kept on disk until the server acknowledges them.

Why an append-only JSON-lines journal rather than SQLite: the outbox holds
a handful of short records at a time, is written by one process, and needs
exactly two operations per record, "add" (durable before the first send)
and "done" (on ``ack``; for an edit, its ``message_edited``). Appending one
line and calling ``fsync`` gives the durability with nothing to configure,
the file stays readable with ``cat`` when a user asks "where did my message
go?", and a line cut short by a crash is simply skipped on the next start
(its ``send_message`` call never returned, so the message was never sent
nor promised). When nothing is pending any more the
file is emptied, so it never grows without bound.

A cut line must not take the next record with it (issue 14): a kill in the
middle of a write of several pages leaves a record without its newline, and
the next record appended would be glued onto it and lost with it at the
following start. So the first append after a start truncates the journal to
its last complete record; and the loader reads every record glued onto a
cut one (each record starts with ``{"op":``, which cannot occur unescaped
inside a JSON string), which also recovers journals written before this fix.

Pending message text is private: the journal and its lock are created 0600
and tightened if an older version left them readable, in directories the
outbox creates 0700.

A message's files are copied, whole, into ``attachments/`` beside the
journal (0600, fsynced) before its record is written, and deleted when it is
done: what is sent is what was attached, even if the file changes or goes
away meanwhile, or the client is killed before it is sent.

One journal per server and user, so that a message typed for one account is
never sent with another account's token; and one per running client of that
account (two terminals, say): each holds a lock on its own journal (a
"slot"), so one never empties a journal that still holds the other's
messages. A client that starts takes the first free slot and adopts the
pending messages of any other slot no running client holds (one that was
killed), so nothing is left behind.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import msgspec

from mfu_tui.protocol import ChatParams

try:
    import fcntl
except ImportError:  # Windows: no flock; one client per account at a time there
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("mfu_tui.client")

#: Most clients of one account running at once on one machine.
MAX_SLOTS = 64

#: How every record of the journal begins (``"op"`` is always its first key).
RECORD_START = b'{"op":'

#: The name of a kept file: its ``clientAttachmentId`` as this client makes them (no path in it).
_FILE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")

#: Permission bits of every file and directory the outbox makes: its owner's only.
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def account_key(account: str, user: str) -> str:
    """A short name for ``user``'s account on the server named ``account`` (its URL), for its files' names."""
    return hashlib.sha256(f"{account}\0{user}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PendingFile:
    """A file of an outbox message; its bytes are kept beside the journal (``Outbox.file_bytes``)."""

    client_attachment_id: str
    name: str
    media_type: str
    size: int


@dataclass(frozen=True)
class OutboxEntry:
    """One user message waiting for its ``ack``.

    ``chat_id`` is ``None`` for a message that creates a new chat; such a
    message may carry the chat's settings, kept with it so that a resend
    after a crash or a reconnect creates the chat with them.
    """

    client_message_id: str
    chat_id: str | None
    content: str
    model_id: str | None = None
    system_prompt: str | None = None
    #: The new chat's ``ChatParams`` in their wire form (``{"temperature": 0.3, "topP": null, ...}``):
    #: JSON as the journal writes it.
    params: dict[str, Any] | None = None
    #: Its files (``PendingFile`` as JSON), uploaded before it is sent, in order.
    attachments: list[dict[str, Any]] | None = None

    def files(self) -> list[PendingFile]:
        """``attachments`` as ``PendingFile``.

        Raises:
            msgspec.ValidationError: they are not (a journal edited by hand); the loader skips such a record.
        """
        files = msgspec.convert(self.attachments or [], list[PendingFile])
        for file in files:
            if not _FILE_ID.fullmatch(file.client_attachment_id):
                raise msgspec.ValidationError(f"not a file id: {file.client_attachment_id!r}")
        return files

    def chat_params(self) -> ChatParams | None:
        """``params`` as ``ChatParams``.

        Raises:
            msgspec.ValidationError: they are not (a journal edited by hand); the loader skips such a record.
        """
        return None if self.params is None else msgspec.convert(self.params, ChatParams)


@dataclass(frozen=True)
class PendingEdit:
    """One ``edit_message`` waiting for its ``message_edited`` (the server applies it once)."""

    client_edit_id: str
    chat_id: str
    message_id: str
    content: str
    regenerate: bool = False


class Outbox:
    """Pending user messages, in the order they were written, backed by a journal file.

    Args:
        path: The journal file; created (with its directory) on the first add.
        lock: A descriptor holding the lock on ``path``'s slot, released by ``close``.
    """

    def __init__(self, path: Path, lock: int | None = None) -> None:
        self.path = path
        self._lock = lock
        self._pending: dict[str, OutboxEntry] = {}
        self._edits: dict[str, PendingEdit] = {}
        # Where the last complete record ends, when a crash left a cut one after it.
        self._torn_at: int | None = None
        self._load()

    @classmethod
    def for_account(cls, data_dir: Path, account: str, user: str) -> Outbox:
        """This client's outbox for ``user`` on the server named ``account`` (its URL), under ``data_dir``.

        By the user, not the token: a message typed before the app has a token
        (the local server still starting) or kept under a token since renewed
        is the same user's, and is sent with the next token.

        Takes the first slot no other running client holds, then adopts what
        the unheld slots still have pending.

        Raises:
            OSError: ``MAX_SLOTS`` clients of this account already run here.
        """
        stem = f"outbox-{account_key(account, user)}"
        slots = [Path(data_dir) / (f"{stem}.jsonl" if n == 0 else f"{stem}.{n}.jsonl") for n in range(MAX_SLOTS)]
        for path in slots:
            lock = _try_lock(path)
            if lock is not None:
                outbox = cls(path, lock)
                break
        else:
            raise OSError(f"{MAX_SLOTS} mfu-chat clients of this account are running already")
        for path in slots:
            if path != outbox.path and path.exists():
                outbox.adopt(path)
        return outbox

    def close(self) -> None:
        """Let go of this slot: what is pending stays on disk for the next client to send."""
        if self._lock is not None:
            os.close(self._lock)  # releases the lock
            self._lock = None

    def adopt(self, path: Path) -> None:
        """Take over the pending messages of another slot, if no running client holds it."""
        lock = _try_lock(path)
        if lock is None:
            return
        try:
            orphan = Outbox(path)
            for entry in orphan.pending():
                if entry.client_message_id not in self._pending:
                    self.add(entry)  # durable here before it is dropped there
            for edit in orphan.pending_edits():
                if edit.client_edit_id not in self._edits:
                    self.add_edit(edit)
            if orphan.pending() or orphan.pending_edits():
                log.info("outbox %s: adopted what %s left", self.path, path)
                orphan._truncate()
        finally:
            os.close(lock)

    def pending(self) -> list[OutboxEntry]:
        """Messages not yet acknowledged, oldest first."""
        return list(self._pending.values())

    def pending_edits(self) -> list[PendingEdit]:
        """Edits not yet confirmed, oldest first."""
        return list(self._edits.values())

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, client_message_id: str) -> bool:
        return client_message_id in self._pending

    def add(self, entry: OutboxEntry) -> None:
        """Write ``entry`` to disk and ``fsync`` it; return only once it is durable."""
        self._append({"op": "add", **asdict(entry)}, sync=True)
        self._pending[entry.client_message_id] = entry

    def add_edit(self, edit: PendingEdit) -> None:
        """Write ``edit`` to disk and ``fsync`` it; return only once it is durable."""
        self._append({"op": "edit", **asdict(edit)}, sync=True)
        self._edits[edit.client_edit_id] = edit

    def done(self, client_message_id: str) -> OutboxEntry | None:
        """Forget an acknowledged (or refused) message and its files; returns it, or ``None`` if unknown."""
        entry = self._pending.pop(client_message_id, None)
        if entry is not None:
            self._forget("client_message_id", client_message_id)
            for file in entry.files():
                self._file_path(file.client_attachment_id).unlink(missing_ok=True)
        return entry

    def keep_file(self, client_attachment_id: str, data: bytes) -> None:
        """Copy a file to be sent beside the journal, and ``fsync`` it; before the ``add`` of its message."""
        path = self._file_path(client_attachment_id)
        _private_dirs(path.parent)
        descriptor = _open_private(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            view = memoryview(data)
            while view:  # os.write may write less than asked
                view = view[os.write(descriptor, view) :]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def file_bytes(self, client_attachment_id: str) -> bytes:
        """The bytes of a kept file.

        Raises:
            OSError: the copy is gone (deleted by hand).
        """
        return self._file_path(client_attachment_id).read_bytes()

    def _file_path(self, client_attachment_id: str) -> Path:
        if not _FILE_ID.fullmatch(client_attachment_id):
            raise ValueError(f"not a file id: {client_attachment_id!r}")
        return self.path.parent / "attachments" / client_attachment_id

    def edit_done(self, client_edit_id: str) -> PendingEdit | None:
        """Forget a confirmed (or refused) edit; returns it, or ``None`` if unknown."""
        edit = self._edits.pop(client_edit_id, None)
        if edit is not None:
            self._forget("client_edit_id", client_edit_id)
        return edit

    def _forget(self, key: str, value: str) -> None:
        if self._pending or self._edits:
            # Not fsynced: if this line is lost in a crash the record is sent
            # once more, and the server answers a known clientMessageId (or
            # clientEditId) as the first time without applying it again.
            self._append({"op": "done", key: value}, sync=False)
        else:
            self._truncate()

    def _load(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        complete = data.rfind(b"\n") + 1
        if complete < len(data):
            # Cut by a crash: never promised (add had not returned). Cut off
            # before the next append, or that record would be glued onto it.
            log.warning("outbox %s: a crash cut the last record short; it is dropped", self.path)
            self._torn_at = complete
        for number, line in enumerate(data[:complete].split(b"\n")[:-1], 1):
            for record in _records(line):
                if record is None:
                    log.warning("outbox %s: skipping an unreadable record on line %d", self.path, number)
                else:
                    self._apply(record)
        if self._pending or self._edits:
            log.info(
                "outbox %s: %d message(s) and %d edit(s) pending from an earlier run",
                self.path, len(self._pending), len(self._edits),
            )  # fmt: skip

    def _apply(self, record: dict[str, object]) -> None:
        op = record.pop("op")
        if op == "add":
            entry = OutboxEntry(**record)  # type: ignore[arg-type]
            self._pending[entry.client_message_id] = entry
        elif op == "edit":
            edit = PendingEdit(**record)  # type: ignore[arg-type]
            self._edits[edit.client_edit_id] = edit
        elif op == "done" and "client_edit_id" in record:
            self._edits.pop(str(record["client_edit_id"]), None)
        elif op == "done":
            self._pending.pop(str(record["client_message_id"]), None)

    def _append(self, record: dict[str, object], *, sync: bool) -> None:
        _private_dirs(self.path.parent)
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        descriptor = _open_private(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            if self._torn_at is not None:
                os.ftruncate(descriptor, self._torn_at)
                self._torn_at = None
            data = line.encode()
            while data:  # os.write may write less than asked
                data = data[os.write(descriptor, data) :]
            if sync:
                os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def _truncate(self) -> None:
        descriptor = _open_private(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        self._torn_at = None


def _records(line: bytes) -> list[dict[str, object] | None]:
    """The records of one journal line: one, or those glued onto a cut one (``None`` for each unreadable part)."""
    parsed = _record(line)
    if parsed is not None:
        return [parsed]
    # A record appended onto a cut one (before issue 14's fix, or after a
    # failed write): split where each record begins.
    starts = [found.start() for found in re.finditer(re.escape(RECORD_START), line)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    return [_record(line[start:end]) for start, end in zip(starts, [*starts[1:], len(line)])]


def _record(text: bytes) -> dict[str, object] | None:
    """One record, or ``None`` if ``text`` is not one the journal writes."""
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("op") not in ("add", "edit", "done"):
        return None
    fields = {key: value for key, value in record.items() if key != "op"}
    try:
        if record["op"] == "add":
            entry = OutboxEntry(**fields)
            entry.chat_params()
            entry.files()
        elif record["op"] == "edit":
            PendingEdit(**fields)
        elif not isinstance(fields.get("client_edit_id", fields.get("client_message_id")), str):
            return None
    except (TypeError, msgspec.ValidationError):
        return None
    return record


def _private_dirs(directory: Path) -> None:
    """Make ``directory`` and its missing parents, each only its owner may enter (0700).

    A directory that exists already is left as it is: it may be one the
    caller shares on purpose; the files in it are 0600 anyway.
    """
    missing = []
    while not directory.is_dir():
        missing.append(directory)
        if directory.parent == directory:
            break
        directory = directory.parent
    for path in reversed(missing):
        path.mkdir(mode=PRIVATE_DIR, exist_ok=True)


def _open_private(path: Path, flags: int) -> int:
    """``os.open`` a file as 0600, and tighten it if it is readable by others (an older version's)."""
    descriptor = os.open(path, flags | getattr(os, "O_BINARY", 0), PRIVATE_FILE)
    if hasattr(os, "fchmod") and os.fstat(descriptor).st_mode & 0o077:
        try:
            os.fchmod(descriptor, PRIVATE_FILE)
        except OSError as error:  # another user's file: still keep the message rather than lose it
            log.warning("outbox %s: cannot make it private (%s)", path, error)
    return descriptor


def _try_lock(journal: Path) -> int | None:
    """A descriptor holding the exclusive lock of ``journal``'s slot, or None if a running client holds it.

    The lock is on a file of its own (``<journal>.lock``): the journal is
    rewritten (emptied) while the lock is held.
    """
    _private_dirs(journal.parent)
    descriptor = _open_private(journal.with_name(journal.name + ".lock"), os.O_RDWR | os.O_CREAT)
    if fcntl is None:
        return descriptor
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    return descriptor


def token_subject(token: str) -> str:
    """The user a JWT names (``sub``, else ``username``), read without checking the signature.

    Only used to pick the outbox file; the server does the real check. A
    token that cannot be read maps to ``""``.
    """
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims.get("sub") or claims.get("username") or "")
    except (IndexError, ValueError, AttributeError, binascii.Error):
        return ""
