"""Text from the network, made safe to show in a terminal, copy and export.

A terminal runs the escape sequences it is given: an answer, a chat title or
an error text holding ``ESC ] 2 ;`` retitles the window, ``ESC ] 52 ;`` writes
the clipboard, ``ESC [ 2 J`` clears the screen, and a pasted ``ESC [ 201 ~``
ends bracketed paste so that what follows runs as a command. Textual strips
some controls but passes ESC and C1. So every string that reaches the
client from the server goes through ``clean_text`` first, here at the
boundary, and every user of the client library is protected:

- an escape sequence goes whole, as the terminal would have read it, so that
  no ``[2J`` or ``]0;pwned`` is left to read: a CSI (``ESC [`` or U+009B,
  parameters, a final letter), a string (``ESC ]`` OSC, ``ESC P`` DCS...,
  up to BEL or ST), any other ``ESC`` and its character. An unfinished one
  loses its introducer only, so that no text after it is lost with it;
- C0 controls but newline and tab, DEL, and C1 (U+0080 to U+009F) are
  dropped. Without ESC (and CSI, U+009B) no sequence can form, even one split
  across chunks;
- bidirectional overrides and isolates (U+202A to U+202E, U+2066 to
  U+2069), which make text read differently from what it is, are shown as
  ``<U+202E>`` instead of applied.

The server stores text exactly as the model sent it; cleaning is a concern
of showing, copying and exporting only.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar, cast

import msgspec

_T = TypeVar("_T")

#: What ``clean_text`` drops whole: a CSI, a string ended by BEL or ST, or ESC, its intermediates and final.
_SEQUENCES = re.compile(
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d-\x9f])[^\x00-\x1f\x7f-\x9f]*(?:\x07|\x1b\\|\x9c)"
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]"
)
#: What ``clean_text`` drops of what is left: the controls no sequence took with it.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
#: What ``clean_text`` shows by name.
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
#: In a frame's JSON text: any character ``clean_text`` would change, raw or as
#: a JSON escape (``\u001b``, ``\r``...). A frame without one needs no cleaning,
#: which is nearly every frame: one search instead of a walk over its strings.
_UNSAFE_JSON = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"
    r"|\\[bfr]|\\u(?:00[01][0-9a-fA-F]|007[fF]|00[89][0-9a-fA-F]|202[a-eA-E]|206[6-9])"
)


def clean_text(text: str) -> str:
    """``text`` without escape sequences and controls (newline and tab kept), its bidi controls named."""
    text = _CONTROLS.sub("", _SEQUENCES.sub("", text))
    return _BIDI.sub(lambda match: f"<U+{ord(match.group()):04X}>", text)


def clean_marked(text: str, spans: list[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    """``text`` cleaned, and ``spans`` (``[start, end)`` offsets into it) moved to match.

    Cleaning drops characters and names others in several, which would shift
    offsets taken on the text as sent: so each piece between the offsets is
    cleaned alone. Spans that are out of order, overlap, are empty or reach
    past the text are dropped, as is a span left empty by cleaning.
    """
    pieces: list[str] = []
    cleaned: list[tuple[int, int]] = []
    done = length = 0
    for start, end in spans:
        if start < done or end <= start or end > len(text):
            continue
        before, marked = clean_text(text[done:start]), clean_text(text[start:end])
        pieces += [before, marked]
        length += len(before)
        if marked:
            cleaned.append((length, length + len(marked)))
        length += len(marked)
        done = end
    pieces.append(clean_text(text[done:]))
    return "".join(pieces), cleaned


def may_need_cleaning(json_text: str | bytes) -> bool:
    """Whether a frame's JSON text could hold a string that ``clean_text`` changes."""
    if isinstance(json_text, bytes):
        json_text = json_text.decode("utf-8", "replace")
    return _UNSAFE_JSON.search(json_text) is not None


def clean_strings(value: _T) -> _T:
    """``value`` (a frame, a record, or plain data) with every string in it cleaned; itself if none changed."""
    return cast(_T, _clean(value))  # _clean gives back the type it was given


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, msgspec.Struct):
        changes = {}
        for name in value.__struct_fields__:
            field = getattr(value, name)
            cleaned = _clean(field)
            if cleaned != field:
                changes[name] = cleaned
        return msgspec.structs.replace(value, **changes) if changes else value
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if isinstance(value, dict):
        return {_clean(key): _clean(item) for key, item in value.items()}
    return value
