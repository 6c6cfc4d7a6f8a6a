"""The one-line header: app name, who is signed in where, and the status dot."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from mfu_tui.tui.widgets.status_dot import StatusDot

#: After the title of a chat read from the copy kept on disk (offline).
KEPT_MARK = "kept copy"
_BEFORE_MARK = " · "


class ChatTitle(Widget):
    """The open chat's title on one line, cut with an ellipsis to its width, and the kept-copy mark after it.

    The title is cut first: the mark says the chat may be out of date, and went with the title's
    end at 80 columns when it was part of its text.
    """

    DEFAULT_CSS = "ChatTitle { height: 1; }"

    title: reactive[str] = reactive("")
    """The title of the open chat ("" for a new chat)."""

    kept: reactive[bool] = reactive(False)
    """Whether the chat shown is the copy kept on disk."""

    def render(self) -> Text:
        width = self.content_region.width
        line = Text(self.title, no_wrap=True, end="")
        if self.kept:
            room = width - len(_BEFORE_MARK + KEPT_MARK)
            if self.title and room >= 2:  # a letter of the title and "…" at least
                line.truncate(room, overflow="ellipsis")
                line.append(_BEFORE_MARK + KEPT_MARK)
            else:
                line = Text(KEPT_MARK, no_wrap=True, end="")
        line.truncate(width, overflow="ellipsis")
        return line


class AppHeader(Horizontal):
    """The top line of the app.

    Shows ``mfu-chat``, the open chat's title (and ``KEPT_MARK`` while it
    is the kept copy), ``user@host`` and the connection's ``StatusDot`` on
    the right.
    """

    DEFAULT_CSS = """
    AppHeader {
        height: 1;
        dock: top;
        background: $panel;
        padding: 0 1;
        #app-name { width: auto; text-style: bold; color: $accent; padding-right: 1; }
        #chat-title { width: 1fr; color: $text-muted; }
        #identity { width: auto; padding: 0 1; color: $text-muted; }
    }
    """

    chat_title: reactive[str] = reactive("")
    """The title of the open chat ("" for a new chat)."""

    kept_copy: reactive[bool] = reactive(False)
    """Whether the open chat is shown from the copy kept on disk (offline)."""

    identity: reactive[str] = reactive("")
    """``user@host`` of the connection, or the server's label (``local · demo model``)."""

    def __init__(self, identity: str, *, plain: bool = False, id: str | None = None) -> None:
        """
        Args:
            identity: ``user@host`` of the connection.
            plain: Let the status dot write words instead of a coloured symbol.
            id: The widget id.
        """
        super().__init__(id=id)
        self.set_reactive(AppHeader.identity, identity)
        self._plain = plain

    def compose(self) -> ComposeResult:
        yield Static("mfu-chat", id="app-name", markup=False)
        yield ChatTitle(id="chat-title")
        yield Static(self.identity, id="identity", markup=False)
        yield StatusDot(plain=self._plain, id="status-dot")

    def watch_chat_title(self, title: str) -> None:
        if self.is_mounted:
            self.query_one(ChatTitle).title = title

    def watch_kept_copy(self, kept: bool) -> None:
        if self.is_mounted:
            self.query_one(ChatTitle).kept = kept

    def watch_identity(self, identity: str) -> None:
        if self.is_mounted:
            self.query_one("#identity", Static).update(identity)
