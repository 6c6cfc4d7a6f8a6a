"""A SQLite store of many messages for search, filled in seconds: the bench's and the end-to-end test's.

The rows go straight into the store's own tables (the schema ``mfu-chat
migrate`` makes) in one transaction, with the full-text index and its
triggers dropped, as in a database from before search; ``index`` then
builds the index with the store's own migration step, so what is searched
is the real FTS5 index the server keeps. Row by row through the triggers,
100,000 messages take several times as long.

Messages are ``words`` words each, drawn from a vocabulary of ``w0``,
``w1``... with a Zipf-like skew, in chats of 100 messages; every tenth chat
is another user's. One message of ``USER``'s holds ``RARE``, a word in no
other.
"""

from __future__ import annotations

import itertools
import random
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from mfu_tui.server.store.sqlite import MIGRATIONS, migrate_file

USER, OTHER = "alice", "bob"
#: The word in one message only.
RARE = "xylophonist"
#: Messages of a chat.
CHAT_SIZE = 100
#: The store's migration that indexes the messages stored before search (SQLite schema version 4).
INDEX_MIGRATION = dict(MIGRATIONS)[4]


@dataclass(frozen=True)
class Needle:
    """The one message that holds ``RARE``."""

    chat_id: str
    chat_title: str
    message_id: str
    content: str
    #: Messages after it in its chat.
    later: int


def owner_of(chat: int) -> str:
    """Whose chat number ``chat`` is: every tenth is ``OTHER``'s."""
    return OTHER if chat % 10 == 9 else USER


def fill(path: Path, messages: int, *, words: int = 40, vocabulary: int = 5000, seed: int = 1) -> Needle:
    """Write ``messages`` messages into a new store at ``path``, unindexed (``index`` indexes them).

    Args:
        path: The store's SQLite file (made with the store's schema if missing).
        messages: How many, in chats of ``CHAT_SIZE``.
        words: Words of each message.
        vocabulary: Distinct words (``w0`` is the commonest).
        seed: Of the random text and of where the needle goes.

    Returns:
        The message that holds ``RARE``: in one of ``USER``'s chats.
    """
    migrate_file(path)
    rng = random.Random(seed)
    names = [f"w{rank}" for rank in range(vocabulary)]
    skew = list(itertools.accumulate(1 / (rank + 1) for rank in range(vocabulary)))
    chats = (messages + CHAT_SIZE - 1) // CHAT_SIZE
    needle_chat = rng.randrange(chats)
    if owner_of(needle_chat) != USER:
        needle_chat -= 1  # the chat before another user's is USER's
    needle = min(needle_chat * CHAT_SIZE + rng.randrange(CHAT_SIZE), messages - 1)
    # A second apart, the newest now; a chat was last updated by its last message.
    start = time.time() - messages
    contents = [" ".join(rng.choices(names, cum_weights=skew, k=words)) for _ in range(messages)]
    contents[needle] += f" {RARE}"
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous=OFF")  # a throwaway file: durability buys nothing here
        db.executescript(
            "DROP TRIGGER message_search_insert; DROP TRIGGER message_search_delete;"
            " DROP TRIGGER message_search_update; DROP TABLE message_search; BEGIN;"
        )
        db.executemany(
            "INSERT INTO chats (id, owner, title, created_at, updated_at, message_count) VALUES (?, ?, ?, ?, ?, ?)",
            (
                (
                    f"c{chat}",
                    owner_of(chat),
                    f"chat {chat}",
                    start + chat * CHAT_SIZE,
                    start + min((chat + 1) * CHAT_SIZE, messages) - 1,
                    min(CHAT_SIZE, messages - chat * CHAT_SIZE),
                )
                for chat in range(chats)
            ),
        )
        db.executemany(
            "INSERT INTO messages (id, chat_id, owner, role, content, status, created_at)"
            " VALUES (?, ?, ?, ?, ?, 'complete', ?)",
            (
                (f"m{n}", f"c{n // CHAT_SIZE}", owner_of(n // CHAT_SIZE), ("user", "assistant")[n % 2], text, start + n)
                for n, text in enumerate(contents)
            ),
        )
        db.execute("COMMIT")
    finally:
        db.close()
    return Needle(
        chat_id=f"c{needle_chat}",
        chat_title=f"chat {needle_chat}",
        message_id=f"m{needle}",
        content=contents[needle],
        later=min((needle_chat + 1) * CHAT_SIZE, messages) - 1 - needle,
    )


def index(path: Path) -> None:
    """Index every message of a store ``fill`` wrote, as the store's migration indexes an older database.

    The store's schema, applied again, makes the index and its triggers
    anew; the migration's own statement then fills the index.
    """
    migrate_file(path)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.executescript(f"BEGIN; {INDEX_MIGRATION}; COMMIT;")
    finally:
        db.close()
