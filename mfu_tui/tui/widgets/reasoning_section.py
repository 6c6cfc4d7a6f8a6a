"""What a model reasoned before its answer: one collapsed line above it, the whole text when expanded."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Static


class ReasoningSection(Static):
    """The reasoning of one answer, above it.

    Collapsed (the default) it is one line, ``▸ Thinking… 312 words``, which
    counts on while the reasoning streams; expanded (``t`` on the selected
    message, see ``Conversation``) it shows the whole text under that line.
    It shows nothing for an answer without reasoning. The text is plain, never
    markup: it comes from the model, cleaned of control characters by the client.
    """

    DEFAULT_CSS = """
    ReasoningSection {
        height: auto;
        color: $text-muted;
        text-style: italic;
        display: none;
        &.-present { display: block; }
        &.-expanded { border-left: outer $foreground 30%; padding: 0 0 0 1; margin: 0 0 1 0; }
    }
    """

    expanded: reactive[bool] = reactive(False)
    """True while the whole text is shown, False for its one-line summary."""

    running: reactive[bool] = reactive(False)
    """True while the reasoning may still grow (its answer streams)."""

    def __init__(self, text: str = "", *, running: bool = False, expanded: bool = False) -> None:
        """
        Args:
            text: The reasoning known so far.
            running: Whether it may still grow.
            expanded: Whether the whole text is shown.
        """
        super().__init__(markup=False)
        self._pieces: list[str] = [text] if text else []
        self._words = len(text.split())
        #: True when the text so far ends inside a word (a piece may go on with it).
        self._in_word = bool(text) and not text[-1].isspace()
        self.set_reactive(ReasoningSection.expanded, expanded)
        self.set_reactive(ReasoningSection.running, running)
        self._show()

    @property
    def text(self) -> str:
        """The whole reasoning shown so far."""
        if len(self._pieces) > 1:
            self._pieces = ["".join(self._pieces)]
        return self._pieces[0] if self._pieces else ""

    @property
    def summary(self) -> str:
        """The one line shown collapsed (and above the text when expanded)."""
        arrow = "▾" if self.expanded else "▸"
        label = "Thinking…" if self.running else "Thought:"
        return f"{arrow} {label} {self._words} {'word' if self._words == 1 else 'words'}"

    def add(self, piece: str) -> None:
        """Add a streamed piece of the reasoning (counted without reading the text before it)."""
        if not piece:
            return
        words = len(piece.split())
        if self._in_word and not piece[0].isspace():
            words -= 1  # the piece goes on with the last word
        self._words += words
        self._in_word = not piece[-1].isspace()
        self._pieces.append(piece)
        self.running = True
        self._show()

    def set_text(self, text: str) -> None:
        """Replace the whole reasoning (a reload)."""
        self._pieces = [text] if text else []
        self._words = len(text.split())
        self._in_word = bool(text) and not text[-1].isspace()
        self._show()

    def watch_expanded(self) -> None:
        self._show()

    def watch_running(self) -> None:
        self._show()

    def _show(self) -> None:
        present = bool(self._pieces)
        self.set_class(present, "-present")
        self.set_class(self.expanded, "-expanded")
        if present:
            self.update(f"{self.summary}\n{self.text.strip()}" if self.expanded else self.summary)
