"""A bracketed paste read whole: one ``Paste`` with the text as it came, whatever it holds.

Corrects Textual 8.2.8's input parser (``textual._xterm_parser.XTermParser``):
inside a bracketed paste (``ESC [ 200 ~`` ... ``ESC [ 201 ~``) it takes an ESC
for the start of a key sequence and gives what follows it as keys, an ESC as
``^``. A file with colours pasted was typed, and a line break after an escape
sequence (``ESC [ 2 J``, then a newline) was ``enter``: the message box sent
``^[2J`` and kept the rest. Read whole, the paste goes to the box's paste
handler, which cleans it (``Composer._on_paste``).

``PasteParser`` lets Textual's parser read everything but the paste's text:
from its start marker to the end marker it reads the text itself.
``PasteDriver`` is Textual's ``LinuxDriver`` with that parser. Both can go when
Textual reads a paste whole (``test_bracketed_paste.py`` has a test of its
parser that fails then).
"""

from __future__ import annotations

import os
import selectors
from codecs import getincrementaldecoder
from collections.abc import Generator

from textual import events
from textual._loop import loop_last
from textual._parser import ParseEOF, ParseError, Peek1, Read1, TokenCallback
from textual._xterm_parser import BRACKETED_PASTE_END, BRACKETED_PASTE_START, XTermParser
from textual.drivers.linux_driver import LinuxDriver
from textual.message import Message


class PasteParser(XTermParser):
    """Textual's parser, but for the text of a bracketed paste, which is read as it came up to the end marker."""

    def parse(self, token_callback: TokenCallback[Message]) -> Generator[Read1 | Peek1, str, None]:
        try:
            while (yield from self._parse_up_to_a_paste(token_callback)):
                pasted = yield from self._read_paste()
                # As Textual's parser does: https://github.com/Textualize/textual/issues/1661
                token_callback(events.Paste(pasted.replace("\x00", "")))
        except ParseEOF:
            return

    def _parse_up_to_a_paste(self, token_callback: TokenCallback[Message]) -> Generator[Read1 | Peek1, str, bool]:
        """Textual's parsing of keys, mouse and the rest, until it has read a paste's start marker.

        Returns:
            True once the start marker is read, False at the end of the input.
        """
        textual_parse = super().parse(token_callback)
        awaiting = next(textual_parse)
        # The last characters read with no timeout between them: Textual's parser starts a sequence
        # anew at each ESC and gives up one at a timeout, so if these are the start marker, it read one.
        recent = ""
        while True:
            try:
                character = yield awaiting
            except ParseError as error:  # the wait for the rest of a sequence ran out, or the input ended
                recent = ""
                try:
                    awaiting = textual_parse.throw(error)
                except StopIteration:
                    return False
                continue
            recent = (recent + character)[-len(BRACKETED_PASTE_START) :]
            awaiting = textual_parse.send(character)
            if recent == BRACKETED_PASTE_START:
                textual_parse.close()  # it is in its paste mode, which reads the text wrong: a new one follows
                return True

    def _read_paste(self) -> Generator[Read1, str, str]:
        """The text of a paste whose start marker was read: all up to the end marker, ESC included."""
        read: list[str] = []
        end = list(BRACKETED_PASTE_END)
        while read[-len(end) :] != end:
            read.append((yield self.read1()))
        return "".join(read[: -len(end)])


class PasteDriver(LinuxDriver):
    """Textual's Linux and macOS driver, reading its input with ``PasteParser``."""

    def run_input_thread(self) -> None:
        """Textual 8.2.8's ``LinuxDriver.run_input_thread`` as it is, but for its parser, a ``PasteParser``."""
        selector = selectors.SelectSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        parser = PasteParser(self._debug)
        utf8_decoder = getincrementaldecoder("utf-8")().decode

        def process_selector_events(
            selector_events: list[tuple[selectors.SelectorKey, int]], final: bool = False
        ) -> None:
            for last, (_selector_key, mask) in loop_last(selector_events):
                if mask & selectors.EVENT_READ:
                    unicode_data = utf8_decoder(os.read(self.fileno, 1024 * 4), final=final and last)
                    if not unicode_data:
                        break  # stdin is piped
                    for event in parser.feed(unicode_data):
                        self.process_message(event)
            for event in parser.tick():
                self.process_message(event)

        try:
            while not self.exit_event.is_set():
                process_selector_events(selector.select(0.1))
            selector.unregister(self.fileno)
            process_selector_events(selector.select(0.1), final=True)
        finally:
            selector.close()
            try:
                for _event in parser.feed(""):
                    pass
            except (EOFError, ParseError):
                pass
