"""Fan-out of frames to connections: per user and per chat.

Handlers and generations never loop over sockets themselves: they publish an
encoded frame to a user (all of that user's connections) or to a chat (the
connections subscribed to it), and the hub finds the receivers. The frame is
encoded once, whatever the number of receivers: as JSON by the publisher, then
as a WebSocket frame by the hub (``wire.text_frame``), whose bytes every
receiver writes as they are.

``LocalHub`` serves a single process. ``RedisHub`` (``redis_hub.py``) extends
it to several nodes: what one node publishes reaches the receivers of all.
"""

from __future__ import annotations

import abc
from collections import defaultdict
from collections.abc import Callable
from typing import Protocol

from mfu_tui.protocol import Chunk, decode_server
from mfu_tui.server.wire import WireFrame, text_frame

#: Called with ``(user, chat_id, message_id)`` when some node asks to stop a generation.
CancelHandler = Callable[[str, str, "str | None"], None]


class Receiver(Protocol):
    """What the hub delivers to: a connection's outgoing queue."""

    user: str

    def deliver(self, frame: WireFrame) -> None:
        """Queue one pushed frame (a live event), encoded for the wire, for sending; never blocks."""

    def reply(self, data: bytes) -> None:
        """Queue a frame answering the receiver's own frame (a result, a replay); never blocks."""


class Hub(abc.ABC):
    """Who receives what. Every method but ``start``, ``stop`` and ``sync`` is synchronous and never blocks."""

    #: What to do when a node asks to stop a generation (set by the server).
    on_cancel: CancelHandler | None = None
    #: What to do when the link to the other nodes breaks (set by the server).
    on_link_lost: Callable[[], None] | None = None
    #: False while the link to the other nodes is broken: this node must not take clients then.
    linked: bool = True
    #: Set by the server as its stop begins: another node's link closing then is no news (they stop together).
    node_stopping: bool = False

    @property
    def backlog(self) -> int:
        """Frames waiting to be sent to the other nodes (for the metrics; none for one node)."""
        return 0

    async def start(self) -> None:
        """Connect to whatever carries frames between nodes (nothing for one node)."""

    async def stop(self) -> None:
        """Disconnect from it; publishing afterwards reaches this node only."""

    async def sync(self) -> None:
        """Return once every subscription made so far also receives the other nodes' frames."""

    def request_cancel(self, user: str, chat_id: str, message_id: str | None) -> None:
        """Ask the other nodes to stop ``user``'s generation in ``chat_id`` (this node checked its own)."""

    @abc.abstractmethod
    def join(self, receiver: Receiver) -> None:
        """Register a new connection of ``receiver.user``."""

    @abc.abstractmethod
    def leave(self, receiver: Receiver) -> None:
        """Forget a closed connection and its subscriptions."""

    @abc.abstractmethod
    def subscribe(self, receiver: Receiver, chat_id: str) -> None:
        """Send ``chat_id``'s events to ``receiver`` too (the caller checked ownership)."""

    @abc.abstractmethod
    def hold(self, receiver: Receiver, chat_id: str) -> list[WireFrame]:
        """Subscribe ``receiver`` to ``chat_id`` but keep its frames of that chat in the returned list.

        For a replay that must come first: the caller sends it, then calls
        ``release`` and sends what was held, so the receiver gets everything in order.
        """

    @abc.abstractmethod
    def release(self, receiver: Receiver, chat_id: str, replayed: tuple[str, int] | None = None) -> list[WireFrame]:
        """Stop holding; returns the held frames (the caller delivers them), later ones go straight out.

        ``replayed`` is (message id, last seq) the replay sent: a copy of one of
        those chunks that reaches this node only now (stored before the replay
        read it, published after the hold ended) is not sent again.
        """

    @abc.abstractmethod
    def drop_chat(self, chat_id: str) -> None:
        """Forget every subscription to a deleted chat."""

    @abc.abstractmethod
    def publish_user(self, user: str, data: bytes) -> None:
        """Deliver ``data`` to every connection of ``user``."""

    @abc.abstractmethod
    def publish_chat(self, chat_id: str, data: bytes) -> None:
        """Deliver ``data`` to every connection subscribed to ``chat_id``."""

    @abc.abstractmethod
    def connections(self, user: str) -> list[Receiver]:
        """The live connections of ``user``."""


