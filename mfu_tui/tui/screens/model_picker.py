"""Choose the model for new messages, from ``list_models``."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from mfu_tui.protocol import ModelInfo
from mfu_tui.tui.screens.dialog import Dialog


class ModelPicker(Dialog[str | None]):
    """A list of the server's models; dismiss with the chosen id or ``None``.

    | Key(s) | Description | Binding id |
    | :- | :- | :- |
    | enter | Use the highlighted model. | (the list's select) |
    | escape | Keep the current model. | `models.cancel` |
    """

    AUTO_FOCUS = "OptionList"

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="models.cancel")]

    DEFAULT_CSS = """
    ModelPicker {
        align: center middle;
        & > Vertical {
            width: 60;
            max-width: 90%;
            height: auto;
            max-height: 80%;
            border: round $accent;
            background: $surface;
        }
        & OptionList { height: auto; max-height: 20; border: none; }
    }
    """

    def __init__(self, models: list[ModelInfo], current: str | None) -> None:
        super().__init__()
        self._models = models
        self._current = current

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Model"
            box.border_subtitle = "enter: choose · esc: cancel"
            yield OptionList(*(Option(self._prompt(model), id=model.id) for model in self._models))

    def _prompt(self, model: ModelInfo) -> Content:
        """``● Demo (offline)  default``: the name, then in dim what it does not say already."""
        mark = "● " if model.id == self._current else "  "
        said = model.name.lower()
        extra = [part for part in (model.provider, model.id) if part.lower() not in said]
        if model.default:
            extra.append("the server's default")
        return Content.assemble(mark, model.name, ("  " + " · ".join(dict.fromkeys(extra)), "dim") if extra else "")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        ids = [model.id for model in self._models]
        if self._current in ids:
            options.highlighted = ids.index(self._current)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
