"""``ChatSession``: the rules of one client's conversation with the server, with no I/O.

Like websockets' ``Protocol`` (and ``StreamTracker``, which it wraps), it
neither reads nor writes anything: no socket, no disk, no clock. Its driver
(``ChatClient``) tells it what happened, the connection coming and going
(``connected``, ``lost``), a frame received (``receive``), the user's
intents (``post``, ``edit``, ``cancel``, ``subscribe``), the time passing
(``tick``), and each call returns an ``Outcome``: the frames to send now, in
order, and typed events for the driver to act on (forget a message from the
outbox file, hand a chunk to the UI, report an error).

It owns the rules of a message's life:

- **Outbox order.** Messages to one chat go one at a time, in the order
  posted: the next waits for the previous one's ``ack`` and for the end of
  the answer it started (the server refuses a message to a chat that is
  generating). One message creating a new chat is in flight at a time.
- **In flight and resend.** A message sent on a connection that drops, or
  left by an earlier process, is sent again after the next connect; after
  its ``ack`` its answer is resumed, since part of it may have gone by.
- **Refusals.** An ``error`` naming an in-flight message refuses it: for
  good (``REFUSED_FOR_GOOD``: it leaves the outbox), or for now
  (``conflict``, ``rate_limited``, ``unavailable``: tried again after ``RETRY_AFTER``
  seconds, or as soon as the chat's answer ends; ``unavailable`` ones also as
  soon as a ``server_status`` says the server's storage is ``ok`` again,
  ``conflict`` ones as soon as a ``chat_updated`` names their chat).
- **Files first.** A message's files go up a part at a time, each part
  waiting for its ``attachment_ack``, before the message itself.
- **Edits and cancels** are sent again after every connect until answered (a
  ``message_edited`` or an ``error`` naming the edit; the end of the chat's
  answer for a cancel). A dropped connection is never a cancel.
- **Streams.** Each chunk is handed over once, in order, with its end last
  (``StreamTracker``); a gap asks for a ``resume``; a ``resync`` asks the
  driver to reload the message (``ReloadNeeded``, then ``reloaded``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from mfu_tui.client.errors import REFUSED_FOR_GOOD
from mfu_tui.client.events import MessageReloaded
from mfu_tui.client.outbox import OutboxEntry, PendingEdit, PendingFile
from mfu_tui.client.streams import StreamTracker
from mfu_tui.protocol import (
    Ack,
    AttachmentAck,
    Cancel,
    Cancelled,
    ChatCreated,
    ChatUpdated,
    Chunk,
    ClientFrame,
    Complete,
    EditMessage,
    Error,
    Message,
    MessageEdited,
    Resync,
    ServerFrame,
    ServerStatus,
    StoredMessage,
    Subscribe,
)

log = logging.getLogger("mfu_tui.client")

#: Seconds before a message refused for now is tried again (any code not
#: named here waits as ``rate_limited``); a chat's held message also goes as
#: soon as the running answer in that chat ends.
RETRY_AFTER = {"conflict": 2.0, "unavailable": 5.0, "rate_limited": 10.0}


@dataclass(frozen=True, slots=True)
class UploadPart:
    """A part of a message's file to send next, as an ``attachment_part`` from ``offset`` on.

    The driver reads the bytes (kept beside the outbox) and sends the part;
    if the kept copy is gone it calls ``ChatSession.file_missing``.
    """

    client_message_id: str
    file: PendingFile
    offset: int


#: What an ``Outcome`` asks the driver to send.
Outgoing = ClientFrame | UploadPart


@dataclass(frozen=True, slots=True)
class MessageAcked:
    """The server stored an outbox message (the first ``ack`` of it): it leaves the outbox."""

    ack: Ack


@dataclass(frozen=True, slots=True)
class MessageRefused:
    """An outbox message will never be accepted: it leaves the outbox.

    ``code`` is the server's error code, or ``None`` when the client gave
    it up itself (a file kept for it is gone).
    """

    client_message_id: str
    chat_id: str | None
    code: str | None


@dataclass(frozen=True, slots=True)
class MessageDeferred:
    """The server refused an outbox message for now (``conflict``, ``rate_limited``); it is sent again later."""

    client_message_id: str
    chat_id: str | None
    code: str
    #: The time (on the clock ``receive`` was given) of the next try at the latest.
    retry_at: float


@dataclass(frozen=True, slots=True)
class EditSettled:
    """An edit of this client was confirmed or refused: it leaves the outbox."""

    client_edit_id: str


@dataclass(frozen=True, slots=True)
class ErrorReceived:
    """An ``error`` frame to report (or to hand to the request it answers, ``error.request_id``).

    ``client_message_id`` names the outbox message it refused, if any.
    """

    error: Error
    client_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class AnswerChunks:
    """Chunks of an answer to hand over, each once, in ``seq`` order."""

    chunks: tuple[Chunk, ...]


@dataclass(frozen=True, slots=True)
class AnswerEnded:
    """An answer ended; handed over once, after its last chunk."""

    end: Complete | Cancelled

    @property
    def reason(self) -> str:
        """How it ended: the ``complete`` frame's ``finish_reason`` (``stop``, ``length``...) or ``cancelled``."""
        return self.end.finish_reason if isinstance(self.end, Complete) else "cancelled"


