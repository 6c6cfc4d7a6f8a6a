"""The one-line header: app name, who is signed in where, and the status dot."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import Static

from mfu_tui.tui.widgets.status_dot import StatusDot


class AppHeader(Horizontal):
    """The top line of the app.

    Shows ``mfu-chat``, the open chat's title, ``user@host`` and the
    connection's ``StatusDot`` on the right.
    """

    DEFAULT_CSS = """
    AppHeader {
        height: 1;
        dock: top;
        background: $panel;
        padding: 0 1;
        #app-name { width: auto; text-style: bold; color: $accent; padding-right: 1; }
        #chat-title { width: 1fr; color: $text-muted; text-overflow: ellipsis; text-wrap: nowrap; }
        #identity { width: auto; padding: 0 1; color: $text-muted; }
    }
    """

    chat_title: reactive[str] = reactive("")
    """The title of the open chat ("" for a new chat)."""

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
        yield Static("", id="chat-title", markup=False)
        yield Static(self.identity, id="identity", markup=False)
        yield StatusDot(plain=self._plain, id="status-dot")

    def watch_chat_title(self, title: str) -> None:
        if self.is_mounted:
            self.query_one("#chat-title", Static).update(title)

    def watch_identity(self, identity: str) -> None:
        if self.is_mounted:
            self.query_one("#identity", Static).update(identity)
