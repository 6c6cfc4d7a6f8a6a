"""``ClientEvents``: what the client reports, posted to the app as typed Textual Messages, in order.

The client calls back with the protocol's frames (``ChatClient.on_message``);
the app wants to know what happened to its chats: an answer grew, ended,
a message was stored... ``ClientEvents`` makes one Message of each frame the
app shows and posts it to the app, as posting's workers post theirs, so the
app handles them with ``@on`` handlers, one at a time, in the order they
came. The chat a worker loaded is posted the same way (``post``), so it is
shown in its place among the frames.

Chunks come far faster than the screen can show them. A chunk joins the
``AnswerChunks`` posted before it while the app has not reached that one yet
(and nothing else was posted since): every chunk already waiting becomes one
append, at most ``BATCH_CHARS`` (sixteen segments), so the work follows
what the app can take, not what the server sends.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.message import Message

from mfu_tui.client import MessageReloaded, MessageTextLoaded
from mfu_tui.protocol import (
    Ack,
    AttachmentInfo,
    Cancelled,
    ChatDetail,
    ChatSettings,
    ChatUpdated,
    Chunk,
    Complete,
    ServerFrame,
)
from mfu_tui.protocol import ChatCreated as ChatCreatedFrame
from mfu_tui.protocol import MessageEdited as MessageEditedFrame
from mfu_tui.protocol import UserMessage as UserMessageFrame
from mfu_tui.tui.endings import Ending
from mfu_tui.tui.widgets.message_view import BATCH_CHARS


class ClientEvents:
    """Posts the client's frames to the app as the Messages below, in the order they came.

    Args:
        post: Posts a Message to the app (``App.post_message``).
    """

    class ChatEvent(Message):
        """Something that happened in a chat."""

        def __init__(self, chat_id: str) -> None:
            super().__init__()
            self.chat_id = chat_id
            """The chat."""

    class AnswerChunks(ChatEvent):
        """Chunks of one answer that came one after the other, to show in one append.

        More join it until the app seals it (as it takes it) or another
        Message is posted after it.
        """

        def __init__(self, first: Chunk) -> None:
            super().__init__(first.chat_id)
            self.message_id = first.message_id
            """The answer."""
            self._chunks = [first]
            self._size = len(first.content)
            self._sealed = False

        @property
        def chunks(self) -> tuple[Chunk, ...]:
            """The chunks, in ``seq`` order."""
            return tuple(self._chunks)

        def seal(self) -> None:
            """Take no more chunks: the app is showing these."""
            self._sealed = True

        def join(self, chunk: Chunk) -> bool:
            """Add ``chunk`` if it is the next of the same answer and there is room; False if not added."""
            if self._sealed or self._size >= BATCH_CHARS:
                return False
            if (chunk.chat_id, chunk.message_id) != (self.chat_id, self.message_id):
                return False
            self._chunks.append(chunk)
            self._size += len(chunk.content)
            return True

    class AnswerEnded(ChatEvent):
        """An answer ended (after its last chunk)."""

        def __init__(self, end: Complete | Cancelled) -> None:
            super().__init__(end.chat_id)
            self.message_id = end.message_id
            """The answer."""
            self.ending = Ending.of(end)
            """How it ended."""

    class MessageStored(ChatEvent):
        """A message sent from here was stored by the server (its ``ack``); its answer begins."""

        def __init__(self, ack: Ack) -> None:
            super().__init__(ack.chat_id)
            self.client_message_id = ack.client_message_id
            """The id this app gave it."""
            self.message_id = ack.message_id
            """The id the server gave it."""
            self.reply_id = ack.reply_id
            """Its answer."""

    class ChatCreated(ChatEvent):
        """The server created a chat for a message (``chat_id``)."""

        def __init__(self, created: ChatCreatedFrame) -> None:
            super().__init__(created.chat_id)
            self.client_message_id = created.client_message_id
            """The message that created it."""
            self.title = created.title
            """Its title."""

    class ChatChanged(ChatEvent):
        """A chat was renamed, pinned, archived, given settings, had a message, or was deleted."""

        def __init__(self, updated: ChatUpdated) -> None:
            super().__init__(updated.chat.id)
            self.chat = updated.chat
            """The chat as it is now."""
            self.deleted = updated.deleted
            """True if it was deleted."""
            self.settings: ChatSettings | None = updated.settings
            """Its system prompt and parameters, when they changed."""

    class MessageEdited(ChatEvent):
        """A user message was edited (here or in another terminal)."""

        def __init__(self, edit: MessageEditedFrame) -> None:
            super().__init__(edit.chat_id)
            self.message_id = edit.message_id
            """The user message."""
            self.content = edit.content
            """Its new text."""
            self.reply_id = edit.reply_id
            """The new answer when it is answered again (what followed it was dropped), else ``None``."""

    class UserMessage(ChatEvent):
        """A user message was stored, perhaps sent from another terminal; its answer begins."""

        def __init__(self, frame: UserMessageFrame) -> None:
            super().__init__(frame.chat_id)
            self.message_id = frame.message_id
            """Its id."""
            self.client_message_id = frame.client_message_id
            """The id the sending app gave it (this app's own is known by it)."""
            self.content = frame.content
            """Its text."""
            self.attachments: list[AttachmentInfo] = frame.attachments
            """Its files."""
            self.reply_id = frame.reply_id
            """Its answer."""

    class Reloaded(ChatEvent):
        """An answer missed while the connection was away was loaded whole (after a ``resync``)."""

        def __init__(self, reloaded: MessageReloaded) -> None:
            super().__init__(reloaded.chat_id)
            self.message_id = reloaded.message_id
            """The answer."""
            self.content = reloaded.content
            """Its text so far."""
            self.reasoning = reloaded.reasoning
            """What the model reasoned so far."""
            self.ending = Ending.of_stored(reloaded.status, reloaded.finish_reason)
            """How it ended; ``None`` while it streams (its next chunks follow)."""

    class TextLoaded(ChatEvent):
        """The rest of a message that came cut (too long to send whole) was loaded."""

        def __init__(self, loaded: MessageTextLoaded) -> None:
            super().__init__(loaded.chat_id)
            self.message_id = loaded.message_id
            """The message."""
            self.content = loaded.content
            """Its whole text."""

    class ChatLoaded(ChatEvent):
        """A chat's newest messages came (posted by the worker that asked for them)."""

        def __init__(self, chat_id: str, detail: ChatDetail, *, kept: bool = False) -> None:
            super().__init__(chat_id)
            self.detail = detail
            """The chat and its newest page."""
            self.kept = kept
            """From the read cache: the server could not be asked."""

    class ChatNotLoaded(ChatEvent):
        """A chat's messages could not be loaded (nor found in the read cache)."""

    def __init__(self, post: Callable[[Message], bool]) -> None:
        self._post = post
        #: The chunks posted last, which the next chunk may join.
        self._open: ClientEvents.AnswerChunks | None = None
        self.posted = 0
        """How many Messages were posted so far (``ChatApp.settled`` waits for them)."""

    def frame(self, frame: ServerFrame | MessageReloaded | MessageTextLoaded) -> None:
        """Post the Message of a frame from the client (``ChatClient.on_message``); frames the app does not show go."""
        if isinstance(frame, Chunk):
            if self._open is None or not self._open.join(frame):
                self.post(self.AnswerChunks(frame))
            return
        message = self._message_of(frame)
        if message is not None:
            self.post(message)

    def post(self, message: ChatEvent) -> None:
        """Post ``message`` after those posted before it (a chunk after it starts a new batch)."""
        self._open = message if isinstance(message, self.AnswerChunks) else None
        self.posted += 1
        self._post(message)

    def _message_of(self, frame: ServerFrame | MessageReloaded | MessageTextLoaded) -> ChatEvent | None:
        match frame:
            case Complete() | Cancelled():
                return self.AnswerEnded(frame)
            case Ack():
                return self.MessageStored(frame)
            case ChatCreatedFrame():
                return self.ChatCreated(frame)
            case ChatUpdated():
                return self.ChatChanged(frame)
            case MessageEditedFrame():
                return self.MessageEdited(frame)
            case UserMessageFrame():
                return self.UserMessage(frame)
            case MessageReloaded():
                return self.Reloaded(frame)
            case MessageTextLoaded():
                return self.TextLoaded(frame)
        return None
