"""The conversation's model of a long chat, without Textual: pages placed by index, heights, ranges."""

from __future__ import annotations

from datetime import UTC, datetime

from mfu_tui.protocol import StoredMessage
from mfu_tui.tui.chat_window import FRAME_LINES, ChatWindow, estimate_height

WHEN = datetime(2026, 12, 5, tzinfo=UTC)


def messages(first: int, count: int, text: str = "hello") -> list[StoredMessage]:
    return [StoredMessage(id=f"m{n}", role="user", content=text, created_at=WHEN) for n in range(first, first + count)]


def test_pages_are_placed_by_their_offset_and_the_gaps_are_known():
    window = ChatWindow()
    window.place(9950, messages(9950, 50), total=10_000)
    assert window.total == 10_000 and window.missing(range(9950, 10_000)) is None
    assert window.missing(range(0, 12)) == 0 and window.missing(range(9940, 9960)) == 9940
    window.place(0, messages(0, 50), total=10_000)
    assert window.missing(range(0, 12)) is None and window.records[3].id == "m3"
    assert window.index_of("m9951") == 9951 and window.index_of("m500") is None


def test_a_new_message_extends_the_chat_at_the_bottom():
    window = ChatWindow()
    window.place(0, messages(0, 3), total=3)
    assert window.append(messages(3, 1)[0]) == 3 and window.total == 4


def test_heights_are_estimated_from_the_text_until_measured_at_that_width():
    assert estimate_height("short", 80) == 1 + FRAME_LINES
    assert estimate_height("x" * 200, 80) == 3 + FRAME_LINES  # 76 columns of text a line
    assert estimate_height("a\nb\n\nc", 80) == 4 + FRAME_LINES
    window = ChatWindow()
    window.place(0, messages(0, 2, "x" * 200), total=5)
    assert window.height(0, 80) == 3 + FRAME_LINES
    window.measured(0, 80, 7)
    assert window.height(0, 80) == 7 and window.height(0, 40) == estimate_height("x" * 200, 40)
    # Unloaded messages stand for one line of text each, until loaded.
    assert window.span_height(range(0, 5), 80) == 7 + (3 + FRAME_LINES) + 3 * (1 + FRAME_LINES)


def test_the_range_around_an_index_stays_inside_the_chat():
    window = ChatWindow(total=10_000)
    assert window.around(0, 24) == range(0, 24)
    assert window.around(5000, 24) == range(4988, 5012)
    assert window.around(9999, 24) == range(9976, 10_000)
    assert ChatWindow(total=5).around(3, 24) == range(0, 5)
