"""What both stores share for ``search``: the query in each database's syntax, snippets, hits.

The words come from ``protocol.search_words``, so they hold letters and
digits only; they are quoted all the same, so that no word can ever be read
as an operator. Snippets and their highlights are made here, in Python,
from the message's text, not by the database (FTS5's ``snippet()`` and
PostgreSQL's ``ts_headline`` mark matches with markup inside the text).
"""

from __future__ import annotations

from typing import Any

from mfu_tui.protocol import SearchHit, snippet
from mfu_tui.server.store.rows import to_datetime

#: Characters of each message that are indexed (and read back for its snippet): the
#: literal ``100000`` of the stores' schemas. A PostgreSQL ``tsvector`` holds at most
#: 1 MiB; the words of 100,000 characters stay well under it, whatever they are.
INDEXED_CHARS = 100_000


def fts5_query(words: list[str]) -> str:
    """An FTS5 ``MATCH`` expression: every word, quoted; the last one as a prefix too."""
    quoted = ['"' + word.replace('"', '""') + '"' for word in words]
    quoted[-1] += "*"
    return " ".join(quoted)


def tsquery(words: list[str]) -> str:
    """A PostgreSQL ``to_tsquery`` text: every word, quoted; the last one as a prefix too."""
    quoted = ["'" + word.replace("\\", "\\\\").replace("'", "''") + "'" for word in words]
    quoted[-1] += ":*"
    return " & ".join(quoted)


def hit_of(row: Any, words: list[str]) -> SearchHit:
    """A row (message id, chat id, chat title, role, text, created_at) as a ``SearchHit``."""
    message_id, chat_id, title, role, text, created_at = row
    piece, highlights = snippet(text, words)
    return SearchHit(
        chat_id=chat_id,
        chat_title=title,
        message_id=message_id,
        role=role,
        snippet=piece,
        highlights=highlights,
        created_at=to_datetime(created_at),
    )
