"""What both stores share: ids, chat titles, times and the chat list's page cursor."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

from mfu_tui.server.store.base import BadCursor

TITLE_WORDS = 8
TITLE_CHARS = 60


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
    """The ``before`` cursor after chat ``row`` (its id and, third, its ``updated_at``)."""
    raw = f"{row[2]!r}|{row[0]}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_cursor(cursor: str) -> tuple[float, str]:
    """``(updated_at, chat_id)`` of a cursor from ``page_cursor``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        updated_at, chat_id = raw.split("|", 1)
        return float(updated_at), chat_id
    except ValueError:
        raise BadCursor("'before' is not a cursor from an earlier page") from None
