"""Ask for a chat's new title."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Input, Static

from mfu_tui.tui.screens.dialog import Dialog

#: The protocol's limit on titles.
MAX_TITLE = 200


class RenameScreen(Dialog[str | None]):
    """An input with the current title; dismiss with the new title or ``None``.

    | Key(s) | Description | Binding id |
    | :- | :- | :- |
    | enter | Rename. | (the input's submit) |
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
    }
    """

    def __init__(self, title: str) -> None:
        super().__init__()
        self._title = title

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Rename chat"
            yield Input(self._title, max_length=MAX_TITLE, id="title")
            yield Static("enter: rename · esc: cancel", classes="hint", markup=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        title = event.value.strip()
        self.dismiss(title or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