@dataclass(frozen=True, slots=True)
class FrameReceived:
    """A server frame the session has no rule for beyond passing it on (``chat_created``, ``message_edited``...)."""

    frame: ServerFrame


@dataclass(frozen=True, slots=True)
class ReloadNeeded:
    """A ``resync``: the driver loads the stored message and calls ``ChatSession.reloaded``."""

    chat_id: str
    message_id: str


@dataclass(frozen=True, slots=True)
class ServerStorage:
    """A ``server_status``: whether the server can store anything now, and its words for people.

    While it cannot, every message is refused for now (``unavailable``); once
    it can again, those messages have been sent already, in the same ``Outcome``.
    """

    available: bool
    message: str


#: What an ``Outcome`` tells the driver, in order.
SessionEvent = (
    MessageAcked
    | MessageRefused
    | MessageDeferred
    | EditSettled
    | ErrorReceived
    | AnswerChunks
    | AnswerEnded
    | FrameReceived
    | ReloadNeeded
    | MessageReloaded
    | ServerStorage
)


@dataclass(slots=True)
class Outcome:
    """What one call led to: frames to send now, in order, and events to act on, in order."""

    frames: list[Outgoing] = field(default_factory=list)
    events: list[SessionEvent] = field(default_factory=list)


@dataclass
class _Upload:
    """The files of one in-flight message, going up one part at a time."""

    entry: OutboxEntry
    files: list[PendingFile]
    #: The file being sent now.
    index: int = 0

    @property
    def file(self) -> PendingFile:
        """The file being sent now."""
        return self.files[self.index]

    def awaits(self, client_attachment_id: str) -> bool:
        """Whether the last part sent was of this file (its ack moves the upload on)."""
        return self.file.client_attachment_id == client_attachment_id


