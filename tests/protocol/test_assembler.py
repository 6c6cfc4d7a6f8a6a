"""StreamAssembler: the text out is always a prefix of the true text."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mfu_tui.protocol import Cancelled, Chunk, Complete, StreamAssembler


def chunk(seq: int, content: str) -> Chunk:
    return Chunk(chat_id="c", message_id="m", seq=seq, content=content)


def fresh() -> StreamAssembler:
    return StreamAssembler("c", "m")


def test_in_order_chunks_build_the_text_and_complete_finishes():
    assembler = fresh()
    assert [assembler.feed(chunk(1, "Hel")), assembler.feed(chunk(2, "lo"))] == ["Hel", "lo"]
    assert (assembler.text, assembler.last_seq, assembler.finished) == ("Hello", 2, False)
    assert assembler.feed(Complete(chat_id="c", message_id="m", seq=2, finish_reason="stop")) == ""
    assert (assembler.finished, assembler.outcome, assembler.finish_reason) == (True, "complete", "stop")
    assert assembler.missing_seq is None


def test_duplicates_are_ignored():
    assembler = fresh()
    assembler.feed(chunk(1, "a"))
    assert assembler.feed(chunk(1, "a")) == ""
    assembler.feed(chunk(3, "c"))
    assert assembler.feed(chunk(3, "c")) == ""
    assert assembler.text == "a"


def test_a_gap_is_reported_and_filling_it_releases_what_waited():
    assembler = fresh()
    assembler.feed(chunk(1, "a"))
    assert assembler.feed(chunk(3, "c")) == ""
    assert assembler.feed(chunk(4, "d")) == ""
    assert (assembler.text, assembler.missing_seq) == ("a", 2)
    assert assembler.feed(chunk(2, "b")) == "bcd"
    assert (assembler.text, assembler.last_seq, assembler.missing_seq) == ("abcd", 4, None)


def test_end_before_its_chunks_waits_for_them():
    assembler = fresh()
    assembler.feed(Complete(chat_id="c", message_id="m", seq=2))
    assert (assembler.finished, assembler.outcome, assembler.missing_seq) == (False, None, 1)
    assembler.feed(chunk(2, "b"))
    assembler.feed(chunk(1, "a"))
    assert (assembler.text, assembler.finished, assembler.outcome) == ("ab", True, "complete")


def test_cancel_keeps_its_prefix_and_drops_chunks_past_it():
    assembler = fresh()
    assembler.feed(chunk(1, "a"))
    assembler.feed(chunk(3, "c"))
    assembler.feed(Cancelled(chat_id="c", message_id="m", seq=1))
    assert assembler.feed(chunk(2, "b")) == ""
    assert (assembler.text, assembler.finished, assembler.outcome, assembler.missing_seq) == (
        "a",
        True,
        "cancelled",
        None,
    )
    assert assembler.finish_reason is None


def test_cancel_with_nothing_streamed():
    assembler = fresh()
    assembler.feed(Cancelled(chat_id="c", message_id="m", seq=0))
    assert (assembler.text, assembler.finished, assembler.outcome) == ("", True, "cancelled")


def test_first_end_frame_wins():
    assembler = fresh()
    assembler.feed(chunk(1, "a"))
    assembler.feed(Cancelled(chat_id="c", message_id="m", seq=1))
    assembler.feed(Complete(chat_id="c", message_id="m", seq=1))
    assert assembler.outcome == "cancelled"


def test_starts_from_known_text_after_a_reload():
    assembler = StreamAssembler("c", "m", text="ab", last_seq=2)
    assert assembler.feed(chunk(2, "b")) == ""
    assert assembler.feed(chunk(3, "c")) == "c"
    assert assembler.text == "abc"


def test_frames_of_another_message_are_refused():
    with pytest.raises(ValueError, match="fed to the assembler of 'm'"):
        fresh().feed(Chunk(chat_id="c", message_id="other", seq=1, content="x"))


# --- Properties -----------------------------------------------------------

pieces = st.lists(st.text(max_size=5), min_size=0, max_size=25)


@st.composite
def deliveries(draw):
    """A true message, and what a flaky network delivers of its frames."""
    parts = draw(pieces)
    cancelled_at = draw(st.none() | st.integers(0, len(parts)))
    last = len(parts) if cancelled_at is None else cancelled_at
    end = (
        Complete(chat_id="c", message_id="m", seq=last, finish_reason="stop")
        if cancelled_at is None
        else Cancelled(chat_id="c", message_id="m", seq=last)
    )
    # The server never sends a chunk past the seq its cancel names.
    frames = [chunk(i + 1, text) for i, text in enumerate(parts[:last])] + [end]
    # Any subset, any order, any duplicates.
    delivered = draw(st.lists(st.sampled_from(frames), max_size=3 * len(frames) + 3))
    return parts, last, end, frames, delivered


@given(deliveries())
def test_text_is_always_the_true_prefix(case):
    parts, last, _end, _frames, delivered = case
    assembler = fresh()
    streamed = ""
    for frame in delivered:
        streamed += assembler.feed(frame)
        assert assembler.text == streamed
        assert assembler.text == "".join(parts[: assembler.last_seq])
        assert assembler.last_seq <= last
        if assembler.missing_seq is not None:
            assert assembler.missing_seq == assembler.last_seq + 1


@given(deliveries(), st.randoms())
def test_everything_once_in_any_order_finishes_with_the_whole_text(case, rng):
    parts, last, end, frames, delivered = case
    assembler = fresh()
    for frame in delivered:
        assembler.feed(frame)
    shuffled = list(frames)
    rng.shuffle(shuffled)
    for frame in shuffled:
        assembler.feed(frame)
    assert assembler.finished
    assert assembler.text == "".join(parts[:last])
    assert assembler.outcome == ("complete" if isinstance(end, Complete) else "cancelled")
    assert assembler.missing_seq is None


@given(deliveries())
def test_resume_from_last_seq_fills_every_gap(case):
    """What a client does: after any loss, ask for everything after last_seq."""
    parts, last, _end, frames, delivered = case
    assembler = fresh()
    for frame in delivered:
        assembler.feed(frame)
    replay = [f for f in frames if not isinstance(f, Chunk) or f.seq > assembler.last_seq]
    for frame in replay:
        assembler.feed(frame)
    assert assembler.finished and assembler.text == "".join(parts[:last])


@given(st.permutations(range(1, 7)))
def test_reasoning_chunks_share_the_numbering_and_are_kept_apart_in_any_order(order):
    kinds = {1: "reasoning", 2: "reasoning", 3: "content", 4: "reasoning", 5: "content", 6: "content"}
    assembler = fresh()
    answered = [assembler.feed(Chunk(chat_id="c", message_id="m", seq=s, content=str(s), kind=kinds[s])) for s in order]
    assert (assembler.text, assembler.reasoning, assembler.last_seq) == ("356", "124", 6)
    assert "".join(answered) == "356"


def test_a_reloaded_message_keeps_its_reasoning_and_follows_on():
    assembler = StreamAssembler("c", "m", text="An", last_seq=3, reasoning="Hmm.")
    assembler.feed(Chunk(chat_id="c", message_id="m", seq=4, content=" answer"))
    assert (assembler.text, assembler.reasoning) == ("An answer", "Hmm.")
