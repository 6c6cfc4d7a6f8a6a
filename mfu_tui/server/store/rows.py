"""What both stores share: ids, chat titles, times, the chat list's page cursor,
the entries of an import part still to store, checking an upload's parts, and
turning rows into protocol records and model turns (both select the same
columns in the same order)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec

from mfu_tui.protocol import (
    SENT_MESSAGE_CHARS,
    AttachmentInfo,
    AttachmentPart,
    ChatParams,
    ChatSettings,
    ChatSummary,
    ImportChat,
    ImportedMessage,
    StoredMessage,
    Usage,
)
from mfu_tui.server.model_input import AttachedFile, ModelTurn
from mfu_tui.server.store.base import (
    AnswerFigures,
    BadCursor,
    ChatChange,
    ImportGap,
    MessageState,
    Upload,
    UploadRefused,
)

TITLE_WORDS = 8
TITLE_CHARS = 60

#: Characters of message text one page of a chat holds (always at least one message).
PAGE_CHARS = 256_000


def make_title(content: str) -> str:
    """A chat title from the first words of its first message."""
    words = content.split()
    title = " ".join(words[:TITLE_WORDS])
    if len(title) > TITLE_CHARS:
        title = title[: TITLE_CHARS - 1].rstrip() + "…"
    elif len(words) > TITLE_WORDS:
        title += "…"
    return title or "New chat"


def to_datetime(timestamp: float) -> datetime:
    """A stored time (seconds since the epoch) as an aware UTC datetime."""
    return datetime.fromtimestamp(timestamp, UTC)


def new_id() -> str:
    """A new id for a chat or a message."""
    return str(uuid.uuid4())


def page_cursor(row: tuple[Any, ...]) -> str:
    """The ``before`` cursor after chat ``row`` (a summary row: id, title, updated_at, ..., pinned sixth).

    It holds the row's place in the list's order, (pinned, updated_at, id), all descending.
    """
    raw = f"{int(row[5])}|{row[2]!r}|{row[0]}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_cursor(cursor: str) -> tuple[bool, float, str]:
    """``(pinned, updated_at, chat_id)`` of a cursor from ``page_cursor``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        pinned, updated_at, chat_id = raw.split("|", 2)
        if pinned not in ("0", "1"):
            raise ValueError(pinned)
        return pinned == "1", float(updated_at), chat_id
    except ValueError:
        raise BadCursor("'before' is not a cursor from an earlier page") from None


def page_length(sizes: Iterable[int]) -> int:
    """How many of a chat's messages make one page of ``chat_detail``.

    Args:
        sizes: The messages' lengths in characters, from the page's first end
            (newest first for a page before a place, oldest first for one from
            a place), as many as the page may hold by count.

    Returns:
        The most that fit in ``PAGE_CHARS`` together, and at least one (if any).
    """
    total = count = 0
    for size in sizes:
        total += min(size, SENT_MESSAGE_CHARS)
        if count and total > PAGE_CHARS:
            break
        count += 1
    return count


#: A message position past any real one: "before the end of the chat".
END_OF_CHAT = 2**63 - 1


def message_position(row: Any, field: str = "before") -> int:
    """The position (``n``) of the message a ``before`` cursor (or ``at``) named, from its row.

    Raises:
        BadCursor: no such message in this chat (``row`` is None).
    """
    if row is None:
        raise BadCursor(f"'{field}' is not a message of this chat")
    return int(row[0])


#: The columns of a chat that ``summary_of`` reads, in its order.
SUMMARY_COLUMNS = "id, title, updated_at, model_id, message_count, pinned, archived"
#: The columns of a chat that ``settings_of`` reads, in its order.
SETTINGS_COLUMNS = "system_prompt, temperature, top_p, max_tokens, seed"


def summary_of(row: Any) -> ChatSummary:
    """A chat row (``SUMMARY_COLUMNS``) as a ``ChatSummary``."""
    id_, title, updated_at, model_id, count, pinned, archived = row
    return ChatSummary(
        id=id_,
        title=title,
        updated_at=to_datetime(updated_at),
        model_id=model_id,
        message_count=count,
        pinned=bool(pinned),
        archived=bool(archived),
    )


def settings_of(row: Any) -> ChatSettings:
    """A chat row (``SETTINGS_COLUMNS``) as ``ChatSettings``."""
    system_prompt, temperature, top_p, max_tokens, seed = row
    params = ChatParams(temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed)
    return ChatSettings(system_prompt=system_prompt, params=params)


def settings_values(settings: ChatSettings) -> tuple[Any, ...]:
    """The values of ``SETTINGS_COLUMNS`` that store ``settings`` (no prompt: NULL, not ``""``)."""
    params = settings.params
    return settings.system_prompt or None, params.temperature, params.top_p, params.max_tokens, params.seed


def changed_columns(change: ChatChange, now: float) -> list[tuple[str, Any]]:
    """``(column, value)`` for each column of a chat that ``change`` sets; a title also sets ``updated_at``."""
    columns: list[tuple[str, Any]] = []
    if change.title is not None:
        columns += [("title", change.title), ("updated_at", now)]
    if change.system_prompt is not None:
        columns.append(("system_prompt", change.system_prompt or None))
    if change.params is not None:
        params = change.params
        columns += [
            ("temperature", params.temperature),
            ("top_p", params.top_p),
            ("max_tokens", params.max_tokens),
            ("seed", params.seed),
        ]
    if change.pinned is not None:
        columns.append(("pinned", change.pinned))
    if change.archived is not None:
        columns.append(("archived", change.archived))
    return columns


