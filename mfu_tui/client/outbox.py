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
from dataclasses import asdict, dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; one client per account at a time there
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("mfu_tui.client")

#: Most clients of one account running at once on one machine.
MAX_SLOTS = 64


@dataclass(frozen=True)
class OutboxEntry:
    """One user message waiting for its ``ack``.

    ``chat_id`` is ``None`` for a message that creates a new chat.
    """

    client_message_id: str
    chat_id: str | None
    content: str
    model_id: str | None = None


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
        self._load()

    @classmethod
    def for_account(cls, data_dir: Path, url: str, token: str) -> Outbox:
        """This client's outbox for the user of ``token`` on the server at ``url``, under ``data_dir``.

        Takes the first slot no other running client holds, then adopts what
        the unheld slots still have pending.

        Raises:
            OSError: ``MAX_SLOTS`` clients of this account already run here.
        """
        key = f"{url}\0{token_subject(token)}".encode()
        stem = f"outbox-{hashlib.sha256(key).hexdigest()[:16]}"
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
                outbox._adopt(path)
        return outbox

    def close(self) -> None:
        """Let go of this slot: what is pending stays on disk for the next client to send."""
        if self._lock is not None:
            os.close(self._lock)  # releases the lock
            self._lock = None

    def _adopt(self, path: Path) -> None:
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
        """Forget an acknowledged (or refused) message; returns it, or ``None`` if unknown."""
        entry = self._pending.pop(client_message_id, None)
        if entry is not None:
            self._forget("client_message_id", client_message_id)
        return entry

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
            lines = self.path.read_bytes().splitlines()
        except FileNotFoundError:
            return
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
                op = record.pop("op")
                if op == "add":
                    entry = OutboxEntry(**record)
                    self._pending[entry.client_message_id] = entry
                elif op == "edit":
                    edit = PendingEdit(**record)
                    self._edits[edit.client_edit_id] = edit
                elif op == "done" and "client_edit_id" in record:
                    self._edits.pop(record["client_edit_id"], None)
                elif op == "done":
                    self._pending.pop(record["client_message_id"], None)
            except (ValueError, KeyError, TypeError):
                log.warning("outbox %s: skipping unreadable line %d", self.path, number)
        if self._pending or self._edits:
            log.info(
                "outbox %s: %d message(s) and %d edit(s) pending from an earlier run",
                self.path, len(self._pending), len(self._edits),
            )  # fmt: skip

    def _append(self, record: dict[str, object], *, sync: bool) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        with open(self.path, "ab") as journal:
            journal.write(line.encode())
            journal.flush()
            if sync:
                os.fsync(journal.fileno())

    def _truncate(self) -> None:
        with open(self.path, "wb") as journal:
            os.fsync(journal.fileno())


def _try_lock(journal: Path) -> int | None:
    """A descriptor holding the exclusive lock of ``journal``'s slot, or None if a running client holds it.

    The lock is on a file of its own (``<journal>.lock``): the journal is
    rewritten (emptied) while the lock is held.
    """
    journal.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(journal.with_name(journal.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
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
