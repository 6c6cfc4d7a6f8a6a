"""Where a streamed answer is cut, and that its pieces draw what Rich draws of it whole.

``stream_split`` says where an answer may be cut into parts and its tail
into pieces; ``markdown_segments`` draws each. Drawn one under the other,
the parts (and the tail's pieces) must show what Rich shows of the text
whole, line for line and cell for cell: the tests draw both with Rich.
"""

from __future__ import annotations

import itertools

import pytest
from rich.console import Console
from rich.segment import Segment

from mfu_tui.tui.stream_split import OVERLONG, Cuts, ParagraphBreaks, Part, SegmentCutter, split_tail
from mfu_tui.tui.widgets.markdown_segments import FrozenRichMarkdown, HeightMarkdown

#: Where the parts are drawn: in colour, so that the styles are compared too.
CONSOLE = Console(width=40, color_system="truecolor", force_terminal=True)


def drawn(part: Part, markdown: type[FrozenRichMarkdown] = FrozenRichMarkdown) -> list[list[Segment]]:
    """``part``'s lines, drawn by Rich as the answer's widget draws them."""
    return CONSOLE.render_lines(markdown(part), CONSOLE.options, pad=True)


def test_paragraph_breaks_follow_fences_across_chunks() -> None:
    breaks = ParagraphBreaks()
    for piece, expected in [
        ("Intro", Cuts(None, None, None)),
        (" text\n", Cuts(None, 6, None)),  # spaces count on the last line only
        ("\n", Cuts(1, 1, None)),
        ("`", Cuts(None, None, None)),
        ("``python\nx = 1\n\n", Cuts(None, None, None, 16)),  # a blank line inside code is a code line
        ("y = 2\n``", Cuts(None, None, None, 6)),
        ("`\n\nNext one", Cuts(3, 3, 8)),
        ("\n", Cuts(None, 1, None)),
        ("  ~~~ sh\n\n", Cuts(None, None, None, 10)),  # an indented fence opens too
        ("~~~\nA b", Cuts(None, 4, 6)),
    ]:
        assert breaks.feed(piece) == expected, piece


def test_no_cut_at_a_space_of_a_fence_opening_line() -> None:
    breaks = ParagraphBreaks("Text\n\n")
    assert breaks.feed("``` python with words") == Cuts(None, None, None)


#: Blocks an answer may hold, for the seams between parts.
BLOCKS = {
    "paragraph": "A paragraph of words, with *emphasis* and `code`.",
    "heading": "## A heading",
    "setext heading": "A title\n---",
    "list": "- item one\n- item two",
    "numbered list": "1. first\n2. second",
    "quote": "> a quote\n> on two lines",
    "code": "```python\nprint(1)\n```",
    "rule": "-" * 20,  # as long as the shortest block after it
    "other rule": "* " * 10,
    "table": "| a | b |\n|---|---|\n| 1 | 2 |",
}


@pytest.mark.parametrize(("before", "after"), list(itertools.product(BLOCKS, repeat=2)))
def test_two_blocks_cut_apart_draw_as_one_answer(before: str, after: str) -> None:
    text = f"{BLOCKS[before]}\n\n{BLOCKS[after]}\n"
    parts = SegmentCutter().split(text, len(BLOCKS[before]) + 2)  # cut at the blank line between them
    if "list" in before:
        # Not cut after a list: a blank line may part its items (a loose list), which Rich draws as one
        # list without the blank line, and two lists cut apart with it.
        assert parts[0].text.startswith(text)
    else:
        assert parts[0].text == f"{BLOCKS[before]}\n\n"
        assert "".join(part.text for part in parts[1:]) == f"{BLOCKS[after]}\n"
    assert [line for part in parts for line in drawn(part)] == drawn(Part(text))


def test_a_list_whose_items_are_apart_is_not_cut_between_them() -> None:
    steps = "".join(f"{n}. **Step {n}**\n\n   What to do at step {n}.\n\n" for n in range(1, 6))
    text = "Here is how:\n\n" + steps + "That is all.\n\nThe end.\n"
    parts = SegmentCutter().split(text, 60)  # the list is longer, but shorter than OVERLONG parts
    assert 60 < len(steps) < OVERLONG * 60 and len(parts) >= 2
    assert not any(part.text.startswith(("2.", "   What")) for part in parts)  # no cut inside the list
    assert [line for part in parts for line in drawn(part)] == drawn(Part(text))


def test_a_code_block_cut_just_before_its_closing_fence_draws_as_one_block() -> None:
    code, after = "```python\n" + "x = 1\n" * 5, "```\n\nAfter.\n"
    cutter = SegmentCutter()
    parts = cutter.split(code, 20)  # as it streams: the code came, the fence still open
    parts = parts[:-1] + cutter.split(after, 20, parts[-1])
    assert parts[-1].opens and parts[-1].text.startswith("```")  # the last part only closes the block
    assert [line for part in parts for line in drawn(part)] == drawn(Part(code + after))
    assert [len(drawn(part, HeightMarkdown)) for part in parts] == [len(drawn(part)) for part in parts]


@pytest.mark.parametrize(("before", "after"), list(itertools.product(BLOCKS, repeat=2)))
def test_a_tail_drawn_as_its_finished_blocks_and_the_last_draws_what_it_draws_whole(before: str, after: str) -> None:
    # After a cut (so with the blank line above it), and at the answer's start.
    for gap_above in (True, False):
        tail = Part(f"{BLOCKS[before]}\n\n{BLOCKS[after]}\n", gap_above=gap_above)
        pieces = split_tail(tail)
        if "list" in before:  # not split after a list (see the test above)
            assert pieces == [tail]
            continue
        assert pieces[0].text == f"{BLOCKS[before]}\n\n" and len(pieces) == 2
        assert [line for piece in pieces for line in drawn(piece)] == drawn(tail)


def test_a_tail_inside_a_code_block_is_split_at_its_last_line_not_at_a_blank_line_of_its_code() -> None:
    tail = Part("a = 1\n\nb = 2\nc = ", opens="```python")
    assert split_tail(tail) == [
        Part("a = 1\n\nb = 2\n", opens="```python", closes="```python"),
        Part("c = ", opens="```python"),
    ]
    closed = Part("a = 1\n\nb = 2\n```\n\nAfter.\n", opens="```python")
    assert split_tail(closed) == [Part("a = 1\n\nb = 2\n```\n\n", opens="```python"), Part("After.\n", gap_above=True)]


#: An answer with code in it, for the tail's pieces at every point of its stream.
CODE_ANSWER = (
    "Some text first.\n\n```python\ndef relay(chunks, socket):\n    # each chunk, in order\n"
    '    for seq, chunk in enumerate(chunks, start=1):\n        socket.send({"seq": seq, "text": chunk})\n'
    "    return seq\n```\n\nAnd after it.\n"
)


def test_at_every_point_of_a_stream_the_tails_pieces_draw_what_the_tail_draws_whole() -> None:
    split = 0
    for end in range(1, len(CODE_ANSWER) + 1):
        tail = Part(CODE_ANSWER[:end])
        pieces = split_tail(tail)
        split += len(pieces) > 1
        assert "".join(piece.text for piece in pieces) == tail.text
        assert [line for piece in pieces for line in drawn(piece)] == drawn(tail), repr(tail.text)
    assert split > len(CODE_ANSWER) // 2
