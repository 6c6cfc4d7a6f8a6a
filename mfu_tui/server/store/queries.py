"""The queries the store algorithm runs inside its reads and writes, on any ``Db``."""

from __future__ import annotations

from typing import Any

from mfu_tui.protocol import ChatSettings, ChatSummary, StoredMessage
from mfu_tui.server.model_input import ModelTurn
from mfu_tui.server.store.base import Edit, Exchange
from mfu_tui.server.store.dialect import Db
from mfu_tui.server.store.rows import (
    END_OF_CHAT,
    MESSAGE_COLUMNS,
    SETTINGS_COLUMNS,
    SUMMARY_COLUMNS,
    message_of,
    message_position,
    page_length,
    settings_of,
    summary_of,
    turns_of,
    with_attachments,
)


async def summary(db: Db, chat_id: str, user: str | None = None) -> ChatSummary | None:
    """A chat (the user's, if ``user`` is given), or None."""
    if user is None:
        row = await db.fetchrow(f"SELECT {SUMMARY_COLUMNS} FROM chats WHERE id = ?", chat_id)
    else:
        row = await db.fetchrow(f"SELECT {SUMMARY_COLUMNS} FROM chats WHERE id = ? AND owner = ?", chat_id, user)
    return summary_of(row) if row else None


async def settings(db: Db, chat_id: str) -> ChatSettings:
    """The settings of a chat the caller knows to exist."""
    return settings_of(await db.fetchrow(f"SELECT {SETTINGS_COLUMNS} FROM chats WHERE id = ?", chat_id))


async def known_exchange(
    db: Db, user: str, client_message_id: str, mine: tuple[str, tuple[Any, ...]] | None = None
) -> Exchange | None:
    """The exchange the user stored for ``client_message_id`` (``duplicate=True``), or None.

    Args:
        mine: A condition (and its parameters) that holds of a reply this node claimed: if given,
            a reply streaming under it is ``orphaned``, with its history and settings.
    """
    known = await db.fetchrow(
        "SELECT id, chat_id FROM messages WHERE owner = ? AND client_message_id = ?", user, client_message_id
    )
    if known is None:
        return None
    message_id, chat_id = known
    reply_id = await db.fetchval("SELECT id FROM messages WHERE reply_to = ? ORDER BY n DESC LIMIT 1", message_id)
    chat = await summary(db, chat_id)
    if chat is None:  # deleted since the message was read (each query sees its own snapshot)
        return None
    if mine is not None and reply_id is not None:
        condition, parameters = mine
        streaming = "SELECT 1 FROM messages WHERE id = ? AND status = 'streaming'" + condition
        if await db.fetchrow(streaming, reply_id, *parameters) is not None:
            return Exchange(
                chat=chat,
                user_message_id=message_id,
                reply_id=reply_id,
                history=await history(db, chat_id, reply_id),
                duplicate=True,
                settings=await settings(db, chat_id),
                orphaned=True,
            )
    return Exchange(chat=chat, user_message_id=message_id, reply_id=reply_id or "", history=[], duplicate=True)


async def known_edit(db: Db, user: str, client_edit_id: str) -> Edit | None:
    """The edit the user applied for ``client_edit_id`` (``duplicate=True``), or None."""
    row = await db.fetchrow(
        "SELECT chat_id, message_id, content, edited_at, reply_id FROM edits WHERE owner = ? AND client_edit_id = ?",
        user, client_edit_id,
    )  # fmt: skip
    if row is None:
        return None
    chat_id, message_id, content, edited_at, reply_id = row
    chat = await summary(db, chat_id)
    if chat is None:
        return None
    return Edit(chat, message_id, content, edited_at=edited_at, reply_id=reply_id, duplicate=True)


async def history(db: Db, chat_id: str, reply_id: str) -> list[ModelTurn]:
    """The messages before the reply ``reply_id``, oldest first, with their files, as model input.

    An empty answer is left out; a user message never is (it may be files only).
    """
    rows = await db.fetch(
        "SELECT id, role, content FROM messages WHERE chat_id = ?"
        " AND n < (SELECT n FROM messages WHERE id = ?) AND (content <> '' OR role = 'user') ORDER BY n",
        chat_id, reply_id,
    )  # fmt: skip
    files = await db.fetch(
        "SELECT attachments.message_id, attachments.position, name, media_type, attachment_parts.data"
        " FROM attachments LEFT JOIN attachment_parts ON attachment_parts.attachment_id = attachments.id"
        " WHERE attachments.chat_id = ? AND attachments.message_id IS NOT NULL"
        " ORDER BY attachments.message_id, attachments.position, attachment_parts.start",
        chat_id,
    )
    return turns_of(rows, files)


