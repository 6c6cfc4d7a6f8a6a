"""The connection worker of mfu-chat: one asyncio task that holds the WebSocket.

``ChatSession`` holds the rules of the conversation with no I/O;
``ChatClient`` drives it over the socket, the clock and the outbox file.

It reconnects with backoff, heartbeats, keeps user messages on disk until
the server acknowledges them, and hands over every streamed chunk once and
in order. No Textual here: the app subscribes to it, and any program can use
it as a library (see ``docs/client.md``)::

    client = ChatClient(url="ws://127.0.0.1:5001/ws", token=token)
    client.on_message(print)
    await client.connect()

``ChatClient`` (with websockets) and ``ChatSession`` are imported at their
first use, not with the package: the app draws its first screen with the
package's states and errors, and makes the client after it
(``docs/benchmarks.md``, startup).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mfu_tui.client.backoff import Backoff
from mfu_tui.client.errors import REFUSED_FOR_GOOD, ClientError, RequestError
from mfu_tui.client.events import MessageReloaded, MessageTextLoaded
from mfu_tui.client.settings import ClientSettings
from mfu_tui.client.state import ConnectionState, Problem, Status

if TYPE_CHECKING:
    from mfu_tui.client.client import ChatClient, Event
    from mfu_tui.client.session import ChatSession

    #: The seed's name for the same class.
    WebSocketManager = ChatClient

#: The names imported when first asked for: (module, name in it); ``WebSocketManager`` is the seed's name.
_LAZY = {
    "ChatClient": ("client", "ChatClient"),
    "Event": ("client", "Event"),
    "WebSocketManager": ("client", "ChatClient"),
    "ChatSession": ("session", "ChatSession"),
}

__all__ = [
    "REFUSED_FOR_GOOD",
    "Backoff",
    "ChatClient",
    "ChatSession",
    "ClientError",
    "ClientSettings",
    "ConnectionState",
    "Event",
    "MessageReloaded",
    "MessageTextLoaded",
    "Problem",
    "RequestError",
    "Status",
    "WebSocketManager",
]


def __getattr__(name: str) -> Any:
    """The names of ``_LAZY``, imported at their first use."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
    globals()[name] = value  # imported once
    return value
