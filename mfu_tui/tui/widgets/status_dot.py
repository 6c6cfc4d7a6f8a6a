"""The connection status dot in the header."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from rich.text import Text
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Static

from mfu_tui.client import ConnectionState, Status
from mfu_tui.tui.status_text import LocalStart, describe_local_start, describe_state, next_change

#: Seconds an attempt to connect again stays said, however soon it fails: the wait
#: planned after it, often longer than the last, then starts a count of its own.
ATTEMPT_SHOWN = 1.0


class StatusDot(Static):
    """A coloured dot and a few words for the state of the connection.

    Green ``● 12 ms`` when connected (with the last round-trip time), yellow
    ``● server storage unavailable`` while the server says it cannot store
    anything (its own words in the tooltip), yellow
    ``● retry in 3 s`` while reconnecting (counting down, a number a second),
    ``● connecting again`` for at least ``ATTEMPT_SHOWN`` as an attempt starts, red
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
        self._tick: Timer | None = None
        """Refreshes the words when the clock alone changes them (the count, the end of an attempt's words)."""
        self._attempt_until: float | None = None
        """Until when the words of the last attempt stay, while reconnecting."""

    def on_mount(self) -> None:
        self._refresh_text()

    def watch_state(self, state: ConnectionState | None) -> None:
        if state is None or state.status is not Status.RECONNECTING:
            self._attempt_until = None
        elif state.retry_at is None:
            self._attempt_until = self._now() + ATTEMPT_SHOWN
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

    def _shown(self, state: ConnectionState, now: float) -> tuple[ConnectionState, float | None]:
        """The state to describe at ``now``, and the seconds until the clock alone changes its words.

        An attempt that failed at once is still said until ``_attempt_until``:
        drawn or not in between, a count never goes from ``1 s`` to ``2 s``.
        """
        if self._attempt_until is not None and now < self._attempt_until:
            return replace(state, retry_at=None), self._attempt_until - now
        return state, next_change(state, now)

    def _on_tick(self) -> None:
        self._tick = None
        self._refresh_text()

    def _refresh_text(self) -> None:
        if not self.is_mounted:
            return
        state = self.state
        if self._tick is not None:
            self._tick.stop()
            self._tick = None
        if self.local_start is not None:
            text, tone = describe_local_start(self.local_start, plain=self.plain)
        elif state is None:
            self.update("[starting]" if self.plain else "○ starting")
            self.remove_class("-ok", "-warning", "-error")
            return
        else:
            now = self._now()
            shown, wait = self._shown(state, now)
            text, tone = describe_state(shown, now, plain=self.plain, waiting=self.waiting)
            if wait is not None:
                self._tick = self.set_timer(wait, self._on_tick)
        self.update(text)
        words = state.storage_unavailable if state is not None and state.status is Status.CONNECTED else None
        self.tooltip = None if words is None else Text(words)  # the server's words: never read as markup
        self.remove_class("-ok", "-warning", "-error")
        self.add_class(f"-{tone}")
