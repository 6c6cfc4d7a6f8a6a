"""``ClientSettings``: how the client keeps its connection, each default written once.

``ChatClient`` takes them whole; the app holds them in ``AppSettings.client``
and the config file's ``heartbeat_*`` settings are kept in them, so a
setting such as the heartbeat interval has one name and one default on its
way from the file to the socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict


@dataclass(frozen=True)
class ClientSettings:
    """How the client connects, checks its connection and waits.

    A silent network (no FIN, no RST) is noticed within ``probe_after +
    probe_timeout`` while the server owes the client a frame (an answer
    streaming, a message, an edit, a cancel or a request unanswered), and
    within ``ping_interval + ping_timeout`` otherwise; after a pause of this
    process or the machine (SIGSTOP, a closed lid), within ``probe_timeout``
    of waking.
    """

    data_dir: Path | None = None
    """Where the outbox (and the read cache) lives; ``None``: the platform's user data directory."""
    ping_interval: float = 25.0
    """Seconds between the client's JSON pings (one also measures the round trip the dot shows)."""
    ping_timeout: float = 10.0
    """Seconds to wait for a ping's ``pong`` before the connection is dropped and made again."""
    probe_after: float = 3.0
    """Seconds without a frame while the server owes one after which the client pings at once (a probe).

    Waking this much later than planned (a pause) sends a probe too."""
    probe_timeout: float = 5.0
    """Seconds to wait for a probe's ``pong`` before the connection is dropped and made again."""
    request_timeout: float = 15.0
    """Seconds a request (``list_chats``...) waits for its answer."""
    open_timeout: float = 10.0
    """Seconds one attempt may take to open the WebSocket."""
    offline_after: float = 30.0
    """Seconds of failed attempts after which ``RECONNECTING`` turns ``DISCONNECTED`` (it keeps trying)."""


class ClientOptions(TypedDict, total=False):
    """``ClientSettings``' fields as ``ChatClient``'s keyword arguments (``ping_interval=0.5``).

    The names and types only: the defaults are ``ClientSettings``' (a test
    checks that the two list the same fields).
    """

    data_dir: Path | None
    ping_interval: float
    ping_timeout: float
    probe_after: float
    probe_timeout: float
    request_timeout: float
    open_timeout: float
    offline_after: float
