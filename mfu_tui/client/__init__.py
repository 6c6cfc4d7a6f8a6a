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

``ChatClient`` (with websockets) is imported at its first use, not with the
package: the app draws its first screen with the package's states and
errors, and builds the client after it (``docs/benchmarks.md``, startup).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mfu_tui.client.backoff import Backoff
from mfu_tui.client.errors import ClientError, RequestError
from mfu_tui.client.events import MessageReloaded
from mfu_tui.client.session import REFUSED_FOR_GOOD, ChatSession
from mfu_tui.client.state import ConnectionState, Problem, Status

if TYPE_CHECKING:
    from mfu_tui.client.client import ChatClient, Event

    #: The seed's name for the same class.
    WebSocketManager = ChatClient

#: The names served by ``client.py``, imported when first asked for (with the seed's name for ``ChatClient``).
_FROM_CLIENT = {"ChatClient": "ChatClient", "Event": "Event", "WebSocketManager": "ChatClient"}

__all__ = [
    "REFUSED_FOR_GOOD",
    "Backoff",
    "ChatClient",
    "ChatSession",
    "ClientError",
    "ConnectionState",
    "Event",
    "MessageReloaded",
    "Problem",
    "RequestError",
    "Status",
    "WebSocketManager",
]


def __getattr__(name: str) -> Any:
    """``ChatClient``, ``Event`` and ``WebSocketManager``, from ``client.py`` at their first use."""
    if name not in _FROM_CLIENT:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from mfu_tui.client import client

    value = getattr(client, _FROM_CLIENT[name])
    globals()[name] = value  # asked for once
    return value
