"""Where a streamed Markdown answer may be cut into separate widgets.

Textual's ``Markdown.append`` re-reads the whole document it holds, so one
widget fed a long answer gets slower with every chunk. The message view
therefore starts a fresh Markdown widget once the current one holds enough
text, preferably where the cut cannot change the rendering much: at a blank
line outside a code fence. A paragraph that never ends (a model can write
one of any length) may also be cut at a line break or a space, never inside
a code fence. ``ParagraphBreaks`` follows the stream to know where those
places are, in time proportional to each chunk, not to the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

_FENCES = ("```", "~~~")


@dataclass(frozen=True)
class Cuts:
    """Where a piece of text may be cut, as offsets into it (the cut goes just before).

    Each is the last such place in the piece, or ``None`` if it has none.
    """

    paragraph: int | None
    """After a blank line outside a code fence."""
    line: int | None
    """After a line break outside a code fence."""
    space: int | None
    """After a space of the last, unfinished line, outside a code fence and not on its opening line."""


class ParagraphBreaks:
    """Follows streamed Markdown; says where the text may be cut outside code."""

    def __init__(self, text: str = "") -> None:
        self.in_fence = False
        """True inside a fenced code block."""
        self._line_head = ""
        self.feed(text)

    def feed(self, delta: str) -> Cuts:
        """Take the next piece of the text; return where it may be cut."""
        paragraph = line = space = None
        start = 0
        while (end := delta.find("\n", start)) >= 0:
            complete = delta[start:end]
            blank = not self._line_head and not complete
            head = (self._line_head + complete[:8]).lstrip(" ")
            if head.startswith(_FENCES):
                self.in_fence = not self.in_fence
            self._line_head = ""
            start = end + 1
            if not self.in_fence:
                line = start
                if blank:
                    paragraph = start
        rest = delta[start:]
        if len(self._line_head) < 8:
            self._line_head += rest[:8]
        if not self.in_fence and not self._line_head.lstrip(" ").startswith(_FENCES):
            last_space = rest.rfind(" ")
            if last_space >= 0:
                space = start + last_space + 1
        return Cuts(paragraph, line, space)


#: A segment this many times the segment size is cut even inside a paragraph.
OVERLONG = 4


class SegmentCutter:
    """Follows an answer piece by piece; says where its current segment should end.

    A segment ends at the last paragraph break of a piece once it holds
    ``size`` characters, or, once it holds ``OVERLONG * size``, at the
    piece's last line break or space (all outside code fences).
    """

    def __init__(self) -> None:
        self._breaks = ParagraphBreaks()
        self._chars = 0

    def cut(self, piece: str, size: int) -> int | None:
        """Take the next piece; return where in it the current segment ends, if it does."""
        cuts = self._breaks.feed(piece)
        total = self._chars + len(piece)
        cut = None
        if total >= size:
            cut = cuts.paragraph
            if cut is None and total >= OVERLONG * size:
                cut = cuts.line if cuts.line is not None else cuts.space
        self._chars = total if cut is None else len(piece) - cut
        return cut

    def split(self, text: str, size: int) -> list[str]:
        """Take a whole text; return its segments, cut as a stream of it would be."""
        parts = [""]
        for start in range(0, len(text), size):
            piece = text[start : start + size]
            cut = self.cut(piece, size)
            if cut is None:
                parts[-1] += piece
            else:
                parts[-1] += piece[:cut]
                parts.append(piece[cut:])
        return parts