#: The columns of a message that ``figures_of`` reads, in its order.
FIGURES_COLUMNS = "prompt_tokens, completion_tokens, first_token_ms, tokens_per_second"
#: The columns of a message that ``message_of`` reads, in its order.
MESSAGE_COLUMNS = (
    "id, role, content, status, seq, finish_reason, model_id, client_message_id, created_at, edited_at, "
    + FIGURES_COLUMNS
    + ", reasoning"
)
#: The columns of a message that ``state_of`` reads, in its order.
STATE_COLUMNS = "id, chat_id, role, status, seq, finish_reason, ended_at, " + FIGURES_COLUMNS


def figures_of(row: Any) -> AnswerFigures:
    """The ``FIGURES_COLUMNS`` of a message row as ``AnswerFigures`` (all NULL: an old row, a user message)."""
    prompt, completion, first_token_ms, rate = row
    usage = None if prompt is None and completion is None else Usage(prompt_tokens=prompt, completion_tokens=completion)
    return AnswerFigures(usage=usage, first_token_ms=first_token_ms, tokens_per_second=rate)


def figures_values(figures: AnswerFigures | None) -> tuple[Any, ...]:
    """The values of ``FIGURES_COLUMNS`` that store ``figures`` (``None``: nothing measured)."""
    figures = figures or AnswerFigures()
    usage = figures.usage or Usage()
    return usage.prompt_tokens, usage.completion_tokens, figures.first_token_ms, figures.tokens_per_second


def state_of(row: Any) -> MessageState:
    """A message row (``STATE_COLUMNS``) as a ``MessageState``."""
    id_, chat_id, role, status, seq, finish, ended_at = row[:7]
    return MessageState(id_, chat_id, role, status, seq, finish, ended_at, figures=figures_of(row[7:]))


def message_of(row: Any, content: str, seq: int, reasoning: str) -> StoredMessage:
    """A message row (``MESSAGE_COLUMNS``) as a ``StoredMessage``; ``content``,
    ``seq`` and ``reasoning`` come from the chunks while it streams."""
    id_, role, _, status, _, finish, model, client_id, created, edited = row[:10]
    figures = figures_of(row[10:14])
    return StoredMessage(
        id=id_,
        role=role,
        content=content[:SENT_MESSAGE_CHARS],
        created_at=to_datetime(created),
        status=status,
        seq=seq,
        model_id=model,
        client_message_id=client_id,
        edited_at=to_datetime(edited) if edited is not None else None,
        finish_reason=finish,
        truncated=len(content) > SENT_MESSAGE_CHARS,
        usage=figures.usage,
        first_token_ms=figures.first_token_ms,
        tokens_per_second=figures.tokens_per_second,
        reasoning=reasoning[:SENT_MESSAGE_CHARS],
    )


def new_entries(part: ImportChat, stored: int) -> list[ImportedMessage]:
    """The entries of ``part`` not stored yet, when its conversation has ``stored`` of them.

    Raises:
        ImportGap: the part starts past them: the entries between were never sent.
    """
    if part.first > stored:
        raise ImportGap(
            f"'first' is {part.first} but {stored} messages of this conversation are stored: send those before"
        )
    return part.messages[stored - part.first :]


def imported_finish_reason(role: str) -> str | None:
    """An imported answer ended as answers do; a user message has no finish reason."""
    return "stop" if role == "assistant" else None


#: The columns of an upload that ``upload_of`` reads, in its order.
UPLOAD_COLUMNS = "client_attachment_id, name, media_type, size, received, message_id IS NOT NULL"


def upload_of(row: Any) -> Upload:
    """An attachment row (``UPLOAD_COLUMNS``) as an ``Upload``."""
    key, name, media_type, size, received, sent = row
    return Upload(key, name, media_type, size, received, bool(sent))


def check_same_upload(upload: Upload, part: AttachmentPart) -> None:
    """Refuse a part whose file is not the one its upload started with.

    Raises:
        UploadRefused: its name, media type or size differ from the first part's.
    """
    if (upload.name, upload.media_type, upload.size) != (part.name, part.media_type, part.size):
        raise UploadRefused(
            f"attachment {part.client_attachment_id!r} was started as {upload.name!r} ({upload.media_type},"
            f" {upload.size} bytes): a part must carry the same name, mediaType and size"
        )


def turns_of(rows: list[Any], file_rows: list[Any]) -> list[ModelTurn]:
    """Message rows (id, role, content) and their files' rows (message_id, name, media_type, data of one
    part or None), both in order, as the turns sent to the model."""
    files: dict[str, list[tuple[str, str, list[bytes]]]] = {}
    last: tuple[str, int] | None = None
    for message_id, position, name, media_type, data in file_rows:
        if (message_id, position) != last:
            files.setdefault(message_id, []).append((name, media_type, []))
            last = (message_id, position)
        if data is not None:
            files[message_id][-1][2].append(bytes(data))
    return [
        ModelTurn(
            role=role,
            content=content,
            attachments=tuple(AttachedFile(name, kind, b"".join(parts)) for name, kind, parts in files.get(id_, [])),
        )
        for id_, role, content in rows
    ]


def with_attachments(messages: list[StoredMessage], rows: list[Any]) -> list[StoredMessage]:
    """Messages with their files' chips, from rows (message_id, name, media_type, size) in order."""
    chips: dict[str, list[AttachmentInfo]] = {}
    for message_id, name, media_type, size in rows:
        chips.setdefault(message_id, []).append(AttachmentInfo(name=name, media_type=media_type, size=size))
    return [
        msgspec.structs.replace(message, attachments=chips[message.id]) if message.id in chips else message
        for message in messages
    ]
