"""The widgets of an assistant message's Markdown: the live segment and the frozen parts.

Imported by ``MessageView`` when it first shows an assistant message, not
with the app: Textual's Markdown, markdown-it and Rich's Markdown are not
needed for the first screen, and importing them took about a sixth of the
time to the first frame.
"""

from __future__ import annotations

from collections.abc import Iterable

from markdown_it import MarkdownIt
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.markdown import Markdown as RichMarkdown
from rich.segment import Segment
from textual.widget import AwaitMount, Widget
from textual.widgets import Markdown, Static

from mfu_tui.tui.stream_split import Part

#: One Markdown parser for every assistant message, built once: Textual's
#: default builds a parser on each append, with linkify, whose pre-test (a
#: regex over the text) was most of the parsing time of a streamed chunk.
#: Bare URLs are therefore not made links; ``[text](url)`` links are.
_PARSER = MarkdownIt("gfm-like").disable("linkify")


class SegmentMarkdown(Markdown):
    """The Textual Markdown widget of (a part of) an assistant message; its first block is marked ``-first``.

    The first block loses its top margin (the role line is just above). A
    ``:first-child`` selector would say so, but Textual restyles every
    sibling of a widget with such a selector, and all their blocks, each
    time a block is mounted: a third of the time of a streamed answer. The
    class is given once, before the block is mounted, so nothing else is
    restyled.
    """

    def mount_all(
        self,
        widgets: Iterable[Widget],
        *,
        before: int | str | Widget | None = None,
        after: int | str | Widget | None = None,
    ) -> AwaitMount:
        # Markdown mounts its blocks only through here: at the end, after removing them all (update) or
        # after those it keeps (append). With no child yet, the first of them is the first block.
        widgets = list(widgets)
        if widgets and not self.children and before is None and after is None:
            # Not yet mounted: mounting styles it with the class, so no restyle now (update=False), which
            # would style the block and its subtree once more for nothing.
            widgets[0].add_class("-first", update=False)
        return super().mount_all(widgets, before=before, after=after)


def new_segment(text: str = "") -> SegmentMarkdown:
    """A Textual Markdown widget for (a part of) an assistant message."""
    return SegmentMarkdown(text, classes="body", parser_factory=lambda: _PARSER)


#: The parser of Rich's Markdown (CommonMark with strikethrough and tables), built once: Rich builds one for
#: each document, which cost as much as parsing a frozen part.
_RICH_PARSER = MarkdownIt().enable("strikethrough").enable("table")


class FrozenRichMarkdown(RichMarkdown):
    """Rich's Markdown, parsed by the one parser above rather than a new one each time."""

    def __init__(self, markup: str) -> None:
        # What RichMarkdown.__init__ does with the arguments FrozenMarkdown gives, but for the parser.
        self.markup = markup
        self.parsed = _RICH_PARSER.parse(markup)
        self.code_theme = "monokai"
        self.justify = None
        self.style = "none"
        self.hyperlinks = True
        self.inline_code_lexer = None
        self.inline_code_theme = self.code_theme


class DrawnOnce:
    """A Rich renderable drawn once per width; its lines are given back for every later use.

    Textual draws a widget's content to find its height, then again to
    paint it, and again on every repaint (a style change of the
    conversation repaints all): for a part of a long answer that was its
    Markdown parsed, wrapped and highlighted each time. The text never
    changes, so its lines at a width are made once.
    """

    def __init__(self, renderable: RenderableType) -> None:
        self._renderable = renderable
        self._lines: dict[int, list[list[Segment]]] = {}

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        lines = self._lines.get(width)
        if lines is None:
            lines = self._lines[width] = console.render_lines(self._renderable, options.update(height=None), pad=False)
        new_line = Segment.line()
        for line in lines:
            yield from line
            yield new_line


class FrozenMarkdown(Static):
    """A finished part of a long answer, drawn as one widget.

    A Textual ``Markdown`` is a widget per block, and every new chunk makes
    Textual lay out all of them again; freezing the finished parts into one
    widget each (drawn by Rich's Markdown, once per width) keeps a chunk's
    cost flat. They stay frozen when the answer ends: mounting a long answer
    again as Textual blocks would block the app for seconds.
    """

    def __init__(self, part: Part) -> None:
        super().__init__(DrawnOnce(FrozenRichMarkdown(part.markdown)), classes="body frozen")
        self.source = part.text
        """The part of the answer's text drawn here (a code block cut at its ends is closed or opened again)."""
