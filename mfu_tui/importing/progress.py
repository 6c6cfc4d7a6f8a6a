"""How far an import got: a bar redrawn in place on a terminal, one line per tenth elsewhere.

A log file or a CI job gets a line at 10 %, 20 %... rather than thousands of
carriage returns, and a terminal gets one line that fills up.
"""

from __future__ import annotations

from typing import TextIO

#: Characters of the bar between its brackets.
BAR_WIDTH = 30


class Progress:
    """Counts done items out of ``total`` and shows it on ``stream``.

    Args:
        total: Items to do (at least one).
        stream: Where to write (stderr: the summary on stdout stays clean for scripts).
        what: The items' name, plural.
    """

    def __init__(self, total: int, stream: TextIO, what: str = "conversations") -> None:
        self.total = total
        self.done = 0
        self._stream = stream
        self._what = what
        self._redraw = stream.isatty()
        self._tenths_shown = 0

    def advance(self) -> None:
        """One more item done."""
        self.done += 1
        if self._redraw:
            filled = BAR_WIDTH * self.done // self.total
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            end = "\n" if self.done == self.total else ""
            self._stream.write(f"\r[{bar}] {self._percent():3d}% {self.done}/{self.total} {self._what}{end}")
        else:
            tenths = 10 * self.done // self.total
            if tenths <= self._tenths_shown:
                return
            self._tenths_shown = tenths
            self._stream.write(f"import: {tenths * 10}% ({self.done} of {self.total} {self._what})\n")
        self._stream.flush()

    def interrupt(self) -> None:
        """End the bar's line, so that what is written next starts on its own."""
        if self._redraw and 0 < self.done < self.total:
            self._stream.write("\n")
            self._stream.flush()

    def _percent(self) -> int:
        return 100 * self.done // self.total
