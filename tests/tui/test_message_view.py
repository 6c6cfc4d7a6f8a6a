"""The assistant message widget: streaming into bounded Markdown segments, final render once."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Markdown

from mfu_tui.tui.stream_split import ParagraphBreaks
from mfu_tui.tui.widgets.message_view import FrozenMarkdown, MessageView


class OneMessage(App[None]):
    def compose(self) -> ComposeResult:
        yield MessageView("assistant", message_id="m1", status="streaming")


def test_paragraph_breaks_follow_fences_across_chunks() -> None:
    breaks = ParagraphBreaks()
    for piece, expected in [
        ("Intro", False),
        (" text\n", False),
        ("\n", True),
        ("`", False),
        ("``python\nx = 1\n\n", False),  # a blank line inside code is no break
        ("y = 2\n``", False),
        ("`\n\n", True),
        ("  ~~~\n\n", False),  # an indented fence opens too
    ]:
        breaks.feed(piece)
        assert breaks.at_break is expected, piece


async def test_a_long_answer_streams_into_bounded_segments_then_renders_once() -> None:
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
        frozen = list(view.query(FrozenMarkdown))
        (live,) = view.query(Markdown)
        assert len(frozen) > 5
        # Every frozen part ends at a paragraph break outside code, and holds
        # about the limit, except the one that had to take the whole code block.
        sources = [part.source for part in frozen]
        assert "".join(sources) + live.source == view.text == "".join(pieces)
        assert all(source.endswith("\n\n") and source.count("```") % 2 == 0 for source in sources)
        long_ones = [source for source in sources if len(source) > 1000 + 80]
        assert len(long_ones) == 1 and code in long_ones[0]
        await view.finish("complete")
        await pilot.pause()
        assert not view.query(FrozenMarkdown)
        (final,) = view.query(Markdown)
        assert final.source == view.text == "".join(pieces)
        assert view.status == "complete"
