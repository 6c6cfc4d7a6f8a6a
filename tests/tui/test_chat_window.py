"""The conversation's model of a long chat, without Textual: pages placed by index, heights, ranges."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from mfu_tui.protocol import StoredMessage
from mfu_tui.tui.chat_window import FRAME_LINES, UNLOADED_LINES, ChatWindow, Entry, estimate_height

WHEN = datetime(2026, 12, 5, tzinfo=UTC)


def messages(first: int, count: int, text: str = "hello") -> list[StoredMessage]:
    return [StoredMessage(id=f"m{n}", role="user", content=text, created_at=WHEN) for n in range(first, first + count)]


def test_pages_are_placed_by_their_offset_and_the_gaps_are_known():
    window = ChatWindow()
    window.place(9950, messages(9950, 50), total=10_000)
    assert window.total == 10_000 and window.missing(range(9950, 10_000)) is None
    assert window.missing(range(0, 12)) == 0 and window.missing(range(9940, 9960)) == 9940
    window.place(0, messages(0, 50), total=10_000)
    assert window.missing(range(0, 12)) is None and window.entries[3].message_id == "m3"
    assert window.index_of("m9951") == 9951 and window.index_of("m500") is None


def test_a_page_does_not_replace_what_is_shown_newer():
    window = ChatWindow()
    window.place(0, messages(0, 2), total=2)
    window.entries[1].text = "hello, and more since"
    window.place(0, messages(0, 2), total=2)
    assert window.entries[1].text == "hello, and more since"


def test_a_new_message_extends_the_chat_at_the_bottom_and_an_edit_cuts_it():
    window = ChatWindow()
    window.place(0, messages(0, 3), total=3)
    for n in range(3, 40):  # past the tree's capacity, more than once
        assert window.append(Entry("user", "x", f"m{n}", "complete")) == n
    assert window.total == 40 and window.index_of("m39") == 39
    assert window.span_height(range(0, 40)) == 40 * (1 + FRAME_LINES)
    window.truncate(5)
    assert window.total == 5 and window.index_of("m39") is None and window.missing(range(0, 5)) is None
    assert window.span_height(range(0, 5)) == 5 * (1 + FRAME_LINES)
    sent = window.append(Entry("user", "new", None, "sending", client_message_id="c1"))
    window.stored_as(sent, "m99")
    assert window.index_of("m99") == 5


def test_heights_are_estimated_from_the_text_until_measured():
    assert estimate_height("short", 80) == 1 + FRAME_LINES
    assert estimate_height("x" * 200, 80) == 3 + FRAME_LINES  # 76 columns of text a line
    assert estimate_height("a\nb\n\nc", 80) == 4 + FRAME_LINES
    window = ChatWindow(width=80)
    window.place(0, messages(0, 2, "x" * 200), total=5)
    assert window.height(0) == 3 + FRAME_LINES
    window.measured(0, 7)
    assert window.height(0) == 7
    # Unloaded messages stand for one line of text each, until loaded.
    assert window.span_height(range(0, 5)) == 7 + (3 + FRAME_LINES) + 3 * UNLOADED_LINES
    # Text that changed is estimated again; another width forgets what was measured.
    window.entries[1].text = "short"
    window.changed(1)
    assert window.height(1) == 1 + FRAME_LINES
    window.resize(40)
    assert window.height(0) == estimate_height("x" * 200, 40)


def test_the_message_at_a_line_is_found_from_the_heights():
    window = ChatWindow(width=80)
    rng = random.Random(5)
    texts = ["\n".join("line" for _ in range(rng.randint(1, 9))) for _ in range(300)]
    window.place(
        0, [StoredMessage(id=f"m{n}", role="user", content=t, created_at=WHEN) for n, t in enumerate(texts)], 300
    )
    tops = [window.span_height(range(0, n)) for n in range(300)]
    for n, top in enumerate(tops):
        assert window.index_at(top) == n
        assert window.index_at(top + window.height(n) - 1) == n
    assert window.index_at(10**9) == 299 and window.index_at(-5) == 0


def test_the_range_around_an_index_stays_inside_the_chat():
    window = ChatWindow(total=10_000)
    assert window.around(0, 24) == range(0, 24)
    assert window.around(5000, 24) == range(4988, 5012)
    assert window.around(9999, 24) == range(9976, 10_000)
    assert ChatWindow(total=5).around(3, 24) == range(0, 5)
