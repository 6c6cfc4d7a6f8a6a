"""clean_text: nothing from the network reaches a terminal able to run an escape sequence."""

import json

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from mfu_tui.client.safe_text import clean_marked, clean_strings, clean_text, may_need_cleaning
from mfu_tui.protocol import ChatDetail, ChatSummary, Chunk, Error, StoredMessage, decode_server, encode
from tests.protocol.examples import WHEN

ESC = "\x1b"
#: What a hostile model or server sends: window title, clipboard write, clear screen,
#: cursor moves, hidden text, the end of bracketed paste with a ctrl-U, a C1 CSI.
ATTACKS = [
    f"{ESC}]2;pwned\x07",
    f"{ESC}]52;c;cm0gLXJmIH4K\x07",
    f"{ESC}[2J",
    f"{ESC}[1;1H",
    f"{ESC}[8mhidden",
    f"{ESC}[201~\x15rm -rf ~\r",
    "\x9b2J",
]


def test_controls_are_dropped_newline_and_tab_kept():
    for attack in ATTACKS:
        assert not any(ord(c) < 0x20 and c not in "\n\t" or 0x7F <= ord(c) <= 0x9F for c in clean_text(attack))
    assert clean_text(f"a{ESC}[2Jb\tc\nd\re\x00f\x7fg\x85h") == "ab\tc\ndefgh"


def test_an_escape_sequence_goes_whole_leaving_no_debris():
    """What a terminal would take as one sequence goes as one: no ``[2J`` or ``]0;`` is left to read."""
    assert clean_text(f"{ESC}[31mred{ESC}[0m") == "red"
    assert clean_text(f"{ESC}[38;2;255;0;0mx{ESC}[?25l{ESC}[1;1H{ESC}[2J\x9b2Jy") == "xy"  # CSI, its C1 form too
    assert clean_text(f"a{ESC}]0;pwned\x07b{ESC}]2;title{ESC}\\c{ESC}]8;;http://x\x9cd") == "abcd"  # OSC: BEL or ST
    assert clean_text(f"a{ESC}Pq#0;1{ESC}\\b{ESC}_apc\x07c") == "abc"  # DCS and APC: strings like OSC
    assert clean_text(f"a{ESC}7b{ESC}(Bc{ESC}cd") == "abcd"  # ESC and one character, after any intermediates
    # Unfinished, a sequence loses its introducer only: the text after it is not lost with it.
    assert clean_text(f"a{ESC}]0;no end\nnext line") == "a0;no end\nnext line"
    assert clean_text(f"a{ESC}[31") == "a31"
    assert clean_text(f"a{ESC}") == "a"
    assert clean_text(f"a{ESC}é") == "aé"


def test_bidi_controls_are_shown_by_name_not_applied():
    assert clean_text("abc\u202edef\u2066x\u2069") == "abc<U+202E>def<U+2066>x<U+2069>"


def test_plain_text_is_kept_as_it_is():
    text = "# Title\n\n- **bold** 日本語 😀 `code`\n\tindented — “quotes” é"
    assert clean_text(text) == text
    assert not may_need_cleaning(encode(Chunk(chat_id="c1", message_id="m1", seq=1, content=text)))


def test_a_frame_is_cleaned_through_and_through():
    chat = ChatSummary(id="c1", title=f"{ESC}]2;title\x07Chat", updated_at=WHEN)
    message = StoredMessage(id="m1", role="assistant", content=f"hi{ESC}[2J", created_at=WHEN)
    detail = clean_strings(ChatDetail(chat=chat, messages=[message]))
    assert detail.chat.title == "Chat" and detail.messages[0].content == "hi"
    error = decode_server(encode(Error(code="provider_error", message=f"model said {ESC}[8m")))
    assert clean_strings(error).message == "model said "
    assert clean_strings({"models": [{"name": "\u202e"}]}) == {"models": [{"name": "<U+202E>"}]}


@given(st.text())
def test_the_quick_check_never_misses_what_cleaning_would_change(text):
    """The client cleans only frames whose JSON text may need it: that check must never miss."""
    if clean_text(text) == text:
        return
    frame = Chunk(chat_id="c1", message_id="m1", seq=1, content=text)
    assert may_need_cleaning(encode(frame))  # msgspec, as the server sends it
    assert may_need_cleaning(msgspec.json.encode(frame).decode())
    assert may_need_cleaning(json.dumps({"content": text}))  # any other server's JSON
    assert may_need_cleaning(json.dumps({"content": text}, ensure_ascii=False))


def test_clean_marked_moves_offsets_with_the_text_and_drops_spans_that_do_not_fit():
    text = "\u202eab\x1bcd ef"
    # "ab\x1bcd" is [1, 6): cleaning drops the sequence ESC c inside it and names the bidi control before it.
    assert clean_marked(text, [(1, 6), (7, 9)]) == ("<U+202E>abd ef", [(8, 11), (12, 14)])
    # Out of order, overlapping, empty, past the end, or nothing left once cleaned: dropped.
    assert clean_marked("abc def", [(4, 7), (0, 3)]) == ("abc def", [(4, 7)])
    assert clean_marked("abc def", [(0, 3), (2, 5), (5, 5), (6, 99)]) == ("abc def", [(0, 3)])
    assert clean_marked("a\x1b b", [(1, 2), (3, 4)]) == ("a b", [(2, 3)])
