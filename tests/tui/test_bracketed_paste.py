"""A bracketed paste comes to the app whole, as one ``Paste``, whatever it holds (``bracketed_paste.py``)."""

from __future__ import annotations

import pytest
from textual import events
from textual._xterm_parser import XTermParser
from textual.message import Message

from mfu_tui.tui.bracketed_paste import PasteParser

START, END = "\x1b[200~", "\x1b[201~"
#: A file with an escape sequence, pasted: the line break after it must not be ``enter``.
PASTED = "\x1b[2J\nsecond line \x1b[31mred\x1b[0m\r\x00end\x1b"


def fed(parser: XTermParser, chunks: list[str]) -> list[Message]:
    """The events ``parser`` gives for ``chunks``, read one after the other as the terminal's reads."""
    return [event for chunk in chunks for event in parser.feed(chunk)]


def cut(data: str, *at: int) -> list[str]:
    """``data`` in pieces, cut at the offsets ``at``."""
    bounds = [0, *at, len(data)]
    return [data[start:end] for start, end in zip(bounds, bounds[1:], strict=False) if data[start:end]]


WIRE = f"{START}{PASTED}{END}"


@pytest.mark.parametrize(
    "chunks",
    [
        [WIRE],
        list(WIRE),
        cut(WIRE, len(WIRE) - 3),  # the end marker in two reads
        cut(WIRE, 3, len(START) + 1, len(START) + 5, len(WIRE) - 5),  # every marker and sequence cut
    ],
    ids=["one read", "byte by byte", "end marker cut", "all cut"],
)
def test_a_paste_is_one_paste_event_with_its_text_as_it_came(chunks: list[str]) -> None:
    events_ = fed(PasteParser(), chunks)
    # Verbatim but for NUL, which Textual's own parser drops too.
    assert [type(event) for event in events_] == [events.Paste]
    assert events_[0].text == PASTED.replace("\x00", "")  # type: ignore[attr-defined]


def test_keys_around_pastes_are_keys_and_a_second_paste_is_whole_too() -> None:
    parser = PasteParser()
    got = fed(parser, [f"a{START}one\x1b[Atwo{END}\x1b[A", f"b{START}", "three\x1b", f"[2J{END}", "c"])
    assert [(type(event).__name__, getattr(event, "key", getattr(event, "text", None))) for event in got] == [
        ("Key", "a"),
        ("Paste", "one\x1b[Atwo"),
        ("Key", "up"),
        ("Key", "b"),
        ("Paste", "three\x1b[2J"),
        ("Key", "c"),
    ]


def test_an_escape_pressed_alone_is_still_escape_when_the_wait_for_more_runs_out() -> None:
    parser = PasteParser()
    assert fed(parser, ["\x1b"]) == []
    parser._timeout_time = 0.0  # the wait Textual gives an ESC for more (ESCDELAY) is over
    assert [event.key for event in parser.tick()] == ["escape"]  # type: ignore[attr-defined]
    assert [type(event) for event in fed(parser, [WIRE])] == [events.Paste]


def test_textual_s_own_parser_still_types_what_follows_an_esc_in_a_paste() -> None:
    """The fault ``PasteParser`` corrects: once this fails, Textual reads a paste whole and the module can go."""
    got = fed(XTermParser(), [f"{START}\x1b[2J\rsecond line{END}"])  # as tmux pastes a file: its LF as CR
    assert [event.key for event in got if isinstance(event, events.Key)][:6] == [
        "circumflex_accent",
        "left_square_bracket",
        "2",
        "J",
        "enter",
        "s",
    ]
