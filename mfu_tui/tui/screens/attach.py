"""Ask for a file to attach to the message, completing its path as it is typed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.suggester import Suggester
from textual.widgets import Input, Static

from mfu_tui.client.attachments import Attachment, AttachmentError, read_attachment
from mfu_tui.client.safe_text import clean_text
from mfu_tui.tui.screens.dialog import Dialog


class PathSuggester(Suggester):
    """Completes the last part of a path from the names in its directory (hidden ones only after a dot).

    What was typed stays as typed (``~`` included); a directory is completed
    with its ``/``, so the next part can be completed in turn.
    """

    def __init__(self) -> None:
        # The file system changes: nothing is cached.
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        typed = Path(value).expanduser()
        directory, start = (typed, "") if value.endswith(os.sep) else (typed.parent, typed.name)
        try:
            names = sorted(
                (entry.name, entry.is_dir())
                for entry in os.scandir(directory)
                if entry.name.startswith(start) and (start.startswith(".") or not entry.name.startswith("."))
            )
        except OSError:
            return None
        if not names:
            return None
        name, is_dir = names[0]
        return value + name[len(start) :] + (os.sep if is_dir else "")


class AttachScreen(Dialog[Attachment | None]):
    """An input for the path of a file; dismiss with the file read whole, or ``None``.

    A file that cannot be attached (missing, unreadable, binary, an image type
    the models cannot take, too large) is said why under the input, which
    keeps what was typed.

    | Key(s) | Description | Binding id |
    | :- | :- | :- |
    | enter | Attach the file. | (the input's submit) |
    | right | Take the completion shown. | (the input's) |
    | escape | Attach nothing. | `attach.cancel` |
    """

    AUTO_FOCUS = "Input"

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="attach.cancel")]

    DEFAULT_CSS = """
    AttachScreen {
        align: center middle;
        & > Vertical {
            width: 80;
            max-width: 95%;
            height: auto;
            border: round $accent;
            background: $surface;
            padding: 0 1;
        }
        & .hint { color: $text-muted; }
        & .problem { color: $error; display: none; }
        & .problem.-shown { display: block; }
    }
    """

    def __init__(self, start: str = "") -> None:
        """
        Args:
            start: What the input holds at first (the working directory, say).
        """
        super().__init__()
        self._start = start

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Attach a file"
            yield Input(
                self._start, placeholder="path of a text file or an image", suggester=PathSuggester(), id="path"
            )
            yield Static("", classes="problem", markup=False)
            yield Static(
                "text files go in the message, images to the model (png, jpeg, gif, webp)"
                " · right: complete · enter: attach · esc: cancel",
                classes="hint",
                markup=False,
            )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        path = event.value.strip()
        if not path:
            return
        try:
            attachment = read_attachment(path)
        except AttachmentError as error:
            problem = self.query_one(".problem", Static)
            problem.update(clean_text(str(error)))
            problem.add_class("-shown")
            return
        self.dismiss(attachment)

    def action_cancel(self) -> None:
        self.dismiss(None)
