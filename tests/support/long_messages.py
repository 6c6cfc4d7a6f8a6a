"""A message too long for one frame, stored in a moment: written to the store before the server opens it."""

from __future__ import annotations

from pathlib import Path

from mfu_tui.protocol import MESSAGE_TEXT_PART_CHARS, SENT_MESSAGE_CHARS
from mfu_tui.server.store import SqliteStore

#: Past the cut of ``get_chat`` by one part and a little: the rest comes in two parts.
LONG_CHARS = SENT_MESSAGE_CHARS + MESSAGE_TEXT_PART_CHARS + 10


def answer_body(chars: int = LONG_CHARS) -> str:
    """Numbered lines of ``chars`` characters in all, so a piece out of place or twice shows.

    A four-byte character sits on each edge of a part (characters are code points, not bytes
    nor UTF-16 units), and an escape character in the rest (it is stripped before showing).
    """
    lines = "".join(f"{n:09d}\n" for n in range(chars // 10 + 1))
    text = list(lines[:chars])
    for edge in (SENT_MESSAGE_CHARS - 1, SENT_MESSAGE_CHARS, SENT_MESSAGE_CHARS + MESSAGE_TEXT_PART_CHARS):
        text[edge] = "\N{CRAB}"
    text[SENT_MESSAGE_CHARS + 5] = "\x1b"
    text[-1] = "\n"
    return "".join(text) + "the last line"


async def store_answer_body(db_path: Path, text: str, user: str = "alice") -> tuple[str, str]:
    """A chat of ``user`` whose answer is ``text``, in the SQLite store at ``db_path``: its id and the answer's."""
    store = SqliteStore(db_path)
    await store.open()
    try:
        exchange = await store.record_message(user, None, "write a lot", "seeded", None)
        assert exchange is not None
        await store.finish_message(exchange.reply_id, text, "complete", "stop", 1)
        return exchange.chat.id, exchange.reply_id
    finally:
        await store.close()
