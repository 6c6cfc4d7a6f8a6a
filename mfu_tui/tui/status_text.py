"""The words and colour of the status dot for a connection state.

Pure functions of the client's ``ConnectionState`` and the time, so the dot
widget stays a thin view and every state can be tested without a terminal.
"""

from __future__ import annotations

import enum
import math
from typing import Literal, NamedTuple

from mfu_tui.client import ConnectionState, Problem, Status

Tone = Literal["ok", "warning", "error"]

DOT = "●"

#: The words while connected to a server that says it cannot store anything.
STORAGE_UNAVAILABLE = "server storage unavailable"

#: The words while a probe waits for the server, silent in the middle of an answer (``ConnectionState.checking``).
CHECKING = "checking connection"

#: The words while an attempt to connect again is under way (``RECONNECTING`` with no ``retry_at``).
ATTEMPT = "connecting again"

#: The header's words for why the client stopped (the notification says the rest).
OFFLINE_WORDS: dict[Problem, str] = {
    Problem.NOT_STARTED: "not connected",
    Problem.CLOSED: "closed",
    Problem.TOKEN_REFUSED: "signed out",
    Problem.ACCOUNT_DELETED: "account deleted",
    Problem.UNREACHABLE: "unreachable",
    Problem.NO_WEBSOCKET: "no chat server there",
    Problem.TLS_MISMATCH: "no TLS there",
    Problem.BAD_ADDRESS: "bad address",
    Problem.INTERNAL: "internal error",
}


class StatusText(NamedTuple):
    """What the status dot shows."""

    text: str
    """The words, with the dot in front unless plain."""
    tone: Tone
    """Green, yellow or red; the widget maps it to a CSS class."""


def describe_state(state: ConnectionState, now: float, *, plain: bool = False, waiting: int = 0) -> StatusText:
    """The status dot's text for ``state`` at time ``now``.

    Args:
        state: The client's connection state.
        now: The current time on the clock of ``state.retry_at`` (the event loop's).
        plain: Use bracketed words instead of the coloured dot (no colour,
            ``TERM=dumb`` or a non-UTF-8 locale).
        waiting: Messages in the outbox; said while signed out, since only a sign-in sends them.

    Returns:
        For example ``● 12 ms`` / ``[online 12 ms]``, ``● checking connection``, ``● server storage
        unavailable`` / ``[server storage unavailable]``, ``● retry in 3 s:
        connection refused`` / ``[reconnecting in 3 s: connection refused]``,
        ``● connecting again`` / ``[connecting again]``, ``● offline: signed out`` / ``[offline: signed out]``.
    """
    if state.status is Status.CONNECTED and state.checking:
        # The server owes a frame and has been silent: it may be gone, the probe will tell within seconds.
        return _text("warning", CHECKING, CHECKING, plain)
    if state.status is Status.CONNECTED and state.storage_unavailable is not None:
        # Connected, but nothing can be stored: messages wait (the tooltip has the server's words).
        return _text("warning", STORAGE_UNAVAILABLE, STORAGE_UNAVAILABLE, plain)
    if state.status is Status.CONNECTED:
        rtt = f" {format_rtt(state.rtt)}" if state.rtt is not None else ""
        return _text("ok", f"online{rtt}", f"online{rtt}", plain)
    if state.status is Status.CONNECTING:
        return _text("warning", "connecting", "connecting", plain)
    if state.status is Status.RECONNECTING:
        remaining = state.retry_in(now)
        if remaining is None or remaining <= 0:
            # An attempt is under way (or due): said, so the next wait, which may be longer, starts a new count.
            return _text("warning", ATTEMPT, ATTEMPT, plain)
        # Why it failed, so a wrong port reads "connection refused", not a bare countdown.
        why = f": {short_reason(state.last_error)}" if state.last_error else ""
        seconds = math.ceil(remaining)
        return _text("warning", f"retry in {seconds} s{why}", f"reconnecting in {seconds} s{why}", plain)
    words = OFFLINE_WORDS.get(state.problem, "disconnected") if state.problem else "disconnected"
    if state.problem is Problem.UNREACHABLE and state.last_error:
        words = f"{words}: {short_reason(state.last_error)}"
    if state.problem is Problem.TOKEN_REFUSED and waiting:
        words = f"{words}: {waiting} waiting"
    return _text("error", f"offline: {words}", f"offline: {words}", plain)


def next_change(state: ConnectionState, now: float) -> float | None:
    """Seconds from ``now`` until ``describe_state`` says another number of seconds, or ``None`` if it counts none.

    The count shows the whole seconds left, rounded up: it changes each time
    the time left crosses a whole second, so each number is on screen for a
    full second, the last one (``1 s``) included.
    """
    if state.status is not Status.RECONNECTING:
        return None
    remaining = state.retry_in(now)
    if remaining is None or remaining <= 0:
        return None
    return remaining - (math.ceil(remaining) - 1)


class LocalStart(enum.Enum):
    """Where the start of the local server is, before the client has a server to connect to."""

    STARTING = "starting local server"
    """Being started or joined, in a thread: what is typed meanwhile waits in the outbox."""
    FAILED = "local server not started"
    """It did not start; a notification says why, and the reconnect key tries again."""


def describe_local_start(start: LocalStart, *, plain: bool = False) -> StatusText:
    """The status dot's text while the local server starts (``● starting local server``) or after it failed."""
    if start is LocalStart.STARTING:
        return _text("warning", start.value, start.value, plain)
    return _text("error", f"offline: {start.value}", f"offline: {start.value}", plain)


def short_reason(error: str) -> str:
    """The first clause of an attempt's words (``server answered HTTP 503: busy`` -> ``server answered HTTP 503``).

    The words of an attempt never hold the URL (the state's ``reason`` does):
    the notification shown with it gives the whole story.
    """
    return error.split(":", 1)[0].strip() or error


def format_rtt(rtt: float) -> str:
    """A round trip in whole milliseconds, ``<1 ms`` below one."""
    milliseconds = rtt * 1000
    if milliseconds < 1:
        return "<1 ms"
    return f"{round(milliseconds)} ms"


def _text(tone: Tone, symbolic: str, plain_words: str, plain: bool) -> StatusText:
    if plain:
        return StatusText(f"[{plain_words}]", tone)
    return StatusText(f"{DOT} {symbolic}", tone)
