"""The connection state a chat UI shows: a coloured dot and a few words."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.Enum):
    """Where the connection worker is.

    The UI colours: ``CONNECTED`` green, ``CONNECTING`` and ``RECONNECTING``
    yellow, ``DISCONNECTED`` red.
    """

    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True)
class ConnectionState:
    """One snapshot of the connection, replaced (never mutated) on every change.

    Attributes:
        status: Where the worker is.
        retry_at: ``loop.time()`` of the next attempt while ``RECONNECTING``, or
            while ``DISCONNECTED`` because the server has been unreachable for a
            while (the worker still tries; ``None`` when it has stopped for good).
        last_error: Why the last connection or attempt failed, in plain words.
        reason: Why the connection is down, while ``DISCONNECTED`` (for example
            ``"auth refused: token expired"``, ``"closed by user"`` or
            ``"server unreachable: connection refused"``).
        rtt: The last ping/pong round trip in seconds, ``None`` before the first pong.
    """

    status: Status
    retry_at: float | None = None
    last_error: str | None = None
    reason: str | None = None
    rtt: float | None = None

    def retry_in(self, now: float) -> float | None:
        """Seconds until the next attempt (never negative), or ``None`` if none is planned.

        Args:
            now: The current ``loop.time()``.
        """
        if self.retry_at is None:
            return None
        return max(0.0, self.retry_at - now)
