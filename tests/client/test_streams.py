"""StreamTracker: chunks once, in order, no gap; resume on gaps; reload after resync."""

import random

from hypothesis import given
from hypothesis import strategies as st

from mfu_tui.client.streams import StreamTracker
from mfu_tui.protocol import Cancelled, Chunk, Complete, Resume


def chunk(seq: int, message: str = "a1") -> Chunk:
    return Chunk(chat_id="c1", message_id=message, seq=seq, content=f"<{seq}>")


def deliver_all(tracker: StreamTracker, frames) -> tuple[list, list]:
    delivered, resumes = [], []
    for frame in frames:
        result = tracker.feed(frame)
        delivered += result.frames
        if result.resume:
            resumes.append(result.resume)
    return delivered, resumes


def test_in_order_chunks_pass_straight_through():
    tracker = StreamTracker()
    end = Complete(chat_id="c1", message_id="a1", seq=3)
    delivered, resumes = deliver_all(tracker, [chunk(1), chunk(2), chunk(3), end])
    assert delivered == [chunk(1), chunk(2), chunk(3), end]
    assert resumes == []
    assert tracker.in_flight() == []


def test_a_gap_asks_for_resume_once_and_holds_later_chunks():
    tracker = StreamTracker()
    delivered, resumes = deliver_all(tracker, [chunk(1), chunk(3), chunk(4)])
    assert delivered == [chunk(1)]
    assert resumes == [Resume(chat_id="c1", message_id="a1", last_seq=1)]
    delivered, resumes = deliver_all(tracker, [chunk(2), chunk(3), chunk(4), chunk(5)])
    assert delivered == [chunk(2), chunk(3), chunk(4), chunk(5)]
    assert resumes == []


def test_duplicates_and_replays_are_dropped():
    tracker = StreamTracker()
    delivered, _ = deliver_all(tracker, [chunk(1), chunk(2), chunk(1), chunk(2), chunk(3)])
    assert delivered == [chunk(1), chunk(2), chunk(3)]


def test_end_before_its_last_chunks_waits_for_them():
    tracker = StreamTracker()
    end = Complete(chat_id="c1", message_id="a1", seq=3)
    delivered, resumes = deliver_all(tracker, [chunk(1), end])
    assert delivered == [chunk(1)]
    assert resumes == [Resume(chat_id="c1", message_id="a1", last_seq=1)]
    delivered, _ = deliver_all(tracker, [chunk(2), chunk(3), end])
    assert delivered == [chunk(2), chunk(3), end]


def test_an_end_known_early_asks_for_one_resume_whose_replay_fills_the_rest():
    """A subscriber told the end first (then the replay) must not ask again at every chunk."""
    tracker = StreamTracker()
    end = Complete(chat_id="c1", message_id="a1", seq=300)
    delivered, resumes = deliver_all(tracker, [chunk(1), chunk(2), end])
    assert resumes == [Resume(chat_id="c1", message_id="a1", last_seq=2)]
    delivered, resumes = deliver_all(tracker, [chunk(seq) for seq in range(3, 301)])
    assert resumes == []
    assert delivered == [chunk(seq) for seq in range(3, 301)] + [end]


def test_frames_of_a_finished_message_are_dropped():
    tracker = StreamTracker()
    end = Cancelled(chat_id="c1", message_id="a1", seq=1)
    deliver_all(tracker, [chunk(1), end])
    delivered, resumes = deliver_all(tracker, [chunk(1), chunk(2), end])
    assert delivered == [] and resumes == []


def test_resumes_after_reconnect_cover_every_unfinished_message():
    tracker = StreamTracker()
    tracker.expect("c2", "b1")
    deliver_all(tracker, [chunk(1), chunk(2)])
    assert sorted(tracker.resumes(), key=lambda r: r.message_id) == [
        Resume(chat_id="c1", message_id="a1", last_seq=2),
        Resume(chat_id="c2", message_id="b1", last_seq=0),
    ]


def test_after_a_reconnect_resume_a_gap_at_the_same_seq_asks_no_second_time():
    tracker = StreamTracker()
    deliver_all(tracker, [chunk(1)])
    tracker.resumes()
    _, resumes = deliver_all(tracker, [chunk(5)])
    assert resumes == []


def test_an_end_naming_chunks_never_sent_asks_for_them_after_an_earlier_resume():
    """A node that lost its lease stores chunks it must not send: its end names them."""
    tracker = StreamTracker()
    tracker.expect("c1", "a1")
    tracker.resumes_for("a1")  # its message was sent again: resumed from 0, then followed live
    end = Complete(chat_id="c1", message_id="a1", seq=9)
    delivered, resumes = deliver_all(tracker, [*(chunk(seq) for seq in range(1, 9)), end])
    assert resumes == [Resume(chat_id="c1", message_id="a1", last_seq=8)]
    delivered, resumes = deliver_all(tracker, [chunk(9), end])
    assert delivered == [chunk(9), end] and resumes == []


def test_expect_says_whether_the_message_is_still_in_flight():
    tracker = StreamTracker()
    assert tracker.expect("c1", "a1")
    deliver_all(tracker, [chunk(1), Complete(chat_id="c1", message_id="a1", seq=1)])
    assert not tracker.expect("c1", "a1")  # a late ack of a finished answer
    assert tracker.in_flight() == []


def test_reload_drops_frames_meanwhile_then_follows_a_still_streaming_message():
    tracker = StreamTracker()
    deliver_all(tracker, [chunk(1)])
    tracker.start_reload("a1")
    assert deliver_all(tracker, [chunk(2)]) == ([], [])
    resume = tracker.reloaded("c1", "a1", content="<1><2><3>", seq=3, streaming=True)
    assert resume == Resume(chat_id="c1", message_id="a1", last_seq=3)
    delivered, _ = deliver_all(tracker, [chunk(3), chunk(4)])
    assert delivered == [chunk(4)]


def test_reload_of_an_ended_message_finishes_it():
    tracker = StreamTracker()
    deliver_all(tracker, [chunk(1)])
    tracker.start_reload("a1")
    assert tracker.reloaded("c1", "a1", content="all", seq=9, streaming=False) is None
    assert tracker.in_flight() == []
    assert deliver_all(tracker, [chunk(2)]) == ([], [])


@given(
    n=st.integers(min_value=0, max_value=30),
    seed=st.integers(min_value=0, max_value=2**32),
    cancelled=st.booleans(),
)
def test_any_mix_of_reorders_and_duplicates_delivers_each_chunk_once_in_order(n, seed, cancelled):
    rng = random.Random(seed)
    chunks = [chunk(seq) for seq in range(1, n + 1)]
    end = (Cancelled if cancelled else Complete)(chat_id="c1", message_id="a1", seq=n)
    arrivals = chunks + [end] + rng.choices(chunks + [end], k=rng.randint(0, 2 * n))
    rng.shuffle(arrivals)
    tracker = StreamTracker()
    delivered, _ = deliver_all(tracker, arrivals)
    # What a resume would replay fills every remaining gap.
    replay, _ = deliver_all(tracker, chunks + [end])
    assert delivered + replay == chunks + [end]
