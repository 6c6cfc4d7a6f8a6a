"""The assistant message widget: a short answer in Textual's Markdown, a long one in bounded parts drawn by Rich."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import Static

from mfu_tui.tui.stream_split import OVERLONG, Part, SegmentCutter
from mfu_tui.tui.widgets import answer_body
from mfu_tui.tui.widgets.answer_body import AnswerBody
from mfu_tui.tui.widgets.message_view import MessageView
from tests.tui.helpers import until


class OneMessage(App[None]):
    def compose(self) -> ComposeResult:
        yield MessageView("assistant", message_id="m1", status="streaming")


class ScrolledMessage(App[None]):
    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield MessageView("assistant", message_id="m1", status="streaming")


def frozen_sources(view: MessageView) -> list[str]:
    """The text of each finished part of ``view``, in order (none if it has no ``AnswerBody``)."""
    return [source for frozen in view.query(AnswerBody) for source in frozen.sources]


def live_text(view: MessageView) -> str:
    """The text after the finished parts of ``view``'s long answer: all of it for a short one."""
    bodies = view.query(AnswerBody)
    return bodies.first().tail.text if bodies else view.text


def drawn_text(widget: Widget) -> list[str]:
    """Every line ``widget`` draws, stripped."""
    return [strip.text.strip() for strip in widget.render_lines(Region(0, 0, *widget.outer_size))]


async def test_a_huge_single_paragraph_is_cut_into_bounded_segments() -> None:
    words = [f"word{n} " for n in range(3000)]
    batches = ["".join(words[i : i + 37]) for i in range(0, len(words), 37)]
    app = OneMessage()
    async with app.run_test() as pilot:
        view = app.query_one(MessageView)
        view.segment_chars = 500
        for seq, batch in enumerate(batches, start=1):
            await view.append(batch, seq)
        await pilot.pause()
        sources = frozen_sources(view)
        assert len(sources) > 10
        # Cut at spaces, never inside a word, each about OVERLONG segments long.
        assert all(source.endswith(" ") for source in sources)
        assert all(len(source) < (OVERLONG + 1) * 500 for source in sources + [live_text(view)])
        assert "".join(sources) + live_text(view) == view.text == "".join(words)


async def test_an_answer_streams_into_one_widget_whose_tail_grows_with_each_chunk() -> None:
    app = ScrolledMessage()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(MessageView)
        scroll = app.query_one(VerticalScroll)
        view.segment_chars = 300
        await view.append("Short *start*.\n\n", 1)
        await pilot.pause()
        (answer_body,) = view.query(AnswerBody)  # short or long, one widget
        assert drawn_text(answer_body)[0] == "Short start."
        seq = 1
        for n in range(12):
            seq += 1
            await view.append(f"Paragraph {n}: " + "word " * 20 + "\n\n", seq)
        for word in ["Growing", " tail", " still", " streaming"]:
            seq += 1
            await view.append(word, seq)
            scroll.scroll_end(animate=False, immediate=True)
            await pilot.pause()
            # The same widget: no Markdown blocks to build again for each chunk; the chunk is drawn at once.
            assert view.query_one(AnswerBody) is answer_body
            assert live_text(view).endswith(word) and view.text.endswith(answer_body.tail.text)
            assert [line for line in drawn_text(answer_body) if line][-1].endswith(word.strip())
        assert "".join(answer_body.sources) + answer_body.tail.text == view.text
        assert drawn_text(answer_body)[0] == "Short start."  # the Markdown, drawn: no asterisks


async def test_a_chunk_that_adds_no_line_is_drawn_without_a_layout_and_only_its_line_painted() -> None:
    app = OneMessage()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(MessageView)
        await view.append("A first paragraph.\n\nThe answer goes", 1)
        await pilot.pause()
        body = view.query_one(AnswerBody)
        layouts = body._layout_updates  # Textual counts the layouts a widget asks for
        await view.append(" on and on", 2)
        assert body._layout_updates == layouts
        assert body._repaint_regions == {Region(0, 2, body.size.width, 1)}  # the growing line alone
        await pilot.pause()
        assert drawn_text(body) == ["A first paragraph.", "", "The answer goes on and on"]
        # The tail's finished paragraph was drawn once: only the growing one is drawn for each chunk.
        ((finished, finished_lines),) = body._finished.items()
        assert finished.text == "A first paragraph.\n\n"
        await view.append(" and on", 3)
        assert body._finished[finished] is finished_lines
        # A chunk that adds a line asks for a layout: the message grows.
        await view.append("\n\nA new paragraph.", 4)
        assert body._layout_updates == layouts + 1
        await pilot.pause()
        assert drawn_text(body)[-2:] == ["", "A new paragraph."]


