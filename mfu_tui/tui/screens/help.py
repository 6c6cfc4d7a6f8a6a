"""F1: every key binding, with the id to remap it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from mfu_tui.tui.keys import binding_rows


class HelpScreen(ModalScreen[None]):
    """A table of every binding: where it works, its keys, what it does, its id.

    | Key(s) | Description | Binding id |
    | :- | :- | :- |
    | escape, f1, q | Close the help. | `help.close` |
    """

    BINDINGS: list[BindingType] = [
        Binding("escape,f1,q", "dismiss", "Close", id="help.close"),
    ]

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
        & > VerticalScroll {
            width: 90%;
            max-width: 110;
            height: 90%;
            border: round $accent;
            border-title-color: $accent;
            background: $surface;
            padding: 0 1;
        }
        & DataTable { height: auto; background: $surface; }
        & .hint { color: $text-muted; margin: 1 0 0 0; }
    }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = "Keys"
            box.border_subtitle = "esc to close"
            table: DataTable[str] = DataTable(cursor_type="row", zebra_stripes=True)
            table.add_columns("Where", "Keys", "What", "Id")
            for row in binding_rows(self.app):
                table.add_row(row.area, row.keys, row.description, row.binding_id)
            yield table
            yield Static(
                "ctrl+p opens the command palette. Remap a key by its id, "
                "e.g. keymap = {\"app.new_chat\": \"ctrl+t\"}.",
                classes="hint",
                markup=False,
            )

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
