"""Files shown as chips: on a sent message, and above the message box before sending."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events
from textual.app import ComposeResult
from textual.containers import HorizontalGroup
from textual.message import Message
from textual.widgets import Static

from mfu_tui.client.attachments import Attachment
from mfu_tui.client.safe_text import clean_text
from mfu_tui.protocol import TEXT_MEDIA_TYPE, AttachmentInfo, describe_size

if TYPE_CHECKING:  # the outbox (the client's) is not loaded for the first frame
    from mfu_tui.client.outbox import PendingFile


def chip_label(file: AttachmentInfo) -> str:
    """``notes.txt · 1.2 KiB`` (``image`` before the name of an image), the name cleaned for the terminal."""
    kind = "" if file.media_type == TEXT_MEDIA_TYPE else "image "
    return f"{kind}{clean_text(file.name)} · {describe_size(file.size)}"


def info_of(file: Attachment | PendingFile) -> AttachmentInfo:
    """A file about to be sent (chosen here, or waiting in the outbox), as its chip shows it."""
    return AttachmentInfo(name=file.name, media_type=file.media_type, size=file.size)


class Chip(Static):
    """One file; a click on a chip of ``PendingFiles`` takes the file off the message."""

    DEFAULT_CSS = """
    Chip {
        width: auto;
        height: 1;
        padding: 0 1;
        margin: 0 1 0 0;
        background: $primary-muted;
        color: $text;
    }
    """

    def __init__(self, file: AttachmentInfo, index: int) -> None:
        super().__init__(chip_label(file), markup=False)
        self.index = index
        """The file's place among the message's files."""


class AttachmentChips(HorizontalGroup):
    """The files of a message, one chip each, in order."""

    DEFAULT_CSS = """
    AttachmentChips {
        height: auto;
        margin: 0 0 0 0;
    }
    """

    def __init__(self, files: list[AttachmentInfo], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.files = files
        """What the chips show."""

    def compose(self) -> ComposeResult:
        for index, file in enumerate(self.files):
            yield Chip(file, index)


class PendingFiles(AttachmentChips):
    """The files attached to the message being written, above the message box; hidden while there are none.

    A click on a chip takes that file off. The files are sent with the next
    message and cleared once the client has taken it (``take``).
    """

    DEFAULT_CSS = """
    PendingFiles {
        margin: 0 1;
        display: none;
        &.-some { display: block; }
        & > Chip:hover { background: $error-muted; }
    }
    """

    class Changed(Message):
        """Files were attached or taken off."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__([], id=id)
        self.attached: list[Attachment] = []
        """The files, whole, in the order attached."""

    async def add(self, file: Attachment) -> None:
        """Attach one more file."""
        self.attached.append(file)
        await self._redraw()

    async def clear(self) -> None:
        """Take every file off (the message went)."""
        self.attached = []
        await self._redraw()

    async def _on_click(self, event: events.Click) -> None:
        if isinstance(event.widget, Chip):
            del self.attached[event.widget.index]
            await self._redraw()

    async def _redraw(self) -> None:
        self.files = [info_of(file) for file in self.attached]
        self.set_class(bool(self.attached), "-some")
        await self.remove_children()
        await self.mount_all(Chip(file, index) for index, file in enumerate(self.files))
        self.post_message(self.Changed())