async def test_an_answer_streams_into_bounded_segments_then_renders_once() -> None:
    paragraphs = [f"Paragraph {n} " + "word " * 12 + "\n\n" for n in range(200)]
    code = "```python\n" + "".join(f"line_{n} = {n}\n\n" for n in range(100)) + "```\n\n"
    pieces = paragraphs[:100] + [code[i : i + 40] for i in range(0, len(code), 40)] + paragraphs[100:]
    app = OneMessage()
    async with app.run_test() as pilot:
        view = app.query_one(MessageView)
        view.segment_chars = 1000
        for seq, piece in enumerate(pieces, start=1):
            await view.append(piece, seq)
        await pilot.pause()
        sources = frozen_sources(view)
        live = live_text(view)
        assert len(sources) > 5
        # Every frozen part ends at a paragraph break, or at a line break of the code block (which is cut
        # as prose is), and holds about the limit: one piece more at most.
        assert "".join(sources) + live == view.text == "".join(pieces)
        assert all(source.endswith("\n") and len(source) <= 1000 + 80 for source in sources)
        assert any(source.count("```") % 2 for source in sources)  # one ends inside the code block
        await view.finish("complete")
        await pilot.pause()
        # The parts stay as they were: the answer is drawn as it streamed.
        assert frozen_sources(view) == sources and live_text(view) == live
        assert view.status == "complete"
        # A reload with another text replaces them all.
        await view.finish("complete", "# Edited\n\nShort now.\n")
        await pilot.pause()
        assert frozen_sources(view) == [] and live_text(view) == view.text == "# Edited\n\nShort now.\n"
        assert "Short now." in drawn_text(view.query_one(AnswerBody))
        # A long text set at once is cut as its stream would be.
        await view.set_text("".join(pieces))
        await pilot.pause()
        again = frozen_sources(view)
        assert len(again) > 5 and "".join(again) + live_text(view) == view.text == "".join(pieces)


async def test_an_answer_stopped_right_after_its_fence_shows_no_empty_code_block() -> None:
    stopped = "Here is how:\n\n```python\n"
    app = OneMessage()
    async with app.run_test() as pilot:
        view = app.query_one(MessageView)
        await view.append(stopped, 1)
        await view.finish("cancelled")
        await pilot.pause()
        assert drawn_text(view.query_one(AnswerBody)) == ["Here is how:"]  # no lines of an empty block
        assert view.text == stopped  # what is copied and exported stays as stored
        # A code block with something in it stays, even unclosed.
        await view.set_text("```python\nprint(1)\n")
        await view.finish("cancelled")
        await pilot.pause()
        assert "print(1)" in drawn_text(view.query_one(AnswerBody))


def _code_lines(view: MessageView, code: str) -> list[str]:
    """The lines of ``code`` as the view draws them, in order."""
    wanted = {line.strip() for line in code.splitlines()}
    return [line for line in drawn_text(view.query_one(AnswerBody)) if line in wanted]


async def test_a_long_code_block_is_cut_at_its_lines_and_reads_as_one_block() -> None:
    code = "".join(f"value_{n} = compute({n}) + {n}\n" for n in range(400))
    text = "Before it:\n\n```python\n" + code + "```\n\nAfter it.\n"
    pieces = [text[i : i + 37] for i in range(0, len(text), 37)]
    app = OneMessage()
    async with app.run_test(size=(100, 30)) as pilot:
        view = app.query_one(MessageView)
        view.segment_chars = 500
        for seq, piece in enumerate(pieces, start=1):
            await view.append(piece, seq)
        await view.finish("complete")
        await pilot.pause()
        sources = frozen_sources(view)
        # Bounded segments, cut at line breaks of the code, holding the text in order.
        assert len(sources) > 4
        assert all(len(source) < (OVERLONG + 1) * 500 for source in sources)
        assert "".join(sources) + live_text(view) == view.text == text
        assert all(source.endswith("\n") for source in sources)
        # Each line of the code is drawn once, in order, as one block shows it: no blank line where it was cut.
        streamed = _code_lines(view, code)
        assert streamed == [line.strip() for line in code.splitlines()]
        drawn = drawn_text(view.query_one(AnswerBody))
        first, last = drawn.index(streamed[0]), drawn.index(streamed[-1])
        assert drawn[first : last + 1] == streamed
        view.segment_chars = 10 * len(text)
        await view.set_text(text + " ")  # whole, in one segment
        await pilot.pause()
        assert frozen_sources(view) == []
        assert _code_lines(view, code) == streamed
        # A reload cuts the code as the stream did: closed at the end of each part, opened at the next.
        view.segment_chars = 500
        await view.set_text(text)
        await pilot.pause()
        assert len(frozen_sources(view)) > 4
        assert _code_lines(view, code) == streamed


