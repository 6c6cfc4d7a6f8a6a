"""What the app needs to start: the server, the token, and a few choices.

The command line builds an ``AppSettings`` today; a config file can fill the
same fields later (and an embedded server can provide ``url`` and
``token``), without the app changing.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


@dataclass
class AppSettings:
    """Settings of the terminal app."""

    url: str
    """The server's WebSocket URL, e.g. ``ws://127.0.0.1:5001/ws``."""
    token: str
    """The JWT sent to the server."""
    data_dir: Path | None = None
    """Where the client keeps its outbox (default: the user data directory)."""
    export_dir: Path = field(default_factory=Path.cwd)
    """Where exported chats are written."""
    plain: bool | None = None
    """Words instead of coloured symbols; ``None`` decides from the terminal."""
    cursor_blink: bool = True
    """Blink the text cursor in the message box."""
    window: int = 12
    """How many messages get widgets when a chat opens, and per load of older ones.

    A Markdown message is many widgets (about 50 ms each to build), so this
    bounds the time to open a chat whatever its length."""
    keymap: dict[str, str] = field(default_factory=dict)
    """Binding id to keys, to remap keys (see the help screen, F1)."""
    ping_interval: float = 25.0
    """Seconds between heartbeats."""
    ping_timeout: float = 10.0
    """Seconds to wait for a heartbeat's answer."""
    request_timeout: float = 15.0
    """Seconds to wait for the answer to a request."""

    @property
    def identity(self) -> str:
        """``user@host`` for the header: the token's user and the server's host."""
        return f"{token_user(self.token) or '?'}@{urlsplit(self.url).hostname or '?'}"


def normalize_url(url: str) -> str:
    """Add the ``/ws`` path to a bare server URL (the seed's ``VITE_WS_URL`` has none)."""
    parts = urlsplit(url)
    if parts.path in ("", "/"):
        return parts._replace(path="/ws").geturl()
    return url


def token_user(token: str) -> str | None:
    """The user named in a JWT (``sub``, else ``username``), read without checking it.

    Only for display: the server is the one that checks the token.
    """
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    user = claims.get("sub") or claims.get("username") if isinstance(claims, dict) else None
    return str(user) if user else None
