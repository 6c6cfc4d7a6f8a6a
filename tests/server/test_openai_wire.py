"""Reasoning written into the content is split from the answer however the pieces are cut."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mfu_tui.server.providers.openai_wire import Reasoning, ThinkSplitter

#: Letters that can spell no tag: a tag in the tests is one they put there.
LETTERS = st.text("ab <>/\nθ", max_size=12)


def split(text: str, cuts: list[int]) -> tuple[str, str]:
    """(answer, reasoning) of ``text`` fed to a splitter in pieces cut at ``cuts``."""
    edges = [0, *sorted({cut % (len(text) + 1) for cut in cuts}), len(text)]
    splitter = ThinkSplitter()
    items = [item for start, end in zip(edges, edges[1:]) for item in splitter.feed(text[start:end])]
    items += splitter.end()
    answer = "".join(item for item in items if isinstance(item, str))
    reasoning = "".join(item.text for item in items if isinstance(item, Reasoning))
    return answer, reasoning


@given(lead=st.sampled_from(["", "\n", "  "]), thought=LETTERS, answer=LETTERS, cuts=st.lists(st.integers(0, 60)))
def test_think_at_the_start_is_reasoning_and_the_rest_the_answer_however_cut(lead, thought, answer, cuts):
    text = f"{lead}<think>{thought}</think>\n\n{answer}"
    assert split(text, cuts) == (answer.lstrip(), thought)


@given(text=LETTERS, cuts=st.lists(st.integers(0, 60)))
def test_content_that_does_not_open_with_think_is_all_answer(text, cuts):
    assert split(text, cuts) == (text, "")


def test_an_unclosed_think_is_all_reasoning_and_a_later_think_is_answer():
    assert split("<think>still thinking", [3, 9]) == ("", "still thinking")
    # The stream ended inside the closing tag (found by test_openai_any_stream: "<think><").
    assert split("<think>still thinking</thi", [9]) == ("", "still thinking")
    assert split("<think><", []) == ("", "")
    assert split("Use <think>tags</think> like this", [6]) == ("Use <think>tags</think> like this", "")