async def test_an_answer_is_drawn_again_in_the_colours_of_a_new_theme() -> None:
    app = OneMessage()
    async with app.run_test(size=(80, 20)) as pilot:
        view = app.query_one(MessageView)
        text = "Code:\n\n```python\ndef area(r):\n    return 3.14 * r * r  # a circle\n"
        await view.append(text, 1)
        await pilot.pause()

        def drawn() -> list[tuple[str, str]]:
            """The answer's words as drawn, each with its style."""
            body = view.query_one(AnswerBody)
            strips = body.render_lines(Region(0, 0, *body.size))
            return [(segment.text, str(segment.style)) for strip in strips for segment in strip if segment.text.strip()]

        before = drawn()
        assert len({style for text, style in before if text.strip() != "Code:"}) >= 3  # the code, highlighted
        app.theme = "textual-light"
        await pilot.pause()
        after = drawn()
        assert [text for text, _ in after] == [text for text, _ in before]
        assert after != before  # the prose in the light theme's colours
        await view.set_text(text)  # drawn anew under this theme
        await pilot.pause()
        assert after == drawn()


async def test_parts_that_stream_past_at_once_are_estimated_then_drawn_whole_when_seen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(answer_body, "MEASURE_AFTER", 3600.0)  # no measuring when idle: estimates stay until seen
    text = "".join(f"Paragraph {n}: " + "word " * 60 + "\n\n" for n in range(300))
    app = ScrolledMessage()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(MessageView)
        scroll = app.query_one(VerticalScroll)
        await view.append(text, 1)  # a batch of a fast answer: many parts at once
        scroll.scroll_end(animate=False)
        await pilot.pause()
        frozen = view.query_one(AnswerBody)
        estimated = frozen.estimated
        # Only the last parts, in view, were measured; those above are estimated until seen.
        scroll.scroll_home(animate=False)
        await pilot.pause()
        seen = frozen.estimated
        top = [strip.text.strip() for strip in frozen.render_lines(Region(0, 0, frozen.size.width, 3))]
        # Drawn whole, every part takes the lines drawn, and they read in order.
        lines = [strip.text.strip() for strip in frozen.render_lines(Region(0, 0, *frozen.size))]
        frozen.refresh(layout=True)
        await pilot.pause()
        height = frozen.size.height
        drawn = len(frozen.render_lines(Region(0, 0, frozen.size.width, height)))
    assert 0 < seen < estimated < len(frozen.sources)
    assert top[0].startswith("Paragraph 0:")
    assert frozen.estimated == 0 and height == drawn
    numbers = [int(line.split(":")[0].split()[1]) for line in lines if line.startswith("Paragraph ")]
    assert numbers == list(range(len(numbers))) and len(numbers) + frozen.tail.text.count("Paragraph ") == 300


async def test_estimated_heights_are_measured_a_slice_at_a_time_once_no_part_comes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(answer_body, "MEASURE_AFTER", 600.0)  # the wait is not what is tested: it is cut short
    monkeypatch.setattr(answer_body, "MEASURE_SLICE", 0.0)  # one part a slice: many slices
    text = "".join(f"Item {n}\n\n- " + "word " * 40 + "\n\n" for n in range(200))
    app = ScrolledMessage()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(MessageView)
        await view.append(text, 1)
        app.query_one(VerticalScroll).scroll_end(animate=False)
        await pilot.pause()
        frozen = view.query_one(AnswerBody)
        estimated = frozen.estimated
        assert frozen._measure_timer is not None  # waiting for no part to come
        frozen._measure_timer.stop()
        frozen._measure_some()  # what the wait's end does
        await until(pilot, lambda: not frozen.estimated)
        measured_height = frozen.size.height
        drawn = len(frozen.render_lines(Region(0, 0, *frozen.size)))
        frozen.refresh(layout=True)
        await pilot.pause()
        height_after_drawing = frozen.size.height
    assert estimated > 5
    assert measured_height == drawn == height_after_drawing


