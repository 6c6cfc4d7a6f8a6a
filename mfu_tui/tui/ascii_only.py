"""ASCII for a terminal that shows nothing more, applied to every line the app draws.

Textual draws borders, scroll bars and key symbols, Markdown draws bullets,
and the app its markers (``▸``, ``⏎``, ``…``); a chat's text may hold
anything. On a terminal that shows only ASCII (``terminal.ascii_only_wanted``)
the app's line filter swaps each other character for ASCII that takes the
same cells, so the layout stays as it was measured: box lines become ``-``,
``|`` and ``+``, the ``▕``/``▎`` edges ``|``, ``…`` a ``.``, an accented
letter its base letter, and a character with no likeness ``?`` (``??`` for a
wide one).
"""

from __future__ import annotations

import unicodedata

from rich.cells import cell_len
from rich.segment import Segment
from textual.color import Color
from textual.filter import LineFilter

#: Stand-ins for the symbols the app and Textual draw (each one cell, as the symbol).
STAND_INS = {
    "…": ".",
    "⏎": "<",
    "●": "*",
    "○": "o",
    "◆": "*",
    "▸": ">",
    "▶": ">",
    "◀": "<",
    "•": "*",
    "·": ".",
    "—": "-",
    "–": "-",
    "‘": "'",
    "’": "'",
    "“": '"',
    "”": '"',
    "→": ">",
    "←": "<",
    "↑": "^",
    "↓": "v",
    "⌫": "<",
    "✓": "v",
    "✔": "v",
    "✗": "x",
    "✘": "x",
    "×": "x",
    "\u00a0": " ",
}

#: Key symbols in the footer and the help, as words (the footer is laid out after this).
KEY_WORDS = {"⏎": "enter", "↑": "up", "↓": "down", "←": "left", "→": "right", "⌫": "backspace"}


def ascii_key_display(display: str) -> str:
    """A key as Textual shows it (``⏎``, ``^↑``), in ASCII words (``enter``, ``^up``)."""
    for symbol, word in KEY_WORDS.items():
        display = display.replace(symbol, word)
    return display


def stand_in(character: str) -> str:
    """ASCII taking the same cells as ``character`` (nothing for a zero-width one)."""
    if character in STAND_INS:
        return STAND_INS[character]
    width = cell_len(character)
    if width == 0:
        return ""
    name = unicodedata.name(character, "")
    if name.startswith("BOX DRAWINGS"):
        if " AND " in name or " ARC " in name or "DIAGONAL" in name:
            return "+"  # a corner, a tee or a cross
        return "-" if name.endswith(("HORIZONTAL", "LEFT", "RIGHT")) else "|"
    if "BLOCK" in name or "SHADE" in name or "QUADRANT" in name:
        return _block(name)
    base = unicodedata.normalize("NFKD", character).encode("ascii", "ignore").decode()
    if len(base) == width and base.isprintable():
        return base
    return "?" * width


def _block(name: str) -> str:
    """A block element (edges, scroll bars, the message box's sides) as ASCII."""
    if "LEFT" in name or "RIGHT" in name:
        return "|"
    if "UPPER ONE EIGHTH" in name or "UPPER HALF" in name:
        return "-"
    if "LOWER ONE EIGHTH" in name:
        return "_"
    return "#"


class _StandIns(dict[int, str]):
    """A ``str.translate`` table that works out each non-ASCII character once."""

    def __missing__(self, code: int) -> str:
        self[code] = stand_in(chr(code))
        return self[code]


class AsciiOnly(LineFilter):
    """A line filter that leaves only ASCII in what is drawn, cell for cell."""

    def __init__(self, enabled: bool = True) -> None:
        super().__init__(enabled)
        self._table = _StandIns()

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        """Each segment's text in ASCII, its style and control codes as they were."""
        table = self._table
        return [
            segment if text.isascii() else Segment(text.translate(table), style, control)
            for segment in segments
            for text, style, control in [segment]
        ]
