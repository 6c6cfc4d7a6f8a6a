"""Where a streamed Markdown answer may be cut into separate widgets.

Textual's ``Markdown.append`` re-reads the whole document it holds, so one
widget fed a long answer gets slower with every chunk. The message view
therefore starts a fresh Markdown widget once the current one holds enough
text, but only where the cut cannot change the rendering much: at a blank
line outside a code fence. ``ParagraphBreaks`` follows the stream to know
when that is, in time proportional to each chunk, not to the answer.
"""

from __future__ import annotations

_FENCES = ("```", "~~~")


class ParagraphBreaks:
    """Follows streamed Markdown; says whether the text so far ends a paragraph outside code."""

    def __init__(self, text: str = "") -> None:
        self.in_fence = False
        """True inside a fenced code block."""
        self._line_head = ""
        self._tail = ""
        self.feed(text)

    def feed(self, delta: str) -> None:
        """Take the next piece of the text."""
        lines = delta.split("\n")
        for complete in lines[:-1]:
            head = (self._line_head + complete[:8]).lstrip(" ")
            if head.startswith(_FENCES):
                self.in_fence = not self.in_fence
            self._line_head = ""
        if len(self._line_head) < 8:
            self._line_head += lines[-1][:8]
        self._tail = (self._tail + delta[-2:])[-2:]

    @property
    def at_break(self) -> bool:
        """True if the text so far ends with a blank line outside a code fence."""
        return not self.in_fence and self._tail == "\n\n"