async def test_what_is_seen_stays_in_place_when_the_parts_above_it_are_measured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(answer_body, "MEASURE_AFTER", 3600.0)  # measured below, a slice at a time, when told
    monkeypatch.setattr(answer_body, "MEASURE_SLICE", 0.0)  # one part a slice
    # Headings and lists: Rich does not draw them on as many lines as their source has: the estimates are off.
    section = "## Section {n}\n\n- first point\n- second point\n\nText " + "word " * 30 + "\n\n"
    text = "".join(section.format(n=n) for n in range(150))
    app = ScrolledMessage()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(MessageView)
        scroll = app.query_one(VerticalScroll)
        await view.append(text, 1)
        scroll.scroll_end(animate=False, immediate=True)
        await pilot.pause()
        frozen = view.query_one(AnswerBody)
        scroll.scroll_to(y=scroll.max_scroll_y // 2, animate=False, immediate=True)
        await pilot.pause()

        def top_line() -> str:
            line = scroll.scrollable_content_region.y - frozen.content_region.y
            return frozen.render_lines(Region(0, line, frozen.size.width, 1))[0].text.strip()

        top_line()  # the parts in view are drawn: any of them that was estimated is laid out again, then seen
        await pilot.pause()
        seen = (top_line(), frozen.estimated)
        tops = []
        while frozen.estimated:  # as the idle pass does, slice after slice, some of them before a layout
            frozen._measure_some()
            frozen._measure_some()
            await pilot.pause()
            tops.append(top_line())
    assert seen[1] > 4 and seen[0]
    assert set(tops) == {seen[0]}


class PartsAndWhole(App[None]):
    """An answer drawn in parts by one ``AnswerBody``, and whole by a ``Static`` of its Markdown."""

    def __init__(self, text: str, parts: list[Part]) -> None:
        super().__init__()
        self.text = text
        self.parts = parts

    def compose(self) -> ComposeResult:
        from mfu_tui.tui.widgets.markdown_segments import FrozenRichMarkdown

        with VerticalScroll(id="parts"):
            yield AnswerBody(self.parts, Part(""))
        with VerticalScroll(id="whole"):
            yield Static(FrozenRichMarkdown(Part(self.text)))


async def test_answer_body_draws_in_parts_what_a_static_of_the_whole_answer_draws() -> None:
    step = "## Step {n}\n\n1. first\n2. second\n\n```python\nprint({n})  # comment\n```\n\n> quoted {n}\n\n"
    text = "# Title\n\nSome *text* and `code`.\n\n" + "".join(step.format(n=n) for n in range(40))
    parts = SegmentCutter().split(text, 300)[:-1]
    app = PartsAndWhole(text, parts)
    async with app.run_test(size=(80, 40)) as pilot:
        await pilot.pause()
        frozen = app.query_one(AnswerBody)
        whole = app.query_one(Static)
        frozen.render_lines(Region(0, 0, *frozen.size))  # every part drawn, so its height is the drawn one
        await pilot.pause()
        drawn = frozen.render_lines(Region(0, 0, *frozen.size))
        expected = whole.render_lines(Region(0, 0, *whole.size))
    assert len(parts) > 5 and sum(part.gap_above for part in parts) > 5
    # Line for line, the blank lines between two blocks cut apart included.
    assert [line.text for line in drawn] == [line.text for line in expected]
    # Styles too, cell by cell: the parts' lines have the segments of one style joined.
    assert [list(line.simplify()) for line in drawn] == [list(line.simplify()) for line in expected]


@pytest.mark.parametrize("first", ["# Demo answer\n\n", "- a point\n- another\n\n", "```python\nprint(1)\n```\n\n"])
async def test_a_streamed_answer_does_not_move_as_it_ends(first: str) -> None:
    # What is drawn while the answer streams is what stays once it ends: no block moves as it is finished.
    pieces = [first[: len(first) // 2], first[len(first) // 2 :], "Then a ", "paragraph.\n"]
    app = OneMessage()
    async with app.run_test() as pilot:
        view = app.query_one(MessageView)
        body = view.query_one(AnswerBody)
        for seq, piece in enumerate(pieces, start=1):
            await view.append(piece, seq)
            await pilot.pause()
            assert body.region.y == view.query_one(".role").region.bottom  # just under the role line
        streaming = drawn_text(body)
        await view.finish("complete")
        await pilot.pause()
        assert drawn_text(body) == streaming and streaming[-1] == "Then a paragraph."