class LocalHub(Hub):
    """The in-process hub: two dictionaries of sets."""

    def __init__(self) -> None:
        self._by_user: dict[str, set[Receiver]] = defaultdict(set)
        self._by_chat: dict[str, set[Receiver]] = defaultdict(set)
        self._chats_of: dict[Receiver, set[str]] = defaultdict(set)
        #: (receiver, chat id) -> frames held back during a replay (see ``hold``).
        self._held: dict[tuple[Receiver, str], list[WireFrame]] = {}
        #: (receiver, chat id) -> (message id, last seq) a replay sent, until a later chunk of it passes.
        self._replayed: dict[tuple[Receiver, str], tuple[str, int]] = {}

    def join(self, receiver: Receiver) -> None:
        self._by_user[receiver.user].add(receiver)

    def leave(self, receiver: Receiver) -> None:
        users = self._by_user.get(receiver.user)
        if users is not None:
            users.discard(receiver)
            if not users:
                del self._by_user[receiver.user]
        for chat_id in self._chats_of.pop(receiver, ()):
            self._held.pop((receiver, chat_id), None)
            self._replayed.pop((receiver, chat_id), None)
            subscribers = self._by_chat.get(chat_id)
            if subscribers is not None:
                subscribers.discard(receiver)
                if not subscribers:
                    del self._by_chat[chat_id]

    def subscribe(self, receiver: Receiver, chat_id: str) -> None:
        self._by_chat[chat_id].add(receiver)
        self._chats_of[receiver].add(chat_id)

    def hold(self, receiver: Receiver, chat_id: str) -> list[WireFrame]:
        held = self._held.setdefault((receiver, chat_id), [])
        self.subscribe(receiver, chat_id)
        return held

    def release(self, receiver: Receiver, chat_id: str, replayed: tuple[str, int] | None = None) -> list[WireFrame]:
        if replayed is not None:
            self._replayed[(receiver, chat_id)] = replayed
        return self._held.pop((receiver, chat_id), [])

    def drop_chat(self, chat_id: str) -> None:
        for receiver in self._by_chat.pop(chat_id, ()):
            self._chats_of[receiver].discard(chat_id)
            self._held.pop((receiver, chat_id), None)
            self._replayed.pop((receiver, chat_id), None)

    def publish_user(self, user: str, data: bytes) -> None:
        receivers = self._by_user.get(user)
        if receivers:
            frame = text_frame(data)
            for receiver in list(receivers):
                receiver.deliver(frame)

    def publish_chat(self, chat_id: str, data: bytes) -> None:
        receivers = self._by_chat.get(chat_id)
        if not receivers:
            return
        frame = text_frame(data)
        for receiver in list(receivers):
            if self._replayed and self._sent_already((receiver, chat_id), data):
                continue
            held = self._held.get((receiver, chat_id)) if self._held else None
            if held is None:
                receiver.deliver(frame)
            else:
                held.append(frame)

    def _sent_already(self, key: tuple[Receiver, str], data: bytes) -> bool:
        """True for a chunk a replay to this receiver covered; a later chunk of that answer ends the check."""
        mark = self._replayed.get(key)
        if mark is None:
            return False
        frame = decode_server(data)
        message_id, last_seq = mark
        if not isinstance(frame, Chunk) or frame.message_id != message_id:
            if getattr(frame, "message_id", None) == message_id:
                del self._replayed[key]  # its end: nothing of it can come after
            return False
        if frame.seq <= last_seq:
            return True
        del self._replayed[key]
        return False

    def connections(self, user: str) -> list[Receiver]:
        return list(self._by_user.get(user, ()))
