"""Long chats stored in a moment: written to the store directly, before the server opens it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from mfu_tui.protocol import ImportChat, ImportedMessage
from mfu_tui.server.store import SqliteStore

WHEN = datetime(2026, 12, 1, tzinfo=UTC)


def long_text(n: int) -> str:
    """Message ``n``'s text: a question, or an answer of a few lines."""
    if n % 2 == 0:
        return f"question {n}"
    return f"answer {n}\n\n" + "\n".join(f"- point {k} of answer {n}" for k in range(3))


async def store_long_chat(db_path: Path, messages: int, user: str = "alice") -> str:
    """A chat of ``messages`` messages for ``user`` in the SQLite store at ``db_path``; its id."""
    store = SqliteStore(db_path)
    await store.open()
    try:
        entries = [
            ImportedMessage(role="user" if n % 2 == 0 else "assistant", content=long_text(n)) for n in range(messages)
        ]
        part = ImportChat(
            request_id="r1",
            import_key="bench:long",
            title="A long chat",
            created_at=WHEN,
            updated_at=WHEN,
            first=0,
            total=messages,
            messages=entries,
        )
        imported = await store.import_chat(user, part)
        return imported.chat.id
    finally:
        await store.close()
