"""The body of an assistant message, in one widget that draws only what is seen.

An answer is cut into parts as it streams (``stream_split``). A widget per
part, or per Markdown block as Textual's ``Markdown`` makes them, cost
Textual a mount, a restyle and a layout each: most of the cost of a fast
stream, and of opening a chat or scrolling into older messages.
``AnswerBody`` holds the finished parts and the growing tail in one widget
with the Line API, drawn by Rich: a chunk costs a redraw of the tail's last
block only (and, if it adds no line, a repaint of the lines it changed),
and a finished part is parsed and drawn the first time one of its lines is
painted. Until then its height is exact if it is near the end of the
message (where the view is while an answer streams) and estimated
otherwise; the estimates are replaced by exact heights once no part has
come for a moment, a few at a time.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections import OrderedDict
from itertools import accumulate

from rich.segment import Segment
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.timer import Timer
from textual.widget import Widget

from mfu_tui.tui.stream_split import Part, split_tail
from mfu_tui.tui.widgets.markdown_segments import FrozenRichMarkdown, HeightMarkdown

#: Parts whose drawn lines are kept (the most recently painted): more than a screen shows.
KEEP_DRAWN = 16

#: Seconds without a new part before the estimated heights are measured: not while an answer pours in.
MEASURE_AFTER = 0.3

#: Seconds of measuring at a time, so that a key pressed meanwhile waits no longer than that.
MEASURE_SLICE = 0.01

#: Exact heights of parts measured, by (hash and length of the part's Markdown, width): a message
#: unmounted and mounted again (the conversation is virtualized) finds them here. The oldest go first.
_HEIGHTS: OrderedDict[tuple[int, int, int], int] = OrderedDict()

#: Entries ``_HEIGHTS`` keeps: about 5 MiB.
_HEIGHTS_KEPT = 50_000


def estimated_height(markdown: str, width: int) -> int:
    """Lines ``markdown`` takes at ``width``, roughly: each source line wrapped, nothing more.

    Only a part neither painted nor measured yet has this height, for a
    moment: exactness is not needed here, speed is (it runs over every part
    of a message of any length).
    """
    return sum(len(line) // width + 1 for line in markdown.split("\n")) if width > 0 else 0


class AnswerBody(Widget):
    """The parts of an assistant message, one after another, each drawn by Rich's Markdown when seen.

    A part's lines are those a ``Static`` of its Markdown would show; a
    code block cut at a part's end is closed there and opened again in the
    next (``Part.markdown``).
    """

    DEFAULT_CSS = """
    AnswerBody { height: auto; }
    """

    def __init__(self, parts: list[Part], tail: Part) -> None:
        """
        Args:
            parts: The finished parts, in order.
            tail: The part after them, which may still grow.
        """
        super().__init__(classes="body")
        self._parts: list[Part] = []
        self._tail = tail
        self._width = 0
        """The width the heights are for."""
        self._heights: list[int] = []
        """Each part's height at ``_width``: exact, or estimated if its index is in ``_estimated``."""
        self._estimated: set[int] = set()
        self._tops: list[int] = [0]
        """The first line of each part sized at ``_width``, then the line after the last."""
        self._drawn: OrderedDict[int, list[Strip]] = OrderedDict()
        """The lines of the parts painted lately, by index."""
        self._finished: dict[Part, list[Strip]] = {}
        """The tail's finished pieces, and their lines at ``_width`` (``_drawn_finished``)."""
        self._measure_timer: Timer | None = None
        """The wait before measuring the estimated parts, if one has begun."""
        self._measuring = False
        """True from the first slice of measuring to the last."""
        self._unscrolled = 0
        """Lines the view is yet to scroll by, for heights changed above it (``_heights_changed``)."""
        self.add(parts, tail)

    @property
    def sources(self) -> list[str]:
        """The text of each finished part, as it is in the answer."""
        return [part.text for part in self._parts]

    @property
    def tail(self) -> Part:
        """The last part: the end of the answer, which grows as it streams."""
        return self._tail

    @property
    def estimated(self) -> int:
        """How many parts have an estimated height: neither measured nor drawn yet."""
        return len(self._estimated) + self._count - len(self._heights)

    @property
    def _count(self) -> int:
        """The parts, the tail included."""
        return len(self._parts) + 1

    def _part(self, index: int) -> Part:
        """Part ``index``: the tail after the finished ones."""
        return self._parts[index] if index < len(self._parts) else self._tail

    def add(self, parts: list[Part], tail: Part) -> None:
        """Add finished parts after those here (the first goes on from the tail's text); ``tail`` follows them.

        The tail is drawn when the message is laid out (it is where the view
        is while an answer streams), without a code block opened at its very
        end and not written into yet: an empty box that fills a moment later.
        A tail that grew without a new line (most chunks of an answer read
        as it is written) is drawn at once instead, and only its lines that
        changed are painted again: no layout, and the rest of the screen's
        lines are kept as drawn.
        """
        changed = len(self._parts)  # the old tail: finished now, or grown
        sized = self.is_mounted and self._width == self.size.width and len(self._heights) == self._count
        before = self._drawn.get(changed) if sized and not parts else None
        self._parts.extend(parts)
        self._tail = tail
        del self._heights[changed:]
        self._drawn.pop(changed, None)
        if before is not None and len(lines := self._draw(changed)) == len(before):
            self._heights.append(len(lines))
            first = next((y for y, (old, new) in enumerate(zip(before, lines)) if old != new), len(lines))
            if first < len(lines):
                top = self._tops[changed]
                self.refresh(Region(0, top + first, self._width, len(lines) - first))
        elif self.is_mounted:
            self.refresh(layout=True)

    # --- layout ----------------------------------------------------------

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        if width <= 0:
            return 0  # not laid out yet (or hidden): nothing is measured at no width
        if width != self._width:
            self._width = width
            self._heights.clear()
            self._estimated.clear()
            self._drawn.clear()
            self._finished.clear()
        if len(self._heights) < self._count:
            self._size_new_parts(viewport.height)
            self._measure_later(again=True)
        elif self._estimated:
            self._measure_later(again=False)  # not postponed by layouts that bring no part (a repaint, a resize)
        return self._tops[-1]

    def _size_new_parts(self, view_height: int) -> None:
        """Heights for the parts added (all of them at a new width): known or estimated, exact at the end."""
        for index in range(len(self._heights), self._count):
            if index == len(self._parts):  # the tail: drawn now, its lines kept for the paint that follows
                self._heights.append(len(self._draw(index)))
                break
            known = _HEIGHTS.get(self._key(index))
            if known is None:
                self._estimated.add(index)
            else:
                self._estimated.discard(index)
            estimate = estimated_height(self._part(index).markdown, self._width)
            self._heights.append(known if known is not None else estimate)
        # An answer streams with the view at its end: those parts are seen at once, so they are drawn now,
        # once, for their heights and the paint that follows; the rest may scroll away unseen.
        below = 0
        for index in reversed(range(self._count)):
            if below > view_height:
                break
            if index in self._estimated:
                self._set_height(index, len(self._draw(index)))
            below += self._heights[index]
        self._tops = [0, *accumulate(self._heights)]

    def _measure(self, index: int) -> None:
        """Part ``index``'s exact height at the current width, found without drawing it in full."""
        if index not in self._estimated:
            return
        console = self.app.console
        options = self.app.console_options.update_width(self._width).update(highlight=False, height=None)
        height = HeightMarkdown(self._part(index))
        self._set_height(index, len(console.render_lines(height, options, pad=False)))

    def _set_height(self, index: int, height: int) -> None:
        self._heights[index] = height
        self._estimated.discard(index)
        _HEIGHTS[self._key(index)] = height
        if len(_HEIGHTS) > _HEIGHTS_KEPT:
            _HEIGHTS.popitem(last=False)

    def _key(self, index: int) -> tuple[int, int, int]:
        """Part ``index`` at the current width, in ``_HEIGHTS``."""
        part = self._part(index)
        return hash(part), len(part.text), self._width

    def _measure_later(self, again: bool) -> None:
        """Measure the estimated parts ``MEASURE_AFTER`` seconds from now, or from the wait begun ``again``."""
        if not self._estimated or self._measuring:
            return
        if self._measure_timer is None:
            self._measure_timer = self.set_timer(MEASURE_AFTER, self._measure_some)
        elif again:
            self._measure_timer.reset()

    def _measure_some(self) -> None:
        """Measure estimated parts for ``MEASURE_SLICE`` seconds, the last first; the rest at the next idle moment."""
        self._measure_timer = None
        self._measuring = True
        deadline = time.monotonic() + MEASURE_SLICE
        changes: dict[int, int] = {}
        for index in sorted(self._estimated, reverse=True):
            before = self._heights[index]
            self._measure(index)
            if self._heights[index] != before:
                changes[index] = self._heights[index] - before
            if time.monotonic() > deadline:
                break
        if changes:
            self._heights_changed(changes)
        if self._estimated:
            self.call_later(self._measure_some)  # after what waits meanwhile (a key)
        else:
            self._measuring = False

    # --- painting --------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        index = bisect_right(self._tops, y) - 1
        if self.size.width != self._width or not 0 <= index < len(self._heights):
            return Strip.blank(self.size.width, self.visual_style.rich_style)  # laid out again before it is seen
        lines = self._lines_of(index)
        line = y - self._tops[index]
        return lines[line] if line < len(lines) else Strip.blank(self._width, self.visual_style.rich_style)

    def _draw(self, index: int) -> list[Strip]:
        """Part ``index`` drawn at the current width: drawn now unless it was lately."""
        if (lines := self._drawn.get(index)) is not None:
            self._drawn.move_to_end(index)
            return lines
        if index == len(self._parts):
            *finished, growing = split_tail(self._tail)
            lines = [line for piece in self._drawn_finished(finished) for line in piece] + self._draw_part(growing)
        else:
            lines = self._draw_part(self._part(index))
        self._drawn[index] = lines
        if len(self._drawn) > KEEP_DRAWN:
            self._drawn.popitem(last=False)
        return lines

    def _draw_part(self, part: Part) -> list[Strip]:
        """``part`` drawn at the current width, as a ``Static`` of it would be, one ``Strip`` made per line.

        Textual's ``Visual.to_strips`` makes a line's strip, then another
        with links styled (Rich's Markdown has no clickable ones), and a
        third with the segments joined: each strip makes seven caches, an
        eighth of the time to draw a part.
        """
        options = self.app.console_options.update(highlight=False, width=self._width, height=None)
        drawing = self.post_render(FrozenRichMarkdown(part), self.visual_style.rich_style)  # the widget's style
        lines = Segment.split_and_crop_lines(
            self.app.console.render(drawing, options), self._width, include_new_lines=False, pad=False
        )
        # Adjacent segments of one style joined (highlighted code has twice as many): each paint goes over them.
        return [Strip(Segment.simplify(line)) for line in lines]

    def _drawn_finished(self, pieces: list[Part]) -> list[list[Strip]]:
        """The tail's finished pieces (``split_tail``), each drawn once for all the chunks that follow it."""
        self._finished = {piece: self._finished.get(piece) or self._draw_part(piece) for piece in pieces}
        return list(self._finished.values())

    def _lines_of(self, index: int) -> list[Strip]:
        """Part ``index`` drawn, to be painted: its height corrected if it was an estimate."""
        lines = self._draw(index)
        if index in self._estimated:
            # Seen before it was measured (scrolled to at once): if the estimate was wrong, it is laid out again.
            change = len(lines) - self._heights[index]
            self._set_height(index, len(lines))
            if change:
                self._heights_changed({index: change})
        return lines

    def _heights_changed(self, changes: dict[int, int]) -> None:
        """Parts' heights changed (by part, the lines gained): laid out again, what is seen kept in place.

        A part that starts above the top of the view moves everything seen
        by its change, so the view scrolls by as much. Not when the view is
        at the bottom (as while an answer streams): it stays there.
        """
        scrolls = (node for node in self.ancestors if isinstance(node, Widget) and node.allow_vertical_scroll)
        scroller = next(scrolls, None)
        shift = 0
        if scroller is not None and scroller.scroll_y < scroller.max_scroll_y:
            # This widget's lines above the view, with the scrolls not yet made (they wait for the layout).
            above = scroller.scrollable_content_region.y - self.content_region.y + self._unscrolled
            shift = sum(change for index, change in changes.items() if self._tops[index] < above)
        self._tops = [0, *accumulate(self._heights)]
        self.refresh(layout=True)
        if shift and scroller is not None:
            self._unscrolled += shift
            self.call_after_refresh(self._scroll_by, scroller, shift)

    def _scroll_by(self, scroller: Widget, shift: int) -> None:
        """Scroll ``scroller`` by ``shift`` lines, now that the heights that made it necessary are laid out."""
        self._unscrolled -= shift
        scroller.scroll_relative(y=shift, animate=False, immediate=True)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._drawn.clear()  # the theme may have changed: drawn again in its colours
        self._finished.clear()
