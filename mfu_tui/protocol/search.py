"""The words of a ``search`` query, and where they match in a text.

A query is taken as plain words, never as the database's query syntax: the
words are the runs of letters and digits, so ``"``, ``*``, ``-``, ``(`` and
``:`` only separate them, and ``AND``, ``OR``, ``NOT`` and ``NEAR`` are words
like any other. Each store quotes them into its own syntax (FTS5, tsquery).
A message matches when it holds every word, whole, ignoring case; the last
word also matches as the start of a longer one, so results can follow the
user's typing.

A hit's snippet is plain text: messages are Markdown (answers nearly
always), and a line of a search result reading ``## Setup > - run it`` shows
the syntax instead of the words. ``snippet`` reads the part of the message
around its first match as text: heading and quote marks, list bullets,
fences, rules and table borders gone, a link's text without its address,
emphasis without its stars; the lines of a code block kept as written.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

#: A word: a run of letters and digits (``_`` separates words, as in both databases).
WORD = re.compile(r"[^\W_]+")
#: Characters of a snippet before its first match, at most; and of the whole snippet.
SNIPPET_LEAD = 40
SNIPPET_CHARS = 160
#: What stands between two blocks of a message (paragraphs, list items, headings, lines of code) in a snippet.
BLOCKS_APART = " · "

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
    """A one-line piece of ``text`` around its first match, as plain text, and the matches in it.

    Cut at spaces where it can be, ``…`` marking a cut. A message that the
    database matched in a way these words do not (its tokenizer differs in
    rare cases, or the words are only in what is not shown: a link's address,
    a code fence's language) gets its start, with no highlight.
    """
    first = next((start for start, _ in matching_spans(text, words) if not _on_fence_line(text, start)), 0)
    # The Markdown around the match, read as text: enough of it for the snippet once its syntax is gone.
    window_start, window_end = max(0, first - _WINDOW_BEFORE), min(len(text), first + _WINDOW_AFTER)
    line_start = text.rfind("\n", 0, window_start) + 1 if window_start else 0
    at_line_start = window_start - line_start <= _WINDOW_BEFORE  # else the window begins inside a long line
    if at_line_start:
        window_start = line_start
    in_code = len(_FENCE_LINE.findall(text, 0, window_start)) % 2 == 1
    plain = _plain(text[window_start:window_end], in_code=in_code, at_line_start=at_line_start)
    first = next(matching_spans(plain, words), (0, 0))[0]
    start = max(0, first - SNIPPET_LEAD)
    if start > 0:
        after_space = _SPACE.search(plain, start, first)
        start = after_space.end() if after_space else first
    end = min(len(plain), start + SNIPPET_CHARS)
    if end < len(plain):
        last_space = max((m.start() for m in _SPACE.finditer(plain, first, end)), default=first)
        end = last_space if last_space > first else end
    cut_before = start > 0 or window_start > 0
    cut_after = end < len(plain) or window_end < len(text)
    shown = " ".join(plain[start:end].split()).strip(BLOCKS_APART)  # no separator left at a cut
    piece = ("…" if cut_before else "") + shown + ("…" if cut_after else "")
    return piece, list(matching_spans(piece, words))


#: Characters of Markdown read before and after the first match: the snippet's worth and what syntax takes.
_WINDOW_BEFORE = 4 * SNIPPET_LEAD
_WINDOW_AFTER = 4 * SNIPPET_CHARS

#: A code fence line (``` or ~~~): it opens or closes a block whose lines are code, kept as written.
_FENCE_LINE = re.compile(r"^[ \t]{0,3}(?:`{3,}|~{3,})", re.MULTILINE)
#: Lines that are only syntax: a thematic break, a setext underline, a table's header rule.
_SYNTAX_LINE = re.compile(
    r"[ \t]{0,3}(?:([-*_])(?:[ \t]*\1){2,}|=+)[ \t]*|[ \t]*\|?(?:[ \t]*:?-+:?[ \t]*\|)+[ \t]*(?::?-+:?)?[ \t]*"
)
#: The marks a line starts with: quote marks, a heading's, a list item's bullet or number, a task box.
_LINE_MARKS = re.compile(
    r"[ \t]*(?:(?:>|#{1,6}(?=[ \t]|$)|[-*+](?=[ \t])|\d{1,9}[.)](?=[ \t]))[ \t]*)+(?:\[[ xX]\][ \t]+)?"
)
#: An inline code span: its text is kept as written.
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
#: Inline syntax and what is kept of it, in order: links and images (their text), autolinks (the
#: address), strong, emphasis and struck text (the text), backslash escapes (the character).
_INLINE = (
    (re.compile(r"!?\[([^\]\n]*)\]\([^)\n]*\)"), r"\1"),
    (re.compile(r"<((?:https?|mailto):[^>\s]+)>"), r"\1"),
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=[^\s\\])\1"), r"\2"),
    (re.compile(r"(?<![\w*\\])\*(?=[^\s*])(.+?)(?<=[^\s\\])\*(?![\w*])"), r"\1"),
    (re.compile(r"(?<![\w\\])_(?=[^\s_])(.+?)(?<=[^\s\\])_(?!\w)"), r"\1"),
    (re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"), r"\1"),
    (re.compile(r"\\([!-/:-@\[-`{-~])"), r"\1"),
)


def _on_fence_line(text: str, at: int) -> bool:
    """Whether ``text[at]`` is on a code fence's line (its language, which ``_plain`` drops)."""
    return _FENCE_LINE.match(text, text.rfind("\n", 0, at) + 1) is not None


def _plain(markdown: str, *, in_code: bool, at_line_start: bool) -> str:
    """``markdown`` as the text it shows, its blocks apart (``BLOCKS_APART``); not a full CommonMark reading.

    Args:
        markdown: Whole lines of Markdown, except perhaps the first (see ``at_line_start``).
        in_code: Whether it begins inside a fenced code block.
        at_line_start: Whether its first line is a whole line (its marks are marks), not the end of one.
    """
    text: list[str] = []
    new_block = False
    for number, line in enumerate(markdown.split("\n")):
        whole = number > 0 or at_line_start
        if _FENCE_LINE.match(line):
            in_code, new_block = not in_code, True
            continue
        if not in_code and (not line.strip() or whole and _SYNTAX_LINE.fullmatch(line)):
            new_block = True
            continue
        marks = _LINE_MARKS.match(line) if whole and not in_code else None
        if marks is not None:
            line = line[marks.end() :]
        table_row = whole and not in_code and line.startswith("|")
        # Each line of code, item, heading or table row is a block: in one line, they would run together.
        if text and (new_block or in_code or marks is not None or table_row):
            text.append(BLOCKS_APART)
        elif text:
            text.append("\n")
        text.append(line if in_code else _plain_inline(line, table_row=table_row))
        new_block = False
    return "".join(text)


def _plain_inline(line: str, *, table_row: bool) -> str:
    """``line`` without its inline syntax (a table row's borders too); the text of its code spans as written."""
    pieces, at = [], 0
    for span in _CODE_SPAN.finditer(line):
        pieces += [_unmarked(line[at : span.start()], table_row), span.group(2).strip()]
        at = span.end()
    pieces.append(_unmarked(line[at:], table_row))
    return "".join(pieces)


def _unmarked(text: str, table_row: bool) -> str:
    for pattern, kept in _INLINE:
        text = pattern.sub(kept, text)
    return text.replace("|", " ") if table_row else text
