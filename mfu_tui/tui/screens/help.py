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

    AUTO_FOCUS = "KeyTable"

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
            yield KeyTable(self.rows)
            yield Static(
                "ctrl+p opens the command palette. Remap a key by its id in the config file "
                f"(mfu-chat config path prints where):\n{REMAP_EXAMPLE}",
                classes="hint",
                markup=False,
            )


class KeyTable(DataTable[str | Content]):
    """The bindings, laid out again for each width: keys and ids whole, descriptions wrapped in what is left.

    An id is what a user copies into the config file, so it is never cut,
    nor is it pushed out of sight past the table's right edge.
    """

    #: The least width of the descriptions: they wrap, a line or two more each, but stay readable.
    MIN_DESCRIPTION_WIDTH = 16

    def __init__(self, rows: list[KeyRow]) -> None:
        """
        Args:
            rows: The app's bindings with the user's keys, in the order shown.
        """
        super().__init__(cursor_type="row", zebra_stripes=True)
        self.key_rows = rows
        self._laid_out_for = -1
        """The width the rows were added for."""

    def on_resize(self) -> None:
        width = self.size.width - self.styles.scrollbar_size_vertical  # the scrollbar is there but on a tall screen
        if width == self._laid_out_for:
            return
        self._laid_out_for = width
        cursor = self.cursor_row
        keys_width = max(len("Keys"), *(len(text) for row in self.key_rows for text in (row.keys, row.area)))
        id_width = max(len(row.binding_id) for row in self.key_rows)
        padding = 2 * self.cell_padding * 3  # either side of each of the three columns
        description_width = max(self.MIN_DESCRIPTION_WIDTH, width - keys_width - id_width - padding)
        self.clear(columns=True)
        self.add_column("Keys", width=keys_width)
        self.add_column("What", width=description_width)
        self.add_column("Id", width=id_width)
        area = None
        for row in self.key_rows:
            if row.area != area:
                area = row.area
                self.add_row(Content.styled(area, "bold $accent"), "", "")
            self.add_row(row.keys, row.description, row.binding_id, height=None)  # as many lines as it wraps to
        self.move_cursor(row=cursor, animate=False)
