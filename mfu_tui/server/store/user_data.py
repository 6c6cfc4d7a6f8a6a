"""Whole chats and whole users, on any ``Db``: deleting chats with all that hangs off them, exporting
a user's chats, counting and deleting everything of one user.

``delete_chats`` is the one way a chat is deleted (``delete_chat``, retention,
``mfu-chat admin delete-user``). The rest serves the administration commands
(``mfu_tui/server/admin.py``), which run these on a connection of their own
beside the running nodes.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime

import msgspec

from mfu_tui.server.store.dialect import Db
from mfu_tui.server.store.queries import streamed_so_far
from mfu_tui.server.store.rows import to_datetime

#: Chats deleted per statement: well below SQLite's limit of bound parameters.
_IDS_PER_STATEMENT = 500


async def delete_chats(db: Db, chat_ids: list[str]) -> None:
    """Delete chats with their messages, chunks, edits and attachments (inside the caller's transaction)."""
    for start in range(0, len(chat_ids), _IDS_PER_STATEMENT):
        ids = chat_ids[start : start + _IDS_PER_STATEMENT]
        marks = ", ".join("?" * len(ids))
        # The chats first: the triggers counting their bytes then find no row to update per message.
        await db.execute(f"DELETE FROM chats WHERE id IN ({marks})", *ids)
        await db.execute(
            f"DELETE FROM chunks WHERE message_id IN (SELECT id FROM messages WHERE chat_id IN ({marks}))", *ids
        )
        await db.execute(f"DELETE FROM messages WHERE chat_id IN ({marks})", *ids)
        await db.execute(f"DELETE FROM edits WHERE chat_id IN ({marks})", *ids)
        files = f"SELECT id FROM attachments WHERE chat_id IN ({marks})"
        await db.execute(f"DELETE FROM attachment_parts WHERE attachment_id IN ({files})", *ids)
        await db.execute(f"DELETE FROM attachments WHERE chat_id IN ({marks})", *ids)


@dataclasses.dataclass(frozen=True)
class UserData:
    """How much one user has stored."""

    chats: int
    messages: int
    #: Applied edits kept for idempotency (``clientEditId``).
    edits: int
    #: Files, sent with a message or still uploading.
    attachments: int
    #: What counts toward the storage quota (``Store.stored_bytes``).
    bytes: int

    @property
    def empty(self) -> bool:
        """True when the user has nothing stored."""
        return not (self.chats or self.messages or self.edits or self.attachments)


async def count_user(db: Db, user: str) -> UserData:
    """What ``user`` has stored, every row that names them as its owner."""
    row = await db.fetchrow(
        "SELECT (SELECT COUNT(*) FROM chats WHERE owner = ?), (SELECT COUNT(*) FROM messages WHERE owner = ?),"
        " (SELECT COUNT(*) FROM edits WHERE owner = ?), (SELECT COUNT(*) FROM attachments WHERE owner = ?),"
        " (SELECT COALESCE(SUM(bytes), 0) FROM chats WHERE owner = ?)"
        " + (SELECT COALESCE(SUM(received), 0) FROM attachments WHERE owner = ?)",
        *[user] * 6,
    )  # fmt: skip
    assert row is not None
    return UserData(*(int(value) for value in row))


async def delete_user(db: Db, user: str) -> UserData:
    """Delete everything of ``user`` (inside the caller's transaction); what there was.

    Their chats with all that hangs off them, then any row still naming them:
    unsent uploads, and idempotency rows whose chat is gone. The deletion is
    recorded (``deleted_users``): the running nodes close the user's connections.
    """
    found = await count_user(db, user)
    chat_ids = [row[0] for row in await db.fetch("SELECT id FROM chats WHERE owner = ?", user)]
    await delete_chats(db, chat_ids)
    await db.execute("DELETE FROM chunks WHERE message_id IN (SELECT id FROM messages WHERE owner = ?)", user)
    await db.execute("DELETE FROM messages WHERE owner = ?", user)
    await db.execute("DELETE FROM edits WHERE owner = ?", user)
    files = "SELECT id FROM attachments WHERE owner = ?"
    await db.execute(f"DELETE FROM attachment_parts WHERE attachment_id IN ({files})", user)
    await db.execute("DELETE FROM attachments WHERE owner = ?", user)
    await db.execute("INSERT INTO deleted_users (owner, deleted_at) VALUES (?, ?)", user, time.time())
    return found


async def users_deleted_after(db: Db, after: int | None) -> tuple[int, list[str]]:
    """The users deleted after deletion number ``after`` (None: none, only the last number), and the last number."""
    last = int(await db.fetchval("SELECT COALESCE(MAX(n), 0) FROM deleted_users"))
    if after is None or after >= last:
        return last, []
    rows = await db.fetch("SELECT DISTINCT owner FROM deleted_users WHERE n > ? AND n <= ?", after, last)
    return last, sorted(row[0] for row in rows)


class ExportedFile(msgspec.Struct, rename="camel", omit_defaults=True):
    """A file sent with a message, its bytes whole."""

    name: str
    media_type: str
    size: int
    data: bytes


class ExportedMessage(msgspec.Struct, rename="camel", omit_defaults=True):
    """One message as stored (a streaming answer: the text stored so far)."""

    id: str
    role: str
    content: str
    status: str
    created_at: datetime
    #: What the model reasoned before answering, apart from its text ("": none; left out of the line).
    reasoning: str = ""
    finish_reason: str | None = None
    model_id: str | None = None
    edited_at: datetime | None = None
    ended_at: datetime | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    attachments: list[ExportedFile] = []


class ExportedChat(msgspec.Struct, rename="camel", omit_defaults=True):
    """One chat with all its messages, oldest first: a line of ``mfu-chat admin export-user``."""

    id: str
    title: str
    created_at: datetime
    updated_at: datetime
    messages: list[ExportedMessage]
    model_id: str | None = None
    pinned: bool = False
    archived: bool = False
    system_prompt: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    #: Where an imported chat came from (``chatgpt:...``).
    import_key: str | None = None


async def user_chat_ids(db: Db, user: str) -> list[str]:
    """The ids of the user's chats, oldest first."""
    return [row[0] for row in await db.fetch("SELECT id FROM chats WHERE owner = ? ORDER BY created_at, id", user)]


async def export_chat(db: Db, chat_id: str) -> ExportedChat | None:
    """A chat whole, or None if it was deleted meanwhile (run it in a snapshot)."""
    chat = await db.fetchrow(
        "SELECT id, title, created_at, updated_at, model_id, pinned, archived, system_prompt, temperature,"
        " top_p, max_tokens, seed, import_key FROM chats WHERE id = ?",
        chat_id,
    )
    if chat is None:
        return None
    rows = await db.fetch(
        "SELECT id, role, content, reasoning, status, created_at, finish_reason, model_id, edited_at, ended_at,"
        " prompt_tokens, completion_tokens FROM messages WHERE chat_id = ? ORDER BY n",
        chat_id,
    )
    files = await _files_of(db, chat_id)
    messages = []
    for id_, role, content, reasoning, status, created, finish, model, edited, ended, prompt, completion in rows:
        if status == "streaming":
            content, reasoning, _ = await streamed_so_far(db, id_)
        messages.append(
            ExportedMessage(
                id=id_, role=role, content=content, status=status, created_at=to_datetime(created), reasoning=reasoning,
                finish_reason=finish, model_id=model, edited_at=_time(edited), ended_at=_time(ended),
                prompt_tokens=prompt, completion_tokens=completion, attachments=files.get(id_, []),
            )
        )  # fmt: skip
    id_, title, created, updated, model, pinned, archived, prompt_text, temperature, top_p, max_tokens, seed, key = chat
    return ExportedChat(
        id=id_, title=title, created_at=to_datetime(created), updated_at=to_datetime(updated), messages=messages,
        model_id=model, pinned=bool(pinned), archived=bool(archived), system_prompt=prompt_text,
        temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed, import_key=key,
    )  # fmt: skip


async def _files_of(db: Db, chat_id: str) -> dict[str, list[ExportedFile]]:
    """The files of a chat's messages with their bytes, by message id, in their order."""
    rows = await db.fetch(
        "SELECT attachments.id, attachments.message_id, name, media_type, size, attachment_parts.data"
        " FROM attachments LEFT JOIN attachment_parts ON attachment_parts.attachment_id = attachments.id"
        " WHERE attachments.chat_id = ? AND attachments.message_id IS NOT NULL"
        " ORDER BY attachments.message_id, attachments.position, attachment_parts.start",
        chat_id,
    )
    parts: dict[str, tuple[str, str, str, int, list[bytes]]] = {}
    for attachment_id, message_id, name, media_type, size, data in rows:
        held = parts.setdefault(attachment_id, (message_id, name, media_type, int(size), []))
        if data is not None:
            held[4].append(bytes(data))
    files: dict[str, list[ExportedFile]] = {}
    for message_id, name, media_type, size, pieces in parts.values():
        files.setdefault(message_id, []).append(ExportedFile(name, media_type, size, b"".join(pieces)))
    return files


def _time(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else to_datetime(timestamp)