class ChatSession:
    """The session rules of one client, fed by a driver that does the I/O.

    Args:
        pending: The outbox's messages, oldest first (an earlier process's,
            or adopted from another slot): sent after the first connect.
        edits: The outbox's edits not confirmed yet, likewise.
    """

    def __init__(self, pending: Iterable[OutboxEntry] = (), edits: Iterable[PendingEdit] = ()) -> None:
        self._online = False
        #: The outbox, as the driver keeps it on disk: messages not yet acknowledged nor refused, oldest first.
        self._outbox: dict[str, OutboxEntry] = {entry.client_message_id: entry for entry in pending}
        #: Chats to (re)subscribe after every connect, in order.
        self._chats: dict[str, None] = {}
        #: Outbox messages sent on this connection and not yet answered: id -> chat (``None``: a new chat).
        self._inflight: dict[str, str | None] = {}
        #: Messages sent on an earlier connection or by an earlier process: after their
        #: ack the answer is resumed, since part of it may have gone by.
        self._resent: set[str] = set(self._outbox)
        #: Chats with an answer being generated, so their next message waits: chat -> the
        #: answer's id, or ``None`` when only a refusal (``conflict``) said one runs.
        self._generating: dict[str, str | None] = {}
        #: When a message refused for now is tried again, and its chat released, with the refusal's code.
        self._retries: list[tuple[float, str | None, str]] = []
        #: The files of in-flight messages going up, by ``clientMessageId``.
        self._uploads: dict[str, _Upload] = {}
        #: Edits not confirmed yet, by ``clientEditId``: sent again after every connect.
        self._edits: dict[str, EditMessage] = {edit.client_edit_id: _edit_frame(edit) for edit in edits}
        #: Edits sent on an earlier connection or by an earlier process: after their
        #: ``message_edited`` the regenerated answer is resumed.
        self._edits_resent: set[str] = set(self._edits)
        #: Cancels not answered yet (by the end of that chat's answer, or ``not_found``), by chat:
        #: sent again after every connect, since a connection that died unnoticed may have swallowed them.
        self._cancels: dict[str, Cancel] = {}
        self._streams = StreamTracker()

    # --- What the driver asks ------------------------------------------------

    @property
    def online(self) -> bool:
        """Whether a connection is up (between ``connected`` and ``lost``)."""
        return self._online

    @property
    def pending(self) -> list[OutboxEntry]:
        """The outbox's messages, oldest first."""
        return list(self._outbox.values())

    @property
    def in_flight(self) -> list[str]:
        """``clientMessageId`` of the messages sent on this connection and not answered yet."""
        return list(self._inflight)

    @property
    def awaiting(self) -> bool:
        """Whether the server owes this client a frame: an answer streams, or a message, edit or cancel is unanswered.

        A silence then means more than a quiet server: the driver checks the
        connection at once (``ClientSettings.probe_after``).
        """
        return bool(self._inflight or self._generating or self._edits or self._cancels or self._streams.in_flight())

    @property
    def wake_at(self) -> float | None:
        """When ``tick`` has something to do (a refused message to try again), or ``None``."""
        return min(at for at, _, _ in self._retries) if self._retries else None

    # --- The connection --------------------------------------------------------

    def connected(self) -> Outcome:
        """A connection is up: bring it up to date (subscriptions, resumes, edits, cancels, the outbox)."""
        self._online = True
        frames: list[Outgoing] = [Subscribe(chat_id=chat_id) for chat_id in self._chats]
        for resume in self._streams.resumes():
            log.info("resuming message %s after seq %d", resume.message_id, resume.last_seq)
            frames.append(resume)
        frames += [*self._edits.values(), *self._cancels.values()]
        frames += self._pump()
        return Outcome(frames)

    def lost(self) -> None:
        """The connection is gone: what was in flight on it goes again after the next connect.

        Nothing is cancelled by it: answers are resumed, cancels stay what the user asked.
        """
        self._online = False
        self._resent.update(self._inflight)
        self._edits_resent.update(self._edits)
        self._inflight.clear()
        self._uploads.clear()  # started again after the reconnect, from what the server holds

    # --- The user's intents ----------------------------------------------------

    def post(self, entry: OutboxEntry) -> Outcome:
        """A message written to the outbox: send it when its chat is free."""
        self._outbox[entry.client_message_id] = entry
        outcome = Outcome()
        if entry.chat_id is not None and entry.chat_id not in self._chats:
            # See the chat's answers end, which is when its next message may go.
            outcome = self.subscribe(entry.chat_id)
        outcome.frames += self._pump()
        return outcome

    def subscribe(self, chat_id: str) -> Outcome:
        """Follow a chat's events, now and after every reconnect."""
        self._chats[chat_id] = None
        return self._now(Subscribe(chat_id=chat_id))

    def forget_chat(self, chat_id: str) -> None:
        """A chat was deleted: stop subscribing to it."""
        self._chats.pop(chat_id, None)

    def cancel(self, frame: Cancel) -> Outcome:
        """Stop a chat's answer: sent now and after every reconnect until that answer ends."""
        self._cancels[frame.chat_id] = frame
        return self._now(frame)

    def edit(self, frame: EditMessage) -> Outcome:
        """An edit written to the outbox (it has a ``clientEditId``): sent until confirmed or refused."""
        if frame.client_edit_id is None:
            raise ValueError("an edit the session resends needs a clientEditId, so the server applies it once")
        self._edits[frame.client_edit_id] = frame
        return self._now(frame)

    def tick(self, now: float) -> Outcome:
        """Time passed: try again the messages refused for now whose wait is over."""
        return Outcome(self._retry(lambda at, chat, code: at <= now))

    # --- What the driver saw ---------------------------------------------------

    def receive(self, frame: ServerFrame, now: float) -> Outcome:
        """Take one server frame (not a ``pong``, nor a ``result`` the driver was waiting for).

        Args:
            frame: The decoded frame, its strings already cleaned.
            now: The driver's clock, for the time of a retry.
        """
        if isinstance(frame, (Chunk, Complete, Cancelled)):  # first: nearly every frame is a chunk
            return self._on_stream(frame)
        if isinstance(frame, Error):
            return self._on_error(frame, now)
        if isinstance(frame, Ack):
            return self._on_ack(frame)
        if isinstance(frame, AttachmentAck):
            return self._on_attachment_ack(frame)
        if isinstance(frame, Resync):
            reload = self._streams.start_reload(frame.message_id)
            return Outcome(events=[ReloadNeeded(frame.chat_id, frame.message_id)] if reload else [])
        if isinstance(frame, MessageEdited):
            return self._on_edited(frame)
        if isinstance(frame, ServerStatus):
            return self._on_status(frame)
        if isinstance(frame, ChatCreated):
            self._chats[frame.chat_id] = None
        if isinstance(frame, ChatUpdated):
            return self._on_chat_updated(frame)
        return Outcome(events=[FrameReceived(frame)])

    def reloaded(self, chat_id: str, message_id: str, stored: StoredMessage | None) -> Outcome:
        """The message a ``resync`` named, as now stored (``None``: it is gone)."""
        if stored is None:
            self._streams.reloaded(chat_id, message_id, content="", seq=0, streaming=False)
            return self._online_only(Outcome(self._answer_ended(chat_id, message_id)))
        streaming = stored.status == "streaming"
        resume = self._streams.reloaded(
            chat_id, message_id, content=stored.content, seq=stored.seq, streaming=streaming, reasoning=stored.reasoning
        )
        reloaded = MessageReloaded(
            chat_id, message_id, stored.content, stored.status, stored.finish_reason, reasoning=stored.reasoning
        )
        frames = [resume] if resume is not None else self._answer_ended(chat_id, message_id)
        return self._online_only(Outcome(list(frames), [reloaded]))

    def reload_failed(self, message_id: str) -> None:
        """The reload failed: the message is resumed after the next reconnect, as before the ``resync``."""
        self._streams.reload_failed(message_id)

    def file_missing(self, client_message_id: str) -> Outcome:
        """A file kept for an in-flight message is gone: the message can never be sent whole."""
        self._uploads.pop(client_message_id, None)
        self._inflight.pop(client_message_id, None)
        self._resent.discard(client_message_id)
        entry = self._outbox.pop(client_message_id, None)
        if entry is None:
            return Outcome()
        return Outcome(self._pump(), [MessageRefused(client_message_id, entry.chat_id, None)])

    # --- The rules -------------------------------------------------------------

    def _on_ack(self, frame: Ack) -> Outcome:
        entry = self._outbox.pop(frame.client_message_id, None)
        self._inflight.pop(frame.client_message_id, None)
        self._chats[frame.chat_id] = None
        self._cancels.pop(frame.chat_id, None)  # a new answer: an older cancel must not stop it
        if self._streams.expect(frame.chat_id, frame.reply_id):
            self._generating[frame.chat_id] = frame.reply_id
        # An ack of a message no longer in the outbox repeats one taken already: nothing new to tell.
        outcome = Outcome(events=[MessageAcked(frame)] if entry is not None else [])
        if frame.client_message_id in self._resent:
            # Sent before this connection: part of the answer may have gone by.
            self._resent.discard(frame.client_message_id)
            outcome.frames += self._streams.resumes_for(frame.reply_id)
        outcome.frames += self._pump()
        return self._online_only(outcome)

    def _on_error(self, frame: Error, now: float) -> Outcome:
        outcome = Outcome()
        if frame.code == "not_found" and frame.chat_id is not None:
            self._cancels.pop(frame.chat_id, None)
            if frame.message_id is not None and self._streams.gone(frame.message_id):
                # A resume of an answer whose chat was deleted: it ends here, not at every reconnect.
                outcome.frames += self._answer_ended(frame.chat_id, frame.message_id, refusal_too=False)
        if frame.client_edit_id is not None:  # refused: sending it again would be refused again
            if self._edits.pop(frame.client_edit_id, None) is not None:
                outcome.events.append(EditSettled(frame.client_edit_id))
            self._edits_resent.discard(frame.client_edit_id)
        refused = frame.client_message_id if frame.client_message_id in self._inflight else None
        if refused is not None:
            self._refused(refused, frame, now, outcome)
            if frame.code == "conflict":
                return self._online_only(outcome)  # sent again when the running answer ends: nothing to tell
        outcome.events.append(ErrorReceived(frame, refused))
        return self._online_only(outcome)

    def _refused(self, client_message_id: str, frame: Error, now: float, outcome: Outcome) -> None:
        chat = self._inflight.pop(client_message_id)
        self._uploads.pop(client_message_id, None)  # a refused part refuses its message
        if frame.code in REFUSED_FOR_GOOD:
            self._resent.discard(client_message_id)
            self._outbox.pop(client_message_id, None)
            outcome.events.append(MessageRefused(client_message_id, chat, frame.code))
            outcome.frames += self._pump()
            return
        retry_at = now + RETRY_AFTER.get(frame.code, RETRY_AFTER["rate_limited"])
        self._resent.add(client_message_id)
        if chat is not None:
            self._generating[chat] = None
        self._retries.append((retry_at, chat, frame.code))
        outcome.events.append(MessageDeferred(client_message_id, chat, frame.code, retry_at))

    def _on_status(self, frame: ServerStatus) -> Outcome:
        available = frame.storage == "ok"
        # Its storage is back: what it refused for want of it goes now, not after the fixed wait.
        frames = self._retry(lambda at, chat, code: code == "unavailable") if available else []
        return Outcome(frames, [ServerStorage(available, frame.message)])

    def _on_chat_updated(self, frame: ChatUpdated) -> Outcome:
        # The chat changed on the server: the answer that made it refuse a message as busy
        # (``conflict``) may be stored as ended now (its end stored once the database was
        # back, say). Trying at once costs at most another ``conflict``.
        chat_id = frame.chat.id
        frames = self._retry(lambda at, chat, code: code == "conflict" and chat == chat_id)
        return Outcome(frames, [FrameReceived(frame)])

    def _retry(self, due: Callable[[float, str | None, str], bool]) -> list[Outgoing]:
        """Try again the messages refused for now for which ``due(retry_at, chat, code)``; returns what goes now."""
        released = [chat for at, chat, code in self._retries if due(at, chat, code)]
        if not released:
            return []
        self._retries = [(at, chat, code) for at, chat, code in self._retries if not due(at, chat, code)]
        for chat in released:
            if chat is not None and chat in self._generating and self._generating[chat] is None:
                del self._generating[chat]
        return self._pump()

    def _on_attachment_ack(self, frame: AttachmentAck) -> Outcome:
        upload = next((up for up in self._uploads.values() if up.awaits(frame.client_attachment_id)), None)
        if upload is None:  # a late one, from a connection gone or an upload refused
            return Outcome()
        client_message_id = upload.entry.client_message_id
        if frame.received < upload.file.size:
            return Outcome([UploadPart(client_message_id, upload.file, frame.received)])
        upload.index += 1
        if upload.index < len(upload.files):
            return Outcome([UploadPart(client_message_id, upload.file, 0)])
        del self._uploads[client_message_id]
        return Outcome([_message_frame(upload.entry, upload.files)])

    def _on_stream(self, frame: Chunk | Complete | Cancelled) -> Outcome:
        if not isinstance(frame, Chunk):
            self._cancels.pop(frame.chat_id, None)  # the answer ended: nothing left to cancel
        delivery = self._streams.feed(frame)
        outcome = Outcome()
        if delivery.chunks:
            outcome.events.append(AnswerChunks(tuple(delivery.chunks)))
        if delivery.end is not None:
            outcome.events.append(AnswerEnded(delivery.end))
        if delivery.resume is not None:
            log.info("gap in message %s: resuming after seq %d", frame.message_id, delivery.resume.last_seq)
            outcome.frames.append(delivery.resume)
        if not isinstance(frame, Chunk):
            outcome.frames += self._answer_ended(frame.chat_id, frame.message_id)
        return self._online_only(outcome)

    def _on_edited(self, frame: MessageEdited) -> Outcome:
        outcome = Outcome()
        if frame.client_edit_id is not None and self._edits.pop(frame.client_edit_id, None) is not None:
            outcome.events.append(EditSettled(frame.client_edit_id))
        if frame.reply_id is not None and self._streams.expect(frame.chat_id, frame.reply_id):
            # A regenerated answer: followed like an acked one, so a reconnect resumes it.
            self._generating[frame.chat_id] = frame.reply_id
        outcome.events.append(FrameReceived(frame))
        if frame.client_edit_id is not None and frame.client_edit_id in self._edits_resent:
            self._edits_resent.discard(frame.client_edit_id)
            if frame.reply_id is not None:  # sent before this connection: part of the answer may have gone by
                outcome.frames += self._streams.resumes_for(frame.reply_id)
        return self._online_only(outcome)

    def _answer_ended(self, chat_id: str, message_id: str, *, refusal_too: bool = True) -> list[Outgoing]:
        """A chat's answer ended: its next message may go. Returns what the outbox sends now.

        Args:
            refusal_too: Also release a chat held only by a refusal (any answer's end there means
                the one the server said was running is over).
        """
        if chat_id not in self._generating:
            return []
        running = self._generating[chat_id]
        if running != message_id and not (refusal_too and running is None):
            return []
        del self._generating[chat_id]
        return self._pump()

    def _pump(self) -> list[Outgoing]:
        """Send the first pending message of each chat that is free to take one."""
        if not self._online:
            return []
        frames: list[Outgoing] = []
        taken: set[str | None] = set(self._inflight.values()) | set(self._generating)
        for entry in self._outbox.values():
            if entry.chat_id in taken or entry.client_message_id in self._inflight:
                continue
            taken.add(entry.chat_id)
            self._inflight[entry.client_message_id] = entry.chat_id
            if entry.chat_id is not None:
                self._chats[entry.chat_id] = None
            files = entry.files()
            if files:  # its files go up first, each part waiting for its ack
                self._uploads[entry.client_message_id] = _Upload(entry, files)
                frames.append(UploadPart(entry.client_message_id, files[0], 0))
            else:
                frames.append(_message_frame(entry, files))
        return frames

    def _now(self, frame: ClientFrame) -> Outcome:
        """Send ``frame`` if a connection is up (else ``connected`` sends what is still needed)."""
        return Outcome([frame] if self._online else [])

    def _online_only(self, outcome: Outcome) -> Outcome:
        """Nothing is sent with no connection: ``connected`` sends what is still needed then."""
        if not self._online:
            outcome.frames.clear()
        return outcome


def _message_frame(entry: OutboxEntry, files: list[PendingFile]) -> Message:
    return Message(
        chat_id=entry.chat_id,
        client_message_id=entry.client_message_id,
        content=entry.content,
        model_id=entry.model_id,
        system_prompt=entry.system_prompt,
        params=entry.chat_params(),
        attachments=[file.client_attachment_id for file in files] or None,
    )


def _edit_frame(edit: PendingEdit) -> EditMessage:
    return EditMessage(
        chat_id=edit.chat_id,
        message_id=edit.message_id,
        content=edit.content,
        regenerate=edit.regenerate,
        client_edit_id=edit.client_edit_id,
    )
