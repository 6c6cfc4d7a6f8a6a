"""Where a streamed Markdown answer is cut into parts, each drawn on its own.

Drawing an answer whole at each chunk would get slower with every chunk,
so an answer is cut into parts of a few thousand characters (``Part``),
preferably where the cut cannot change the rendering: at a blank line
outside a code fence. Only the last part grows and is drawn again as the
answer streams (``AnswerBody``). A paragraph that never ends (a model can
write one of any length) may also be cut at a line break or a space, and a
code block that never ends at a line break of its code: the part before
closes the block and the next part opens it again with the same fence line,
so a long code block costs what as much prose costs. ``ParagraphBreaks``
follows the stream to know where those places are, in time proportional to
each chunk, not to the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

_FENCES = ("```", "~~~")

#: Characters of a line kept to recognise a fence and its info string (the language).
_HEAD = 64


@dataclass(frozen=True)
class Cuts:
    """Where a piece of text may be cut, as offsets into it (the cut goes just before).

    Each is the last such place in the piece, or ``None`` if it has none.
    """

    paragraph: int | None
    """After a blank line outside a code fence, not after a list's line: a blank line may part a list's
    items (a loose list), which Rich draws as one list without it, and two lists cut apart with it."""
    line: int | None
    """After a line break outside a code fence."""
    space: int | None
    """After a space of the last, unfinished line, outside a code fence and not on its opening line."""
    code_line: int | None = None
    """After a line break inside a code fence, past its opening line (the fence still open at the piece's end)."""


@dataclass(frozen=True)
class Cut:
    """Where the current segment ends, in the piece just taken."""

    at: int
    """The offset in the piece: the segment ends just before it."""
    fence: str | None = None
    """The opening line of the code block the cut is inside, if it is: closed before, opened again after."""
    between_blocks: bool = False
    """True at a blank line: the next segment begins a block of its own (not at a cut inside a paragraph)."""


@dataclass(frozen=True)
class Part:
    """A segment of an answer: its text, and the code block cut at either end, if any."""

    text: str
    """The part of the answer's text."""
    opens: str | None = None
    """The fence line of a code block that began in the part before (opened again here)."""
    closes: str | None = None
    """The fence line of a code block that goes on in the next part (closed here)."""
    gap_above: bool = False
    """True if the answer drawn whole has a blank line above this part: it begins a block after a blank
    line, and the block before is not a horizontal rule (Rich draws a rule with its blank line below it)."""

    @property
    def markdown(self) -> str:
        """What is drawn: the text, with a code block cut at either end opened or closed again."""
        start = f"{self.opens}\n" if self.opens else ""
        end = f"{closing_fence(self.closes)}\n" if self.closes else ""
        return start + self.text + end


#: A thematic break (a horizontal rule) alone on its line.
_RULE = re.compile(r" {0,3}([-*_])[ \t]*(?:\1[ \t]*){2,}")

#: A fence line, opening or closing a code block.
_FENCE_LINE = re.compile(r"^ {0,3}(`{3,}|~{3,})", re.MULTILINE)


def without_empty_open_fence(markdown: str) -> str:
    """``markdown`` without a code block it opened at its very end and never wrote into.

    An answer stopped just after its fence would show an empty code block:
    lines of nothing before ``cancelled``. Only what is drawn changes; the
    text (copy, export) stays as stored.
    """
    fences = list(_FENCE_LINE.finditer(markdown))
    if len(fences) % 2 and not markdown[fences[-1].end() :].partition("\n")[2].strip():
        return markdown[: fences[-1].start()].rstrip() + "\n"
    return markdown


def ends_with_rule(markdown: str) -> bool:
    """True if the last block of ``markdown`` is a horizontal rule: a line of its own after a blank line."""
    last_block = markdown.rstrip("\n").rpartition("\n\n")[2]
    return "\n" not in last_block and _RULE.fullmatch(last_block) is not None


def closing_fence(opening: str) -> str:
    """The line that closes the code block opened by the fence line ``opening``."""
    marker = opening.lstrip(" ")
    return marker[: len(marker) - len(marker.lstrip(marker[0]))]


#: A line that goes on with a list: an item, or indented under one.
_LIST_LINE = re.compile(r"[ \t]|[-*+][ \t]|\d{1,9}[.)][ \t]")


class ParagraphBreaks:
    """Follows streamed Markdown; says where the text may be cut outside code."""

    def __init__(self, text: str = "") -> None:
        self.fence: str | None = None
        """The opening line of the fenced code block the text is in (at most ``_HEAD`` characters), if it is."""
        self._line_head = ""
        self._in_list = False
        """True after a line of a list (an item, or a line indented under one), until a line of another block."""
        self.feed(text)

    @property
    def in_fence(self) -> bool:
        """True inside a fenced code block."""
        return self.fence is not None

    def feed(self, delta: str) -> Cuts:
        """Take the next piece of the text; return where it may be cut."""
        paragraph = line = space = code_line = None
        start = 0
        while (end := delta.find("\n", start)) >= 0:
            complete = delta[start:end]
            blank = not self._line_head and not complete
            start_of_line = self._line_head + complete[:_HEAD]
            head = start_of_line.strip(" ")
            opened = False
            if head.startswith(_FENCES):
                opened = self.fence is None
                self.fence = head if opened else None
            self._line_head = ""
            start = end + 1
            if not self.in_fence:
                line = start
                if blank and not self._in_list:
                    paragraph = start
                elif not blank:  # a rule of "* * *" or "- - -" is not a list's line
                    self._in_list = bool(_LIST_LINE.match(start_of_line)) and not _RULE.fullmatch(start_of_line)
            elif not opened:
                code_line = start
        rest = delta[start:]
        if len(self._line_head) < _HEAD:
            self._line_head += rest[:_HEAD]
        if not self.in_fence and not self._line_head.lstrip(" ").startswith(_FENCES):
            last_space = rest.rfind(" ")
            if last_space >= 0:
                space = start + last_space + 1
        return Cuts(paragraph, line, space, code_line)


#: A segment this many times the segment size is cut even inside a paragraph.
OVERLONG = 4


def split_tail(tail: Part) -> list[Part]:
    """``tail`` as pieces to draw one under the other: what is finished, then what still grows.

    The tail of a streaming answer is drawn again at each chunk. Its blocks
    up to its last blank line (outside code and lists, ``Cuts.paragraph``)
    no longer change, nor do the finished lines of a code block still open
    at its end: only the last block, or the code block's last line, is drawn
    again. Drawn one under the other the pieces show what the tail drawn
    whole shows, as parts cut there do (``Part.gap_above``, ``PartCodeBlock``);
    but the code's last line is highlighted without the lines before it
    (within a string over several lines, for instance) until it is finished.

    Returns:
        The finished pieces (none, one or two), then the rest.
    """
    breaks = ParagraphBreaks(f"{tail.opens}\n" if tail.opens else "")
    cuts = breaks.feed(tail.text)
    pieces = []
    rest, at = tail, 0  # what is left, from ``at`` in the tail's text
    if cuts.paragraph:
        pieces.append(replace(tail, text=tail.text[: cuts.paragraph]))
        rest, at = Part(tail.text[cuts.paragraph :], gap_above=not ends_with_rule(pieces[-1].text)), cuts.paragraph
    # Not before a last line of nothing but spaces: a block opened and not written into is not drawn (see
    # ``without_empty_open_fence``), but the tail drawn whole has that line and the padding under the code.
    code = cuts.code_line
    if breaks.fence is not None and code is not None and at < code and tail.text[code:].strip():
        pieces.append(replace(rest, text=tail.text[at:code], closes=breaks.fence))
        rest = Part(tail.text[code:], opens=breaks.fence)
    return [*pieces, rest]


class SegmentCutter:
    """Follows an answer piece by piece; says where its current segment should end.

    A segment ends once it holds ``size`` characters at the last paragraph
    break of a piece (outside code fences) or, in a code block still open at
    the piece's end, at its last line break; or, once it holds ``OVERLONG *
    size``, at the piece's last line break or else its last space (a
    paragraph that never ends: a cut there shows, so it is rare).
    """

    def __init__(self) -> None:
        self._breaks = ParagraphBreaks()
        self._chars = 0

    def cut(self, piece: str, size: int) -> Cut | None:
        """Take the next piece; return where in it the current segment ends, if it does."""
        cuts = self._breaks.feed(piece)
        total = self._chars + len(piece)
        cut = None
        if total >= size and cuts.paragraph is not None:
            cut = Cut(cuts.paragraph, between_blocks=True)
        elif total >= size and cuts.code_line is not None and (cuts.line is None or cuts.code_line > cuts.line):
            # The last line break is in code: the fence open at the end of the piece is the one cut. The
            # parts of a code block are drawn as one block (``PartCodeBlock``), so it is cut as prose is.
            cut = Cut(cuts.code_line, self._breaks.fence)
        elif total >= OVERLONG * size:
            if (at := cuts.line if cuts.line is not None else cuts.space) is not None:
                cut = Cut(at)
        self._chars = total if cut is None else len(piece) - cut.at
        return cut

    def split(self, text: str, size: int, tail: Part = Part("")) -> list[Part]:
        """Take more of an answer: ``text``, which goes on from ``tail`` (nothing at the answer's start).

        Returns the parts ``text`` finishes, the first of them beginning with
        ``tail``'s text, then the part left open, which may still grow: the
        last. ``text`` is read in pieces of ``size``, the last a whole one, so
        that little is left open after a large batch of a stream; a whole text
        is cut as a stream of it would be.
        """
        parts = [tail]
        for start in range((len(text) % size or size) - size, len(text), size):
            piece = text[max(0, start) : start + size]
            cut = self.cut(piece, size)
            last = parts[-1]
            if cut is None:
                parts[-1] = replace(last, text=last.text + piece)
            else:
                finished = last.text + piece[: cut.at]
                parts[-1] = replace(last, text=finished, closes=cut.fence)
                gap = cut.between_blocks and not ends_with_rule(finished)
                parts.append(Part(piece[cut.at :], cut.fence, gap_above=gap))
        return parts
