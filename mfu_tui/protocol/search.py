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
#: Characters of a snippet before its first match, at most; and of the whole snippet.
SNIPPET_LEAD = 40
SNIPPET_CHARS = 160

_SPACE = re.compile(r"\s")


def matches(text: str, words: list[str]) -> bool:
    """True if ``text`` holds every one of ``words`` (the last as a prefix too), as a store's index matches."""
    if not words:
        return False
    found = {text[start:end].lower() for start, end in matching_spans(text, words)}
    return all(word in found for word in words[:-1]) and any(word.startswith(words[-1]) for word in found)


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
