"""Fan-out of frames to connections: per user and per chat.

Handlers and generations never loop over sockets themselves: they publish an
encoded frame to a user (all of that user's connections) or to a chat (the
connections subscribed to it), and the hub finds the receivers. The frame is
encoded once, whatever the number of receivers.

``LocalHub`` serves a single process. A hub shared between processes (Redis
pub/sub, say) would implement the same ``Hub`` interface.
"""

from __future__ import annotations

import abc
from collections import defaultdict
from typing import Protocol


class Receiver(Protocol):
    """What the hub delivers to: a connection's outgoing queue."""

    user: str

    def deliver(self, data: bytes) -> None:
        """Queue one pushed frame (a live event) for sending; never blocks."""

    def reply(self, data: bytes) -> None:
        """Queue a frame answering the receiver's own frame (a result, a replay); never blocks."""


class Hub(abc.ABC):
    """Who receives what. Every method is synchronous and never blocks."""

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

    def join(self, receiver: Receiver) -> None:
        self._by_user[receiver.user].add(receiver)

    def leave(self, receiver: Receiver) -> None:
        users = self._by_user.get(receiver.user)
        if users is not None:
            users.discard(receiver)
            if not users:
                del self._by_user[receiver.user]
        for chat_id in self._chats_of.pop(receiver, ()):
            subscribers = self._by_chat.get(chat_id)
            if subscribers is not None:
                subscribers.discard(receiver)
                if not subscribers:
                    del self._by_chat[chat_id]

    def subscribe(self, receiver: Receiver, chat_id: str) -> None:
        self._by_chat[chat_id].add(receiver)
        self._chats_of[receiver].add(chat_id)

    def drop_chat(self, chat_id: str) -> None:
        for receiver in self._by_chat.pop(chat_id, ()):
            self._chats_of[receiver].discard(chat_id)

    def publish_user(self, user: str, data: bytes) -> None:
        for receiver in list(self._by_user.get(user, ())):
            receiver.deliver(data)

    def publish_chat(self, chat_id: str, data: bytes) -> None:
        for receiver in list(self._by_chat.get(chat_id, ())):
            receiver.deliver(data)

    def connections(self, user: str) -> list[Receiver]:
        return list(self._by_user.get(user, ()))
