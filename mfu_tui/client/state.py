"""The connection state a chat UI shows: a coloured dot and a few words."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.Enum):
    """Where the connection worker is.

    The UI colours: ``CONNECTED`` green (yellow while the server's storage is
    unavailable, ``ConnectionState.storage_unavailable``), ``CONNECTING`` and
    ``RECONNECTING`` yellow, ``DISCONNECTED`` red.
    """

    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DISCONNECTED = "disconnected"


class Problem(enum.Enum):
    """Why the connection is down: what a UI chooses its words and its next step by.

    The worker stops for good on every kind except ``UNREACHABLE`` (a network
    or a server can come back; a wrong address or a refused token cannot).
    """

    NOT_STARTED = "not connected yet"
    """``connect()`` was not called yet."""
    CLOSED = "closed"
    """``close()`` was called."""
    TOKEN_REFUSED = "token refused"
    """The server refused the token (HTTP 401/403, close codes 4401/4403): a new token is needed."""
    ACCOUNT_DELETED = "account deleted"
    """The server's operator deleted this account's data (close code 4410): the client's copy of the chats
    is forgotten too; connecting again starts the account afresh."""
    UNREACHABLE = "unreachable"
    """Attempts have failed for ``offline_after`` seconds; the worker keeps trying."""
    NO_WEBSOCKET = "no websocket"
    """The address answers HTTP but not as a WebSocket chat server (404, 200...): the path or port is wrong."""
    TLS_MISMATCH = "no tls"
    """``wss://`` to a server that does not speak TLS: ``ws://`` is needed."""
    BAD_ADDRESS = "bad address"
    """The URL cannot be used (``http://``, no host...)."""
    INTERNAL = "internal error"
    """A bug in the worker."""


@dataclass(frozen=True)
class ConnectionState:
    """One snapshot of the connection, replaced (never mutated) on every change.

    Attributes:
        status: Where the worker is.
        retry_at: ``loop.time()`` of the next attempt while ``RECONNECTING``, or
            while ``DISCONNECTED`` because the server has been unreachable for a
            while (the worker still tries; ``None`` when it has stopped for good).
        last_error: Why the last connection or attempt failed, in plain words.
        reason: Why the connection is down, while ``DISCONNECTED``, in words with
            the URL (token masked) and what to do (for example
            ``"auth refused: token expired"``, ``"closed by user"`` or
            ``"server unreachable at ws://host:5001/ws: connection refused"``).
        problem: The kind of ``reason``, while ``DISCONNECTED``: what a UI
            acts on (never parse ``reason``).
        rtt: The last ping/pong round trip in seconds, ``None`` before the first pong.
        storage_unavailable: While ``CONNECTED``, the server's words (control characters
            stripped) while it says it cannot store anything (``server_status``): messages
            wait and go once it can. ``None`` while it can.
        checking: While ``CONNECTED``, True while a probe waits for its ``pong``
            (``ClientSettings.probe_after``) for more than a second: the server
            owes a frame and has been silent for a while. Its pong makes it
            False; its timeout, ``RECONNECTING``.
    """

    status: Status
    retry_at: float | None = None
    last_error: str | None = None
    reason: str | None = None
    problem: Problem | None = None
    rtt: float | None = None
    storage_unavailable: str | None = None
    checking: bool = False

    def retry_in(self, now: float) -> float | None:
        """Seconds until the next attempt (never negative), or ``None`` if none is planned.

        Args:
            now: The current ``loop.time()``.
        """
        if self.retry_at is None:
            return None
        return max(0.0, self.retry_at - now)
