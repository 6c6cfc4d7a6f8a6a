"""What both stores share for ``search``: the query in each database's syntax, snippets, hits.

The words come from ``protocol.search_words``, so they hold letters and
digits only; they are quoted all the same, so that no word can ever be read
as an operator. Snippets and their highlights are made here, in Python,
from the message's text, not by the database (FTS5's ``snippet()`` and
PostgreSQL's ``ts_headline`` mark matches with markup inside the text).
"""

from __future__ import annotations

import re
from typing import Any

from mfu_tui.protocol import SearchHit, matching_spans
from mfu_tui.server.store.rows import to_datetime

#: Characters of each message that are indexed (and read back for its snippet): the
#: literal ``100000`` of the stores' schemas. A PostgreSQL ``tsvector`` holds at most
#: 1 MiB; the words of 100,000 characters stay well under it, whatever they are.
INDEXED_CHARS = 100_000
#: Characters of a snippet before its first match, at most; and of the whole snippet.
SNIPPET_LEAD = 40
SNIPPET_CHARS = 160

_SPACE = re.compile(r"\s")


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


def snippet(text: str, words: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """A one-line piece of ``text`` around its first match, and the matches in it.

    Cut at spaces where it can be, ``…`` marking a cut. A message that the
    database matched in a way these words do not (its tokenizer differs in
    rare cases) gets its start, with no highlight.
    """
    first = next(matching_spans(text, words), (0, 0))[0]
    start = max(0, first - SNIPPET_LEAD)
    if start > 0:
        after_space = _SPACE.search(text, start, first)
        start = after_space.end() if after_space else first
    end = min(len(text), start + SNIPPET_CHARS)
    if end < len(text):
        last_space = max((m.start() for m in _SPACE.finditer(text, first, end)), default=first)
        end = last_space if last_space > first else end
    piece = ("…" if start > 0 else "") + " ".join(text[start:end].split()) + ("…" if end < len(text) else "")
    return piece, list(matching_spans(piece, words))


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
