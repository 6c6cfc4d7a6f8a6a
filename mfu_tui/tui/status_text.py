"""The words and colour of the status dot for a connection state.

Pure functions of the client's ``ConnectionState`` and the time, so the dot
widget stays a thin view and every state can be tested without a terminal.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

from mfu_tui.client import ConnectionState, Status

Tone = Literal["ok", "warning", "error"]

DOT = "●"


class StatusText(NamedTuple):
    """What the status dot shows."""

    text: str
    """The words, with the dot in front unless plain."""
    tone: Tone
    """Green, yellow or red; the widget maps it to a CSS class."""


def describe_state(state: ConnectionState, now: float, *, plain: bool = False) -> StatusText:
    """The status dot's text for ``state`` at time ``now``.

    Args:
        state: The client's connection state.
        now: The current time on the clock of ``state.retry_at`` (the event loop's).
        plain: Use bracketed words instead of the coloured dot (no colour,
            ``TERM=dumb`` or a non-UTF-8 locale).

    Returns:
        For example ``● 12 ms`` / ``[online 12 ms]``, ``● retry in 3 s`` /
        ``[reconnecting in 3 s]``, ``● offline: auth refused`` /
        ``[offline: auth refused]``.
    """
    if state.status is Status.CONNECTED:
        rtt = f" {format_rtt(state.rtt)}" if state.rtt is not None else ""
        return _text("ok", f"online{rtt}", f"online{rtt}", plain)
    if state.status is Status.CONNECTING:
        return _text("warning", "connecting", "connecting", plain)
    if state.status is Status.RECONNECTING:
        remaining = state.retry_in(now)
        if remaining is None or remaining <= 0:
            return _text("warning", "reconnecting", "reconnecting", plain)
        seconds = math.ceil(remaining)
        return _text("warning", f"retry in {seconds} s", f"reconnecting in {seconds} s", plain)
    reason = short_reason(state.reason or state.last_error or "disconnected")
    return _text("error", f"offline: {reason}", f"offline: {reason}", plain)


def short_reason(reason: str) -> str:
    """The first clause of a reason, for the header (``auth refused: ...`` -> ``auth refused``).

    The notification shown at the same time gives the whole reason.
    """
    return reason.split(":", 1)[0].strip() or reason


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
