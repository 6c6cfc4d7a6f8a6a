"""The sidebar: the user's chats, pinned first, then newest first, kept live."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

from rich.cells import cell_len, set_cell_size
from textual import events
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from mfu_tui.protocol import ChatSummary, in_list_order
from mfu_tui.tui.widgets.composer import ask_the_app, focus_message_box, pass_input_on


class ChatList(OptionList):
    """The chat list in the sidebar.

    A printable key that is not one of its own goes to the message box
    (``pass_input_on``). It is fed by ``list_chats`` pages and by ``chat_updated`` frames, so a
    chat created or renamed in another terminal shows up at once. One
    option per chat and no widget each, so long lists stay cheap. It shows
    either the chats not archived or the archived ones (``archived``), in the
    server's order: pinned chats first, marked ★, then the others, each part
    most recently updated first.

    | Key(s) | Description | Binding id |
    | :- | :- | :- |
    | enter | Open the highlighted chat. | `chat_list.open` |
    | f2 | Rename the highlighted chat. | `chat_list.rename` |
    | delete, f8 | Delete the highlighted chat (asks first). | `chat_list.delete` |
    | p | Pin or unpin the highlighted chat. | `chat_list.pin` |
    | a | Archive the highlighted chat, or bring it back from the archive. | `chat_list.archive` |
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select", "Open", id="chat_list.open", show=False, tooltip="Open the highlighted chat"),
        Binding("f2", "rename", "Rename", id="chat_list.rename", tooltip="Rename the highlighted chat"),
        Binding("delete,f8", "delete", "Delete", id="chat_list.delete", tooltip="Delete the highlighted chat"),
        Binding("p", "pin", "Pin", id="chat_list.pin", tooltip="Pin the highlighted chat"),
        Binding("a", "archive", "Archive", id="chat_list.archive", tooltip="Archive the highlighted chat"),
    ]

    DEFAULT_CSS = """
    ChatList {
        height: 1fr;
        border: none;
        padding: 0;
        background: $surface;
        & > .option-list--option { padding: 0 1; }
    }
    """

    class Opened(Message):
        """The user chose a chat to open."""

        def __init__(self, chat_id: str) -> None:
            super().__init__()
            self.chat_id = chat_id

    class RenameRequested(Message):
        """The user wants to rename a chat."""

        def __init__(self, chat_id: str) -> None:
            super().__init__()
            self.chat_id = chat_id

    class DeleteRequested(Message):
        """The user wants to delete a chat."""

        def __init__(self, chat_id: str) -> None:
            super().__init__()
            self.chat_id = chat_id

    class PinRequested(Message):
        """The user wants a chat pinned (``pinned``) or unpinned."""

        def __init__(self, chat_id: str, pinned: bool) -> None:
            super().__init__()
            self.chat_id = chat_id
            self.pinned = pinned

    class ArchiveRequested(Message):
        """The user wants a chat archived (``archived``) or back from the archive."""

        def __init__(self, chat_id: str, archived: bool) -> None:
            super().__init__()
            self.chat_id = chat_id
            self.archived = archived

    class MoreWanted(Message):
        """The highlight reached the end of a list that has more pages."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.archived = False
        """True while the list shows the archived chats (set with ``add_page(..., first=True)``)."""
        self._chats: dict[str, ChatSummary] = {}
        self.next_cursor: str | None = None
        """The ``before`` cursor of the next ``list_chats`` page; ``None`` when all are loaded."""
        self.current_chat_id: str | None = None
        """The chat open in the conversation pane, marked in the list."""

    @property
    def chats(self) -> list[ChatSummary]:
        """The chats as listed: pinned first, then newest first (the server's order, so pages join up)."""
        return in_list_order(self._chats.values())

    def chat(self, chat_id: str) -> ChatSummary | None:
        """The chat with that id, if listed."""
        return self._chats.get(chat_id)

    @property
    def highlighted_chat_id(self) -> str | None:
        """The id of the highlighted chat, if any."""
        if self.highlighted is None or not self.option_count:
            return None
        return self.get_option_at_index(self.highlighted).id

    def add_page(
        self, chats: list[ChatSummary], next_cursor: str | None, *, first: bool = False, archived: bool = False
    ) -> None:
        """Add a page of ``list_chats``; ``first`` replaces what was listed, with the list ``archived`` says."""
        if first:
            self._chats.clear()
            self.archived = archived
        for chat in chats:
            self._chats[chat.id] = chat
        self.next_cursor = next_cursor
        self._rebuild()

    def update_chat(self, chat: ChatSummary, *, deleted: bool = False) -> None:
        """Apply one ``chat_updated`` frame; a chat archived (or brought back) leaves this list for the other."""
        if deleted or chat.archived != self.archived:
            self._chats.pop(chat.id, None)
        else:
            self._chats[chat.id] = chat
        self._rebuild()

    def mark_current(self, chat_id: str | None) -> None:
        """Mark the chat open in the conversation pane."""
        self.current_chat_id = chat_id
        self._rebuild()

    def _rebuild(self) -> None:
        # While the user moves in the list, live updates keep their place;
        # otherwise the open chat is the highlighted one.
        if self.has_focus and self.highlighted_chat_id is not None:
            keep: str | None = self.highlighted_chat_id
        else:
            keep = self.current_chat_id
        # One line per chat: the title, cut with an ellipsis, and its age on the right,
        # so that chats of one title are told apart.
        width = max(self.scrollable_content_region.width - 2, 12) if self.is_mounted else 22
        now = datetime.now(UTC)
        options = []
        for chat in self.chats:
            marker = "▸ " if chat.id == self.current_chat_id else "  "
            pin = "★ " if chat.pinned else ""
            age = chat_age(chat.updated_at, now)
            title = _one_line(marker + pin + " ".join(chat.title.split()), width - cell_len(age) - 1)
            gap = " " * (width - cell_len(title) - cell_len(age))
            options.append(Option(Content.assemble(title, gap, (age, "dim")), id=chat.id))
        self.set_options(options)
        if keep is not None and keep in self._chats:
            self.highlighted = self.get_option_index(keep)
        elif self.has_focus and options:
            self.highlighted = 0  # as on focus: enter in the list always has a chat to open

    def on_resize(self) -> None:
        self._rebuild()

    def on_mount(self) -> None:
        self.set_interval(60, self._rebuild)  # the ages move on

    def on_focus(self) -> None:
        # So that enter opens a chat at once, even on a fresh start with no chat open.
        if self.highlighted is None and self.option_count:
            self.highlighted = 0

    async def on_key(self, event: events.Key) -> None:
        typing = event.is_printable and bool(event.character) and event.key not in self._bindings.key_to_bindings
        await pass_input_on(self, event, typing=typing)

    async def on_paste(self, event: events.Paste) -> None:
        await pass_input_on(self, event, typing=True)

    def action_select(self) -> None:
        # The chat opens in the message box: a message typed with the enter goes there, not to p and a here.
        if self.highlighted is not None:
            focus_message_box(self)
        super().action_select()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.Opened(event.option.id))

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if self.next_cursor is not None and event.option_index == self.option_count - 1:
            self.post_message(self.MoreWanted())

    def action_rename(self) -> None:
        if (chat_id := self.highlighted_chat_id) is not None:
            ask_the_app(self, self.RenameRequested(chat_id))

    def action_delete(self) -> None:
        if (chat_id := self.highlighted_chat_id) is not None:
            ask_the_app(self, self.DeleteRequested(chat_id))

    def action_pin(self) -> None:
        if (chat_id := self.highlighted_chat_id) is not None:
            self.post_message(self.PinRequested(chat_id, not self._chats[chat_id].pinned))

    def action_archive(self) -> None:
        if (chat_id := self.highlighted_chat_id) is not None:
            self.post_message(self.ArchiveRequested(chat_id, not self._chats[chat_id].archived))


def chat_age(updated_at: datetime, now: datetime) -> str:
    """How long ago a chat changed, in at most six cells: ``now``, ``5m``, ``3h``, ``6d``, ``12 Mar``, ``2024-03``."""
    seconds = (now - updated_at).total_seconds()
    if seconds < 60:
        return "now"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h"
    if seconds < 7 * 86400:
        return f"{int(seconds // 86400)}d"
    local = updated_at.astimezone()
    return local.strftime("%d %b") if local.year == now.astimezone().year else local.strftime("%Y-%m")


def _one_line(text: str, width: int) -> str:
    """``text`` on one line of at most ``width`` cells, ending with … when cut."""
    if cell_len(text) <= width:
        return text
    return set_cell_size(text, width - 1) + "…"
