"""The connection status dot in the header."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Static

from mfu_tui.client import ConnectionState, Status
from mfu_tui.tui.status_text import LocalStart, describe_local_start, describe_state


class StatusDot(Static):
    """A coloured dot and a few words for the state of the connection.

    Green ``● 12 ms`` when connected (with the last round-trip time), yellow
    ``● server storage unavailable`` while the server says it cannot store
    anything (its own words in the tooltip), yellow
    ``● retry in 3 s`` while reconnecting (counting down), red
    ``● offline: <reason>`` when the client gave up. With ``plain`` it writes
    ``[online 12 ms]``, ``[reconnecting in 3 s]``, ``[offline: <reason>]``.
    Before the client has a server, the local server's start:
    ``● starting local server``, or red ``● offline: local server not started``.
    """

    DEFAULT_CSS = """
    StatusDot {
        width: auto;
        height: 1;
        color: $text-muted;
        &.-ok { color: $success; }
        &.-warning { color: $warning; }
        &.-error { color: $error; }
    }
    """

    state: reactive[ConnectionState | None] = reactive(None)
    """The client's connection state; ``None`` before the client started."""

    plain: reactive[bool] = reactive(False)
    """Write bracketed words instead of a coloured dot."""

    waiting: reactive[int] = reactive(0)
    """Messages waiting in the outbox (said while signed out)."""

    local_start: reactive[LocalStart | None] = reactive(None)
    """The local server's start, said instead of ``state`` until the client has a server; ``None`` then."""

    def __init__(
        self,
        *,
        plain: bool = False,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__("", markup=False, name=name, id=id, classes=classes)
        self.set_reactive(StatusDot.plain, plain)
        self.clock: Callable[[], float] | None = None
        """The clock of ``ConnectionState.retry_at`` (default: the event loop's).

        Replaced only to make screenshots reproducible."""
        self._countdown: Timer | None = None

    def on_mount(self) -> None:
        self._countdown = self.set_interval(1.0, self._refresh_text, pause=True)
        self._refresh_text()

    def watch_state(self) -> None:
        self._refresh_text()

    def watch_plain(self) -> None:
        self._refresh_text()

    def watch_waiting(self) -> None:
        self._refresh_text()

    def watch_local_start(self) -> None:
        self._refresh_text()

    def _now(self) -> float:
        if self.clock is not None:
            return self.clock()
        import asyncio

        return asyncio.get_running_loop().time()

    def _refresh_text(self) -> None:
        if not self.is_mounted:
            return
        state = self.state
        if self._countdown is not None:
            if state is not None and state.status is Status.RECONNECTING:
                self._countdown.resume()
            else:
                self._countdown.pause()
        if self.local_start is not None:
            text, tone = describe_local_start(self.local_start, plain=self.plain)
        elif state is None:
            self.update("[starting]" if self.plain else "○ starting")
            self.remove_class("-ok", "-warning", "-error")
            return
        else:
            text, tone = describe_state(state, self._now(), plain=self.plain, waiting=self.waiting)
        self.update(text)
        words = state.storage_unavailable if state is not None and state.status is Status.CONNECTED else None
        self.tooltip = None if words is None else Text(words)  # the server's words: never read as markup
        self.remove_class("-ok", "-warning", "-error")
        self.add_class(f"-{tone}")
