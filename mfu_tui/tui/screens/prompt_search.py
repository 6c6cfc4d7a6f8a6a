"""Search the user's earlier prompts (``ctrl+r`` in the message box), as a shell's reverse search."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

from mfu_tui.tui.prompt_history import PromptHistory
from mfu_tui.tui.screens.dialog import Dialog

#: Prompts listed at once; typing narrows them.
SHOWN = 50
#: A prompt's first characters shown in the list (the whole prompt goes back into the box).
PREVIEW_CHARS = 200


class PromptSearch(Dialog[str | None]):
    """Earlier prompts that contain what is typed, newest first; dismiss with the chosen one or ``None``.

    | Key(s) | Description | Binding id |
    | :- | :- | :- |
    | enter | Put the highlighted prompt in the message box. | (the list's select) |
    | up / down | Move through the prompts. | `prompts.previous` / `prompts.next` |
    | escape | Keep the message box as it was. | `prompts.cancel` |
    """

    AUTO_FOCUS = "Input"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="prompts.cancel"),
        Binding("up", "move(-1)", "Previous", id="prompts.previous", show=False),
        Binding("down", "move(1)", "Next", id="prompts.next", show=False),
    ]

    DEFAULT_CSS = """
    PromptSearch {
        align: center middle;
        & > Vertical {
            width: 80;
            max-width: 90%;
            height: auto;
            max-height: 80%;
            border: round $accent;
            background: $surface;
        }
        & OptionList { height: auto; max-height: 20; border: none; }
    }
    """

    def __init__(self, history: PromptHistory) -> None:
        super().__init__()
        self._history = history
        self._shown: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Earlier prompts"
            box.border_subtitle = "enter: use · esc: cancel"
            yield Input(placeholder="Type to search your earlier prompts")
            yield OptionList()

    def on_mount(self) -> None:
        self._list("")

    @on(Input.Changed)
    def _narrow(self, event: Input.Changed) -> None:
        self._list(event.value)

    @on(Input.Submitted)
    def _use_highlighted(self) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is not None:
            self.dismiss(self._shown[options.highlighted])

    @on(OptionList.OptionSelected)
    def _use_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self._shown[event.option_index])

    def _list(self, words: str) -> None:
        self._shown = self._history.matching(words)[:SHOWN]
        options = self.query_one(OptionList)
        options.clear_options()
        # Content, not markup: a prompt is shown as typed, brackets and all.
        options.add_options(Option(Content(_one_line(prompt))) for prompt in self._shown)
        if self._shown:
            options.highlighted = 0

    def action_move(self, step: int) -> None:
        options = self.query_one(OptionList)
        if self._shown:
            current = options.highlighted or 0
            options.highlighted = max(0, min(len(self._shown) - 1, current + step))

    def action_cancel(self) -> None:
        self.dismiss(None)


def _one_line(prompt: str) -> str:
    """A prompt on one line of the list: new lines shown as ``⏎``, long ones cut."""
    line = prompt.replace("\n", " ⏎ ")
    return line if len(line) <= PREVIEW_CHARS else line[: PREVIEW_CHARS - 1] + "…"
