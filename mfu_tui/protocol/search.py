"""The words of a ``search`` query, and where they match in a text.

A query is taken as plain words, never as the database's query syntax: the
words are the runs of letters and digits, so ``"``, ``*``, ``-``, ``(`` and
``:`` only separate them, and ``AND``, ``OR``, ``NOT`` and ``NEAR`` are words
like any other. Each store quotes them into its own syntax (FTS5, tsquery).
A message matches when it holds every word, whole, ignoring case; the last
word also matches as the start of a longer one, so results can follow the
user's typing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

#: A word: a run of letters and digits (``_`` separates words, as in both databases).
WORD = re.compile(r"[^\W_]+")


def search_words(query: str) -> list[str]:
    """The words of ``query``, lower-cased, in order; empty if it has none."""
    return [word.lower() for word in WORD.findall(query)]


def matching_spans(text: str, words: list[str]) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of every word of ``text`` that matches one of ``words``, in order.

    Args:
        text: Any text.
        words: From ``search_words``: the last one also matches as a prefix.
    """
    if not words:
        return
    whole, last = set(words[:-1]), words[-1]
    for match in WORD.finditer(text):
        word = match.group().lower()
        if word in whole or word.startswith(last):
            yield match.span()
