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
"""

from mfu_tui.client.backoff import Backoff
from mfu_tui.client.client import ChatClient, Event
from mfu_tui.client.errors import ClientError, RequestError
from mfu_tui.client.events import MessageReloaded
from mfu_tui.client.session import REFUSED_FOR_GOOD, ChatSession
from mfu_tui.client.settings import ClientSettings
from mfu_tui.client.state import ConnectionState, Problem, Status

#: The seed's name for the same class.
WebSocketManager = ChatClient

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
    "Problem",
    "RequestError",
    "Status",
    "WebSocketManager",
]