async def streamed_so_far(db: Db, message_id: str) -> tuple[str, str, int]:
    """The text, the reasoning and the last ``seq`` of a reply still streaming, from its chunks."""
    pieces = await db.fetch("SELECT seq, content, reasoning FROM chunks WHERE message_id = ? ORDER BY seq", message_id)
    content = "".join(piece for _, piece, thought in pieces if not thought)
    reasoning = "".join(piece for _, piece, thought in pieces if thought)
    return content, reasoning, (pieces[-1][0] if pieces else 0)


async def drop_expired_uploads(db: Db, user: str, expire_before: float) -> None:
    """Drop the user's unsent uploads started before ``expire_before``, with their bytes."""
    expired = "SELECT id FROM attachments WHERE owner = ? AND message_id IS NULL AND created_at < ?"
    await db.execute(f"DELETE FROM attachment_parts WHERE attachment_id IN ({expired})", user, expire_before)
    await db.execute(
        "DELETE FROM attachments WHERE owner = ? AND message_id IS NULL AND created_at < ?", user, expire_before
    )


# A page is measured (page_before, page_from) before its messages are read (page_messages), so a
# page of long messages never reads past what it sends.


async def page_before(db: Db, chat_id: str, limit: int, before: str | None) -> tuple[int, int, int]:
    """How many messages the page before message ``before`` (None: the newest) holds, and its first and last ``n``.

    Raises:
        BadCursor: ``before`` is not a message of this chat.
    """
    end = END_OF_CHAT
    if before is not None:
        found = await db.fetchrow("SELECT n FROM messages WHERE id = ? AND chat_id = ?", before, chat_id)
        end = message_position(found)
    sizes = await db.fetch(
        "SELECT n, length(content) + length(reasoning) FROM messages WHERE chat_id = ? AND n < ?"
        " ORDER BY n DESC LIMIT ?",
        chat_id, end, limit + 1,
    )  # fmt: skip
    count = page_length(size for _, size in sizes[:limit])
    return (count, sizes[count - 1][0], sizes[0][0]) if count else (0, end, end)


async def page_from(db: Db, chat_id: str, limit: int, offset: int, at: str | None) -> tuple[int, int, int]:
    """How many messages the page from index ``offset`` (or message ``at``) holds, and its first and last ``n``.

    Raises:
        BadCursor: ``at`` is not a message of this chat.
    """
    start = -1
    if at is not None:
        found = await db.fetchrow("SELECT n FROM messages WHERE id = ? AND chat_id = ?", at, chat_id)
        start, offset = message_position(found, "at"), 0
    sizes = await db.fetch(
        "SELECT n, length(content) + length(reasoning) FROM messages WHERE chat_id = ? AND n >= ?"
        " ORDER BY n LIMIT ? OFFSET ?",
        chat_id, start, limit, offset,
    )  # fmt: skip
    count = page_length(size for _, size in sizes)
    return (count, sizes[0][0], sizes[count - 1][0]) if count else (0, END_OF_CHAT, END_OF_CHAT)


async def page_messages(db: Db, chat_id: str, first: int, last: int) -> list[StoredMessage]:
    """The messages of a chat from ``n`` ``first`` to ``last``, with their files (a streaming one: its chunks)."""
    rows = await db.fetch(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE chat_id = ? AND n >= ? AND n <= ? ORDER BY n",
        chat_id, first, last,
    )  # fmt: skip
    messages = []
    for row in rows:
        id_, _, content, status, seq = row[:5]
        reasoning = row[-1]
        if status == "streaming":
            content, reasoning, seq = await streamed_so_far(db, id_)
        messages.append(message_of(row, content, seq, reasoning))
    marks = ", ".join("?" * len(messages))
    chips = await db.fetch(
        "SELECT message_id, name, media_type, size FROM attachments WHERE chat_id = ?"
        f" AND message_id IN ({marks}) ORDER BY message_id, position",
        chat_id, *(message.id for message in messages),
    )  # fmt: skip
    return with_attachments(messages, chips)
