"""Reading an answer's events: reasoning written into the content is split from the answer however the
pieces are cut, and the text events' shortcut reads what the general reading does."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from mfu_tui.server.providers.base import ProviderError
from mfu_tui.server.providers.openai_wire import AnswerReader, Reasoning, TextEvent, ThinkSplitter, parse_line

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


#: Values a field of an event may have, as servers send them and as they should not.
ODD = st.one_of(st.none(), st.booleans(), st.integers(-1, 1), st.just(0.0), st.text("ab", max_size=2), st.just({}))
TEXT = st.one_of(LETTERS, ODD, st.just([{"type": "text", "text": "part"}]))
DELTAS = st.fixed_dictionaries(
    {}, optional={"content": TEXT, "reasoning_content": TEXT, "reasoning": TEXT, "role": st.just("assistant")}
)
CHOICES = st.fixed_dictionaries(
    {}, optional={"delta": st.one_of(DELTAS, ODD), "index": ODD, "finish_reason": st.one_of(ODD, st.just("stop"))}
)
EVENTS = st.fixed_dictionaries(
    {},
    optional={
        "choices": st.one_of(st.lists(CHOICES, max_size=2), ODD),
        "usage": st.one_of(ODD, st.just({"prompt_tokens": 3, "completion_tokens": 2})),
        "error": st.one_of(ODD, st.just({"message": "on fire"})),
        "id": st.just("chatcmpl-1"),
    },
)


def read(event: object) -> list[object]:
    """The items of ``event`` for a new answer, or the error it raises."""
    try:
        return AnswerReader().event(event)
    except ProviderError as error:
        return [error.kind, str(error)]


@given(event=EVENTS)
def test_an_event_read_by_the_text_events_shortcut_gives_what_the_general_reading_does(event):
    line = f"data: {json.dumps(event)}"
    assert read(parse_line(line)) == read(json.loads(line[5:]))


def test_an_event_of_text_alone_takes_the_shortcut():
    choice = {"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": None}
    event = {"id": "x", "object": "chat.completion.chunk", "choices": [choice]}
    parsed = parse_line(f"data: {json.dumps(event)}")
    assert isinstance(parsed, TextEvent) and read(parsed) == ["hi"]
