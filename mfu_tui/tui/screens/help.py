"""F1: every key binding, with the id to remap it."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import DataTable, Static

from mfu_tui.tui.keys import REMAP_EXAMPLE, KeyRow
from mfu_tui.tui.screens.dialog import Dialog


class HelpScreen(Dialog[None]):
    """A table of every binding: where it works, its keys, what it does, its id.

    | Key(s) | Description | Binding id |
    | :- | :- | :- |
    | escape, f1, q | Close the help. | `help.close` |
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f1,q", "dismiss", "Close", id="help.close"),
    ]

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
        & > Vertical {
            width: 100%;
            max-width: 100;
            height: 100%;
            max-height: 40;
            margin: 1 1;
            border: round $accent;
            border-title-color: $accent;
            background: $surface;
            padding: 0;
        }
        & DataTable { height: 1fr; background: $surface; }
        & .hint { color: $text-muted; height: auto; padding: 0 1; }
    }
    """

    def __init__(self, rows: list[KeyRow]) -> None:
        """
        Args:
            rows: The app's bindings with the user's keys, in the order shown.
        """
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Keys"
            box.border_subtitle = "esc to close"
            table: DataTable[str | Content] = DataTable(cursor_type="row", zebra_stripes=True)
            table.add_column("Keys", width=12)
            table.add_columns("What", "Id")
            area = None
            for row in self.rows:
                if row.area != area:
                    area = row.area
                    table.add_row(Content.styled(area, "bold $accent"), "", "")
                table.add_row(row.keys, row.description, row.binding_id)
            yield table
            yield Static(
                "ctrl+p opens the command palette. Remap a key by its id in the config file "
                f"(mfu-chat config path prints where):\n{REMAP_EXAMPLE}",
                classes="hint",
                markup=False,
            )

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
