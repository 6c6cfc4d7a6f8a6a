"""Ask for a chat's new title."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Input, Static

from mfu_tui.protocol import MAX_TITLE_LENGTH
from mfu_tui.tui.screens.dialog import Dialog


class RenameScreen(Dialog[str | None]):
    """An input with the current title; dismiss with the new title or ``None``.

    | Key(s) | Description | Binding id |
    | :- | :- | :- |
    | enter | Rename (a title over the limit is refused, saying by how much). | (the input's submit) |
    | escape | Keep the old title. | `rename.cancel` |
    """

    AUTO_FOCUS = "Input"

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="rename.cancel")]

    DEFAULT_CSS = """
    RenameScreen {
        align: center middle;
        & > Vertical {
            width: 60;
            max-width: 90%;
            height: auto;
            border: round $accent;
            background: $surface;
            padding: 0 1;
        }
        & .hint { color: $text-muted; }
        & .error { color: $error; height: auto; }
        & .error.-empty { display: none; }
    }
    """

    def __init__(self, title: str) -> None:
        super().__init__()
        self._title = title

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Rename chat"
            # No ``max_length``: it cut a longer title (typed or pasted) without a word. Said and refused instead.
            yield Input(self._title, id="title")
            yield Static("", id="title-error", classes="error -empty", markup=False)
            yield Static("enter: rename · esc: cancel", classes="hint", markup=False)

    def on_input_changed(self, event: Input.Changed) -> None:
        problem = self._problem(event.value)
        error = self.query_one("#title-error", Static)
        error.update(problem or "")
        error.set_class(problem is None, "-empty")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if self._problem(event.value) is None:
            self.dismiss(event.value.strip() or None)

    @staticmethod
    def _problem(title: str) -> str | None:
        """What is wrong with ``title``, or ``None``."""
        length = len(title.strip())
        if length > MAX_TITLE_LENGTH:
            return f"A title has at most {MAX_TITLE_LENGTH} characters: this one has {length}."
        return None

    def action_cancel(self) -> None:
        self.dismiss(None)
