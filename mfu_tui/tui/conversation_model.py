"""``ConversationModel``: what the app knows about its chats besides their messages, with no Textual.

The conversation pane shows one chat's messages (``ChatWindow`` holds them);
this holds the rest the app decides by: which chat is open, or being
created by a first message; which answer runs in which chat (the app
follows answers in every chat it hears of, so that going back to one shows
``esc`` when an answer still runs there); and, while a chat loads, the
events about it that came meanwhile, to show after its messages in the
order they came. The app's handlers change it and then show it
(``ChatApp.chat_id``, ``ChatApp.generating``, the pane); it is plain code,
tested alone (``tests/tui/test_conversation_model.py``).
"""

from __future__ import annotations

from typing import Generic, TypeVar

#: What is held while a chat loads (the app's events about that chat).
Held = TypeVar("Held")


class ConversationModel(Generic[Held]):
    """The open chat, the chat being created, the chat loading and what waits for it, the answers running."""

    def __init__(self) -> None:
        self.open_chat: str | None = None
        """The chat shown; ``None`` for a new chat not created yet."""
        self.creating: str | None = None
        """The ``clientMessageId`` of the message creating the new chat, once sent."""
        self.loading: str | None = None
        """The chat whose messages are being loaded, if any."""
        self._held: list[Held] = []
        self._running: dict[str, str] = {}

    # --- which chat ----------------------------------------------------------

    def open(self, chat_id: str) -> None:
        """Open ``chat_id`` (again): it loads, and what comes about it meanwhile is held."""
        if chat_id != self.open_chat:
            self.open_chat = chat_id
            self.creating = None
        self.loading = chat_id
        self._held = []

    def start_new(self) -> None:
        """Show a new chat, created by the first message sent in it."""
        self.open_chat = self.creating = self.loading = None
        self._held = []

    def sending(self, client_message_id: str) -> None:
        """A message is sent in the open chat: if the chat is new, that message creates it."""
        if self.open_chat is None:
            self.creating = client_message_id

    def not_sent(self, client_message_id: str) -> None:
        """The message could not be kept to send: it creates nothing."""
        if self.creating == client_message_id:
            self.creating = None

    def created(self, client_message_id: str, chat_id: str) -> bool:
        """The server made ``chat_id`` for a message; True if that is the new chat open here (it is open now)."""
        if client_message_id != self.creating or self.open_chat is not None:
            return False
        self.open_chat, self.creating = chat_id, None
        return True

    # --- loading -----------------------------------------------------------------

    def hold(self, chat_id: str, item: Held) -> bool:
        """Keep ``item`` about ``chat_id`` until the chat has loaded; False (not kept) if it is not loading."""
        if chat_id != self.loading:
            return False
        self._held.append(item)
        return True

    def loaded(self, chat_id: str) -> list[Held] | None:
        """``chat_id``'s messages came: what was held for it, in order; ``None`` if another chat is opened since."""
        if chat_id != self.loading:
            return None
        return self._release()

    def not_loaded(self, chat_id: str) -> list[Held]:
        """``chat_id`` could not be loaded: what was held for it, in order (none if another chat is loading)."""
        return self._release() if chat_id == self.loading else []

    def _release(self) -> list[Held]:
        held, self._held, self.loading = self._held, [], None
        return held

    # --- answers ---------------------------------------------------------------

    def running(self, chat_id: str | None) -> str | None:
        """The answer being written in ``chat_id``, if any."""
        return None if chat_id is None else self._running.get(chat_id)

    def is_running(self, message_id: str | None) -> bool:
        """``message_id`` is an answer being written, in any chat."""
        return message_id is not None and message_id in self._running.values()

    @property
    def generating(self) -> str | None:
        """The answer being written in the open chat, if any."""
        return self.running(self.open_chat)

    def answer_runs(self, chat_id: str, message_id: str | None) -> None:
        """``message_id`` is the answer being written in ``chat_id`` now (``None``: no answer is)."""
        if message_id is None:
            self._running.pop(chat_id, None)
        else:
            self._running[chat_id] = message_id
