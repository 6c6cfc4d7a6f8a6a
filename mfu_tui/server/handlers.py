"""What the server does with each client frame.

One method per frame type. Every frame that names a chat or a message is
checked against the sender's own chats (the store's queries filter by user),
and a miss is always ``not_found``: another user's chat is indistinguishable
from one that never existed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from mfu_tui.protocol import (
    DEFAULT_MAX_ATTACHMENT_BYTES,
    MESSAGE_TEXT_PART_CHARS,
    Ack,
    AttachmentAck,
    AttachmentPart,
    Cancel,
    Cancelled,
    ChatCreated,
    ChatParams,
    ChatSettings,
    ChatSummary,
    ChatUpdated,
    Chunk,
    ChunkKind,
    ClientFrame,
    Complete,
    DeleteChat,
    EditMessage,
    ErrorCode,
    GetChat,
    GetMessageText,
    ImportChat,
    ImportResult,
    ListChats,
    ListModels,
    Message,
    MessageEdited,
    MessageText,
    ModelList,
    PageEdit,
    Ping,
    Pong,
    RenameChat,
    Result,
    Resume,
    Resync,
    Search,
    Subscribe,
    UpdateChat,
    UserMessage,
    decode_server,
    describe_size,
    encode,
    search_words,
)
from mfu_tui.server.generation import Generations
from mfu_tui.server.hub import Hub, Receiver
from mfu_tui.server.providers import ProviderError
from mfu_tui.server.providers.catalog import ModelCatalog
from mfu_tui.server.ratelimit import RateLimiter
from mfu_tui.server.store import (
    AttachmentsNotReady,
    BadCursor,
    ChatBusy,
    ChatChange,
    Edit,
    Exchange,
    ImportGap,
    MessageState,
    NotEditable,
    Store,
    UploadRefused,
    UploadTooLarge,
)
from mfu_tui.server.store.rows import new_id
from mfu_tui.server.wire import WireFrame, payload_of

log = logging.getLogger(__name__)

DEFAULT_PAGE = 50
#: A user's uploads not sent with a message yet may hold this many times what one message may:
#: room for a message refused for a while (rate limited) and the next one's files.
UNSENT_ATTACHMENTS_FACTOR = 2
#: Seconds after which an upload no message took is dropped (when the user starts another).
UNSENT_ATTACHMENT_LIFETIME = 24 * 3600
#: Hits of a ``search`` page unless the client asks for another number.
DEFAULT_SEARCH_PAGE = 20


#: The connection a frame came from.
Sender = Receiver


class FrameError(Exception):
    """Answer the frame with an ``error``; the connection stays open."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        request_id: str | None = None,
        chat_id: str | None = None,
        message_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id
        self.chat_id = chat_id
        self.message_id = message_id
        #: Set for errors answering a ``message``, so the client knows which one was refused.
        self.client_message_id: str | None = None
        #: Set for errors answering an ``edit_message`` that named itself, likewise.
        self.client_edit_id: str | None = None


def not_found(what: str, **where: Any) -> FrameError:
    return FrameError(ErrorCode.NOT_FOUND, f"{what} not found", **where)


class Handlers:
    """Frame handlers shared by every connection of the server."""

    def __init__(
        self,
        store: Store,
        hub: Hub,
        generations: Generations,
        catalog: ModelCatalog,
        limiter: RateLimiter,
        replay_window: float,
        *,
        storage_quota: int | None = None,
        max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
    ) -> None:
        self._store = store
        self._hub = hub
        self._generations = generations
        #: The provider's models, cached (``list_models``, the REST API, and checking a message's model).
        self.catalog = catalog
        self._limiter = limiter
        self._replay_window = replay_window
        #: Bytes of text one user may store (None: no quota).
        self._storage_quota = storage_quota
        #: Bytes the files of one message may hold together.
        self._max_attachment_bytes = max_attachment_bytes
        #: The messages being stored and started here, by (user, clientMessageId), each with the event set
        #: when that is done: the same message sent again meanwhile waits for it (see ``message``).
        self._handling: dict[tuple[str, str], asyncio.Event] = {}
        self._table: dict[type, Callable[[Sender, Any], Awaitable[None]]] = {
            Ping: self.ping,
            Message: self.message,
            AttachmentPart: self.attachment_part,
            Cancel: self.cancel,
            Resume: self.resume,
            EditMessage: self.edit_message,
            PageEdit: self.page_edit,
            Subscribe: self.subscribe,
            ListChats: self.list_chats,
            GetChat: self.get_chat,
            GetMessageText: self.get_message_text,
            RenameChat: self.rename_chat,
            UpdateChat: self.update_chat,
            DeleteChat: self.delete_chat,
            ListModels: self.list_models,
            Search: self.search,
            ImportChat: self.import_chat,
        }

    async def handle(self, sender: Sender, frame: ClientFrame) -> None:
        """Run the handler of ``frame``.

        Raises:
            FrameError: to be answered with an ``error`` frame.
        """
        await self._table[type(frame)](sender, frame)

    async def ping(self, sender: Sender, frame: Ping) -> None:
        sender.reply(encode(Pong(ts=frame.ts)))

    async def message(self, sender: Sender, frame: Message) -> None:
        # The seed's clients name no message: the server does, so the ack and
        # chat_created have an id to carry; a resend of such a message is a new one.
        client_message_id = frame.client_message_id or f"server-{new_id()}"
        # A copy of a message still being stored and started here (its first ack lost, the client sent it
        # again on a new connection) waits for the first: stored but not started yet, its answer would look
        # orphaned and be started twice, two answers writing one reply.
        key = (sender.user, client_message_id)
        while (first := self._handling.get(key)) is not None:
            await first.wait()
        done = self._handling[key] = asyncio.Event()
        try:
            await self._message(sender, frame, client_message_id)
        except FrameError as error:
            error.client_message_id = frame.client_message_id
            raise
        finally:
            del self._handling[key]
            done.set()

    async def _message(self, sender: Sender, frame: Message, client_message_id: str) -> None:
        user, chat_id = sender.user, frame.chat_id
        await self._check_model(frame)
        if chat_id is not None and await self._claim(sender, frame, client_message_id):
            return
        claimed, started, slot = chat_id, False, False
        try:
            exchange = await self._store.find_exchange(user, client_message_id)
            if exchange is not None:
                if not exchange.orphaned or not self._adopt(user, exchange, claimed):
                    sender.reply(_ack(client_message_id, exchange))
                    return
                claimed, slot = exchange.chat.id, True
                # Read while its answer may still have run here: ended since, its end stored, the chat let go.
                # Claimed now, nothing here can end it: read again.
                again = await self._store.find_exchange(user, client_message_id)
                if again is None or not again.orphaned:  # ended, or its chat deleted
                    sender.reply(_ack(client_message_id, again or exchange))
                    return
                exchange = again
                log.info("answer %s was stored but never started: starting it now", exchange.reply_id)
            else:
                await self._admit(user, frame)
                slot = True
                exchange = await self._record(user, frame, client_message_id)
            sender.reply(_ack(client_message_id, exchange))
            if exchange.duplicate and not exchange.orphaned:  # the same id raced in from another connection
                return
            self._show_everywhere(sender, frame, exchange, client_message_id)
            model_id = frame.model_id or exchange.chat.model_id
            self._generations.start(
                user, exchange.chat.id, exchange.reply_id, model_id, exchange.history, exchange.settings
            )
            started = True
        finally:
            if slot and not started:
                self._generations.free_slot(user)
            if claimed is not None and not started:
                self._generations.release(claimed)

    def _adopt(self, user: str, exchange: Exchange, claimed: str | None) -> bool:
        """Take the chat and an answer slot to start an ``orphaned`` exchange's answer; False if it runs here.

        Args:
            claimed: The chat this message's frame named, claimed already by the caller.

        Raises:
            FrameError: all the user's answer slots are taken (the client sends the message again later).
        """
        chat_id = exchange.chat.id
        if chat_id != claimed and self._generations.claim(chat_id, user) != "claimed":
            return False  # started by the first try of the message, whose storing just ended
        if not self._generations.take_slot(user):
            if chat_id != claimed:
                self._generations.release(chat_id)
            raise self._too_many_answers("this one starts when one of them ends", chat_id=chat_id)
        return True

    async def _check_model(self, frame: Message) -> None:
        """Refuse a model this server does not have, naming those it has."""
        if frame.model_id is None:
            return
        available = await self.catalog.unknown(frame.model_id)
        if available is not None:
            raise FrameError(
                ErrorCode.BAD_REQUEST,
                f"unknown model {frame.model_id!r}: this server has {', '.join(available) or 'none'}",
                chat_id=frame.chat_id,
            )

    async def _claim(self, sender: Sender, frame: Message, client_message_id: str) -> bool:
        """Take the chat for this message's answer; True if the message was answered already (its ack again).

        The owner first, before anything else: a claim taken on someone else's
        chat would refuse its owner's messages, and a rate limit answered
        before the owner check would tell a chat that exists from one that does not.
        """
        user, chat_id = sender.user, frame.chat_id
        assert chat_id is not None
        if self._generations.live(chat_id, user) is None and await self._store.chat(user, chat_id) is None:
            raise not_found("chat", chat_id=chat_id)
        claim = self._generations.claim(chat_id, user)
        if claim == "foreign":
            raise not_found("chat", chat_id=chat_id)
        if claim != "busy":
            return False
        # A retry of the message that started this very generation is not a conflict: it gets its ack again.
        known = await self._store.find_exchange(user, client_message_id)
        if known is None:
            raise FrameError(ErrorCode.CONFLICT, "an answer is still being generated in this chat", chat_id=chat_id)
        sender.reply(_ack(client_message_id, known))
        return True

    async def _admit(self, user: str, frame: Message) -> None:
        """Let the message in: its files, the storage quota, then one of the user's answer slots, then the rate.

        The slot is taken before the rate limit: the client sends a message
        refused for its slot again later, and waiting for an answer to end
        must not spend its budget. The caller frees the slot if the answer
        does not start.
        """
        chat_id = frame.chat_id
        if frame.attachments:
            await self._check_attachments(user, frame.attachments, chat_id=chat_id)
        await self._check_quota(user, chat_id=chat_id)
        if not self._generations.take_slot(user):
            raise self._too_many_answers("this one starts when one of them ends", chat_id=chat_id)
        if not self._limiter.allow(user):
            self._generations.free_slot(user)
            raise self._rate_limited(user, chat_id=chat_id)

    async def _record(self, user: str, frame: Message, client_message_id: str) -> Exchange:
        """Store the message and its empty answer (the chat too, for a first message)."""
        # Only a message that creates a chat carries settings (the frame does not decode otherwise).
        settings = None
        if frame.system_prompt is not None or frame.params is not None:
            settings = ChatSettings(system_prompt=frame.system_prompt, params=frame.params or ChatParams())
        try:
            exchange = await self._store.record_message(
                user,
                frame.chat_id,
                frame.content,
                client_message_id,
                frame.model_id,
                settings=settings,
                attachments=frame.attachments,
            )
        except ChatBusy as busy:  # generating on another node
            raise FrameError(ErrorCode.CONFLICT, str(busy), chat_id=frame.chat_id) from None
        except AttachmentsNotReady as error:  # taken by another message since the check
            raise FrameError(ErrorCode.BAD_REQUEST, str(error), chat_id=frame.chat_id) from None
        if exchange is None:
            raise not_found("chat", chat_id=frame.chat_id)
        return exchange

    def _show_everywhere(self, sender: Sender, frame: Message, exchange: Exchange, client_message_id: str) -> None:
        """Tell the sender of a new chat, follow the chat, and show the message on every terminal of the user."""
        user, chat = sender.user, exchange.chat
        if exchange.created:
            sender.reply(encode(ChatCreated(chat_id=chat.id, title=chat.title, client_message_id=client_message_id)))
        self._hub.subscribe(sender, chat.id)
        self.announce(user, chat)
        stored = UserMessage(
            chat_id=chat.id,
            message_id=exchange.user_message_id,
            client_message_id=client_message_id,
            content=frame.content,
            created_at=datetime.now(UTC),
            reply_id=exchange.reply_id,
            attachments=[file.info() for file in exchange.history[-1].attachments],
        )
        self._hub.publish_user(user, encode(stored))

    async def _check_attachments(self, user: str, keys: list[str], **where: Any) -> None:
        """Refuse a message whose files are not all the user's, whole, unsent, and within the bound.

        Raises:
            FrameError: ``not_found`` (none of the user's), ``bad_request`` (not whole, or
                sent already) or ``too_large`` (more than one message may hold).
        """
        uploads = await self._store.uploads(user, keys)
        for key in keys:
            upload = uploads.get(key)
            if upload is None:
                raise not_found(f"attachment {key!r}", **where)
            if upload.sent:
                raise FrameError(ErrorCode.BAD_REQUEST, f"{upload.name!r} was sent with another message", **where)
            if not upload.whole:
                raise FrameError(
                    ErrorCode.BAD_REQUEST,
                    f"{upload.name!r} is not whole: {upload.received} of {upload.size} bytes received;"
                    " send the rest first",
                    **where,
                )
        total = sum(uploads[key].size for key in keys)
        if total > self._max_attachment_bytes:
            raise FrameError(
                ErrorCode.TOO_LARGE,
                f"the files of this message hold {describe_size(total)}:"
                f" at most {describe_size(self._max_attachment_bytes)}",
                **where,
            )

    async def attachment_part(self, sender: Sender, frame: AttachmentPart) -> None:
        """Store a part of a file if it is the next one; answer with the bytes held of it.

        Errors name the message the file goes with: they refuse that message.
        """
        try:
            await self._attachment_part(sender, frame)
        except FrameError as error:
            error.client_message_id = frame.client_message_id
            raise

    async def _attachment_part(self, sender: Sender, frame: AttachmentPart) -> None:
        user, limit = sender.user, self._max_attachment_bytes
        unsent_limit = UNSENT_ATTACHMENTS_FACTOR * limit
        if frame.size > limit:
            raise FrameError(
                ErrorCode.TOO_LARGE,
                f"{frame.name!r} is {describe_size(frame.size)}: a message may carry {describe_size(limit)}",
            )
        if frame.data:
            await self._check_quota(user)
        try:
            received = await self._store.store_part(
                user,
                frame,
                unsent_limit=unsent_limit,
                expire_before=time.time() - UNSENT_ATTACHMENT_LIFETIME,
            )
        except UploadTooLarge as error:
            raise FrameError(
                ErrorCode.TOO_LARGE,
                f"files not sent yet hold {describe_size(error.held)}; with {frame.name!r}"
                f" ({describe_size(frame.size)}) they would pass {describe_size(unsent_limit)}:"
                " send those messages first",
            ) from None
        except UploadRefused as error:
            raise FrameError(ErrorCode.BAD_REQUEST, str(error)) from None
        sender.reply(encode(AttachmentAck(client_attachment_id=frame.client_attachment_id, received=received)))

    def _rate_limited(self, user: str, **where: Any) -> FrameError:
        wait = max(1, math.ceil(self._limiter.retry_after(user)))
        return FrameError(ErrorCode.RATE_LIMITED, f"too many messages: try again in {wait} s", **where)

    async def _check_quota(self, user: str, **where: Any) -> None:
        """Refuse what would store more text once the user's chats hold their quota.

        Raises:
            FrameError: ``quota_exceeded``, final (the client does not send it again).
        """
        if self._storage_quota is None:
            return
        stored = await self._store.stored_bytes(user)
        if stored >= self._storage_quota:
            raise FrameError(
                ErrorCode.QUOTA_EXCEEDED,
                f"storage quota reached: your chats hold {describe_size(stored)} of the"
                f" {describe_size(self._storage_quota)} allowed; delete old chats to make room",
                **where,
            )

    def _too_many_answers(self, what_now: str, **where: Any) -> FrameError:
        # rate_limited: the client keeps the message and sends it again later.
        running = self._generations.answers_per_user
        answers = "answer" if running == 1 else "answers"
        return FrameError(ErrorCode.RATE_LIMITED, f"you have {running} {answers} running: {what_now}", **where)

    async def cancel(self, sender: Sender, frame: Cancel) -> None:
        generation = self._generations.live(frame.chat_id, sender.user)
        if generation is not None and frame.message_id in (None, generation.message_id):
            self._hub.subscribe(sender, frame.chat_id)
            await generation.stop("cancelled")
            return
        # Nothing runs here: say how that message ended, so a late or repeated cancel is harmless.
        state = await self._store.message_state(sender.user, frame.chat_id, frame.message_id)
        if state is None or state.role != "assistant":
            if frame.message_id is None and await self._store.chat(sender.user, frame.chat_id) is not None:
                return  # a chat with no answer yet: nothing to stop
            raise not_found("message", chat_id=frame.chat_id, message_id=frame.message_id)
        if state.status != "streaming":
            sender.reply(_end_frame(state))
            return
        # It is about to start here, or runs on another node: follow the chat (its end frame
        # comes that way), then ask this node and the others to stop it.
        await self._follow_elsewhere(sender, state, last_seq=None)
        self._generations.cancel_requested(sender.user, frame.chat_id, state.id)
        self._hub.request_cancel(sender.user, frame.chat_id, state.id)

    async def resume(self, sender: Sender, frame: Resume) -> None:
        chat_id, message_id = frame.chat_id, frame.message_id
        if self._follow_live(sender, frame):
            return
        state = await self._store.message_state(sender.user, chat_id, message_id)
        if state is None or state.role != "assistant":
            raise not_found("message", chat_id=chat_id, message_id=message_id)
        if self._follow_live(sender, frame):  # it started while we read (its ack just went out)
            return
        if state.status == "streaming":  # generating on another node
            await self._follow_elsewhere(sender, state, frame.last_seq)
            return
        self._hub.subscribe(sender, chat_id)
        await self._replay_stored(sender, state, frame.last_seq)

    def _follow_live(self, sender: Sender, frame: Resume) -> bool:
        """Replay a running reply from memory and follow it; False if it is not running."""
        generation = self._generations.live(frame.chat_id, sender.user)
        if generation is None or generation.message_id != frame.message_id:
            return False
        # Subscribe and replay in one synchronous step: no chunk slips between.
        self._hub.subscribe(sender, frame.chat_id)
        generation.replay(sender, frame.last_seq)
        return True

    async def _follow_elsewhere(self, sender: Sender, state: MessageState, last_seq: int | None) -> None:
        """Follow a reply that another node generates: replay what is stored after ``last_seq``, then go live.

        The chat's frames are held back while the store is read: every chunk
        published after the subscription took effect is held, every one
        before it is already stored (chunks are stored before they are
        sent). The held frames the replay already covered are dropped.
        ``last_seq`` None (a ``cancel``) replays nothing and only follows.
        """
        chat_id, message_id = state.chat_id, state.id
        self._hub.hold(sender, chat_id)
        try:
            await self._hub.sync()
            now = await self._store.message_state(sender.user, chat_id, message_id)
            if now is None:  # its chat was deleted meanwhile
                covered = None
            elif now.status != "streaming":  # it ended meanwhile
                if last_seq is None:
                    sender.reply(_end_frame(now))
                else:
                    await self._replay_stored(sender, now, last_seq)
                covered = None  # everything about this reply was answered from the store
            else:
                covered = 0 if last_seq is None else last_seq
                if last_seq is not None:
                    for seq, content, reasoning in await self._store.chunks_after(message_id, last_seq):
                        sender.reply(_chunk_frame(chat_id, message_id, seq, content, reasoning))
                        covered = seq
        finally:
            # Past the hold, a copy of a replayed chunk may still come (stored before the read, published after).
            held = self._hub.release(sender, chat_id, None if not covered else (message_id, covered))
        for data in held:
            if not _replayed(data, message_id, covered):
                sender.deliver(data)
        if now is None:
            raise not_found("message", chat_id=chat_id, message_id=message_id)

    async def _replay_stored(self, sender: Sender, state: MessageState, last_seq: int) -> None:
        """Replay an ended reply from the store, or ``resync`` when that is no longer possible."""
        resync = encode(Resync(chat_id=state.chat_id, message_id=state.id))
        if state.status == "streaming" or state.ended_at is None:
            sender.reply(resync)  # claimed but not started yet: let the client reload
            return
        if time.time() - state.ended_at >= self._replay_window:
            sender.reply(resync)
            return
        if last_seq < state.seq:
            chunks = await self._store.chunks_after(state.id, last_seq)
            if not chunks or chunks[0][0] != last_seq + 1 or chunks[-1][0] != state.seq:
                sender.reply(resync)  # pruned already
                return
            for seq, content, reasoning in chunks:
                sender.reply(_chunk_frame(state.chat_id, state.id, seq, content, reasoning))
        sender.reply(_end_frame(state))

    async def edit_message(self, sender: Sender, frame: EditMessage) -> None:
        try:
            await self._edit_message(sender, frame)
        except FrameError as error:
            error.client_edit_id = frame.client_edit_id
            raise

    async def _edit_message(self, sender: Sender, frame: EditMessage) -> None:
        user, chat_id = sender.user, frame.chat_id
        where = {"chat_id": chat_id, "message_id": frame.message_id}
        if frame.client_edit_id is not None:
            known = await self._store.find_edit(user, frame.client_edit_id)
            if known is not None:  # a resend of an edit already applied
                self._answer_again(sender, known, frame.client_edit_id)
                return
        if frame.regenerate:
            # The owner first (as for a message): the claim must never block the owner.
            state = await self._store.message_state(user, chat_id, frame.message_id)
            if state is None:
                raise not_found("message", **where)
            claim = self._generations.claim(chat_id, user)
            if claim == "foreign":
                raise not_found("message", **where)
            if claim == "busy":
                raise FrameError(ErrorCode.CONFLICT, "an answer is still being generated in this chat", **where)
        edit = None
        slot = False
        try:
            await self._check_quota(user, **where)
            if frame.regenerate:
                slot = self._generations.take_slot(user)
                if not slot:
                    raise self._too_many_answers("try again when one of them ends", **where)
            if not self._limiter.allow(user):  # an edit is stored like a message: the same budget
                raise self._rate_limited(user, **where)
            edit = await self._store.edit_message(
                user, chat_id, frame.message_id, frame.content, frame.regenerate, frame.client_edit_id
            )
        except NotEditable as error:
            raise FrameError(ErrorCode.BAD_REQUEST, str(error), **where) from None
        except ChatBusy as busy:  # generating on another node
            raise FrameError(ErrorCode.CONFLICT, str(busy), **where) from None
        finally:
            if frame.regenerate and (edit is None or edit.duplicate):  # no answer starts
                self._generations.release(chat_id)
                if slot:
                    self._generations.free_slot(user)
        if edit is None:
            raise not_found("message", **where)
        if edit.duplicate:  # the same edit raced in from another connection or node
            self._answer_again(sender, edit, frame.client_edit_id)
            return
        self._hub.publish_user(user, _edited_frame(edit, frame.client_edit_id))
        self.announce(user, edit.chat)
        if edit.reply_id is not None and edit.history is not None:
            self._hub.subscribe(sender, chat_id)
            self._generations.start(user, chat_id, edit.reply_id, edit.chat.model_id, edit.history, edit.settings)

    def _answer_again(self, sender: Sender, edit: Edit, client_edit_id: str | None) -> None:
        """Tell the sender of a repeated edit what the first one did; its answer, if any, streams to it."""
        if edit.reply_id is not None:
            self._hub.subscribe(sender, edit.chat.id)
        sender.reply(_edited_frame(edit, client_edit_id))

    async def page_edit(self, sender: Sender, frame: PageEdit) -> None:
        """The seed page's edit notice: stored if it names a stored user message, else relayed."""
        user, chat_id = sender.user, frame.chat_id
        if await self._store.chat(user, chat_id) is None:
            raise not_found("chat", chat_id=chat_id)
        if isinstance(frame.message_id, str):
            state = await self._store.message_state(user, chat_id, frame.message_id)
            if state is not None and state.role == "user":
                edit = EditMessage(chat_id=chat_id, message_id=frame.message_id, content=frame.content)
                await self._edit_message(sender, edit)
                return
        # The page's own id (Date.now()): nothing stored has it. Tell the user's
        # other tabs, as the original server did.
        relayed = MessageEdited(
            chat_id=chat_id, message_id=str(frame.message_id), content=frame.content, edited_at=datetime.now(UTC)
        )
        self._hub.publish_user(user, encode(relayed))

    async def subscribe(self, sender: Sender, frame: Subscribe) -> None:
        """Follow a chat; an answer of it that ended lately is told by its end frame.

        A client that was away when the answer ended (the seed's, reconnecting
        with ``?chat=`` after a server restart ended it as interrupted) would
        otherwise never learn it. A client that saw the end drops the repeat.
        """
        user, chat_id = sender.user, frame.chat_id
        if self._generations.live(chat_id, user) is not None:
            self._hub.subscribe(sender, chat_id)
            return
        if await self._store.chat(user, chat_id) is None:
            raise not_found("chat", chat_id=chat_id)
        # Subscribed before reading: an end that comes meanwhile arrives live
        # as well as from the store (a repeat, dropped), rather than not at all.
        self._hub.subscribe(sender, chat_id)
        latest = await self._store.message_state(user, chat_id, None)
        if latest is not None and latest.ended_at is not None and time.time() - latest.ended_at < self._replay_window:
            sender.reply(_end_frame(latest))

    async def list_chats(self, sender: Sender, frame: ListChats) -> None:
        try:
            page = await self._store.list_chats(sender.user, frame.limit or DEFAULT_PAGE, frame.before, frame.archived)
        except BadCursor as error:
            raise FrameError(ErrorCode.BAD_REQUEST, str(error), request_id=frame.request_id) from None
        sender.reply(encode(Result(request_id=frame.request_id, data=page)))

    async def get_chat(self, sender: Sender, frame: GetChat) -> None:
        try:
            detail = await self._store.chat_detail(
                sender.user, frame.chat_id, frame.limit or DEFAULT_PAGE, frame.before, offset=frame.offset, at=frame.at
            )
        except BadCursor as error:
            raise FrameError(ErrorCode.BAD_REQUEST, str(error), request_id=frame.request_id) from None
        if detail is None:
            raise not_found("chat", request_id=frame.request_id, chat_id=frame.chat_id)
        sender.reply(encode(Result(request_id=frame.request_id, data=detail)))

    async def get_message_text(self, sender: Sender, frame: GetMessageText) -> None:
        """A part of a message's text: the rest of one ``get_chat`` sent cut (``truncated``)."""
        where = {"request_id": frame.request_id, "chat_id": frame.chat_id, "message_id": frame.message_id}
        found = await self._store.message_text(
            sender.user, frame.chat_id, frame.message_id, frame.offset, MESSAGE_TEXT_PART_CHARS
        )
        if found is None:
            raise not_found("message", **where)
        text, total = found
        if frame.offset > total:
            message = f"'offset' {frame.offset} is past the end of the message ({total} characters)"
            raise FrameError(ErrorCode.BAD_REQUEST, message, **where)
        part = MessageText(
            message_id=frame.message_id,
            offset=frame.offset,
            text=text,
            next_offset=frame.offset + len(text),
            total_chars=total,
        )
        sender.reply(encode(Result(request_id=frame.request_id, data=part)))

    async def search(self, sender: Sender, frame: Search) -> None:
        # The frame has words (it does not decode without); they reach the store as words only.
        words = search_words(frame.query)
        try:
            results = await self._store.search(sender.user, words, frame.limit or DEFAULT_SEARCH_PAGE, frame.before)
        except BadCursor as error:
            raise FrameError(ErrorCode.BAD_REQUEST, str(error), request_id=frame.request_id) from None
        sender.reply(encode(Result(request_id=frame.request_id, data=results)))

    async def import_chat(self, sender: Sender, frame: ImportChat) -> None:
        """Store a part of an imported conversation; answer with its chat and what it stored.

        Not counted by the rate limit of messages: an import starts no answer,
        so it costs no model time, and a thousand conversations must go
        through. The storage quota applies to a part that adds something.
        """
        user, where = sender.user, {"request_id": frame.request_id}
        progress = await self._store.import_progress(user, frame.import_key)
        if progress is not None and progress[1] >= frame.first + len(frame.messages):
            # Sent again (after a reconnect, or by a second import): nothing to store or check.
            chat, stored = progress
            result = ImportResult(chat=chat, created=False, stored=stored, added=0)
            sender.reply(encode(Result(request_id=frame.request_id, data=result)))
            return
        await self._check_quota(user, **where)
        try:
            imported = await self._store.import_chat(user, frame)
        except ImportGap as gap:
            raise FrameError(ErrorCode.BAD_REQUEST, str(gap), **where) from None
        result = ImportResult(
            chat=imported.chat, created=imported.created, stored=imported.stored, added=imported.added
        )
        sender.reply(encode(Result(request_id=frame.request_id, data=result)))
        if imported.added:
            self.announce(user, imported.chat)

    async def rename_chat(self, sender: Sender, frame: RenameChat) -> None:
        chat = await self._store.rename_chat(sender.user, frame.chat_id, frame.title)
        if chat is None:
            raise not_found("chat", request_id=frame.request_id, chat_id=frame.chat_id)
        sender.reply(encode(Result(request_id=frame.request_id, data=chat)))
        self.announce(sender.user, chat)

    async def update_chat(self, sender: Sender, frame: UpdateChat) -> None:
        if frame.system_prompt:  # stored text: it counts toward the quota like a message
            await self._check_quota(sender.user, request_id=frame.request_id, chat_id=frame.chat_id)
        change = ChatChange(
            title=frame.title,
            system_prompt=frame.system_prompt,
            params=frame.params,
            pinned=frame.pinned,
            archived=frame.archived,
        )
        updated = await self._store.update_chat(sender.user, frame.chat_id, change)
        if updated is None:
            raise not_found("chat", request_id=frame.request_id, chat_id=frame.chat_id)
        sender.reply(encode(Result(request_id=frame.request_id, data=updated)))
        # Other terminals learn new settings from the broadcast; a pin or a title needs only the summary.
        self.announce(sender.user, updated.chat, settings=updated.settings if change.settings_changed else None)

    async def delete_chat(self, sender: Sender, frame: DeleteChat) -> None:
        chat = await self.remove(sender.user, frame.chat_id)
        if chat is None:
            raise not_found("chat", request_id=frame.request_id, chat_id=frame.chat_id)
        sender.reply(encode(Result(request_id=frame.request_id, data={"chatId": chat.id})))
        self.announce(sender.user, chat, deleted=True)

    async def remove(self, user: str, chat_id: str) -> ChatSummary | None:
        """Stop the chat's answer (on any node) and delete the chat; None if ``user`` has no such chat."""
        generation = self._generations.live(chat_id, user)
        if generation is not None:
            await generation.stop("cancelled")
        else:
            self._hub.request_cancel(user, chat_id, None)  # in case it runs on another node
        return await self._store.delete_chat(user, chat_id)

    def announce(
        self, user: str, chat: ChatSummary, *, deleted: bool = False, settings: ChatSettings | None = None
    ) -> None:
        """Tell every connection of ``user`` that ``chat`` changed (or is gone: every node then forgets it).

        ``settings``: the chat's, when the change set them.
        """
        self._hub.publish_user(user, encode(ChatUpdated(chat=chat, deleted=deleted, settings=settings)))
        if deleted:
            self._hub.drop_chat(chat.id)

    async def list_models(self, sender: Sender, frame: ListModels) -> None:
        try:
            models = await self.catalog.models()  # cached, one fetch for all: clients cannot flood the model server
        except ProviderError as error:
            raise FrameError(ErrorCode.PROVIDER_ERROR, str(error), request_id=frame.request_id) from None
        sender.reply(encode(Result(request_id=frame.request_id, data=ModelList(models=models))))


def _ack(client_message_id: str, exchange: Exchange) -> bytes:
    return encode(
        Ack(
            client_message_id=client_message_id,
            chat_id=exchange.chat.id,
            message_id=exchange.user_message_id,
            reply_id=exchange.reply_id,
        )
    )


def _edited_frame(edit: Edit, client_edit_id: str | None) -> bytes:
    return encode(
        MessageEdited(
            chat_id=edit.chat.id,
            message_id=edit.message_id,
            content=edit.content,
            edited_at=datetime.fromtimestamp(edit.edited_at, UTC),
            reply_id=edit.reply_id,
            client_edit_id=client_edit_id,
        )
    )


def _replayed(held: WireFrame, message_id: str, covered: int | None) -> bool:
    """True if a held frame is about ``message_id`` and the replay already covered it.

    ``covered`` is the last ``seq`` replayed, or None when the reply had
    ended and its whole end was sent from the store.
    """
    frame = decode_server(payload_of(held))
    if getattr(frame, "message_id", None) != message_id:
        return False
    if covered is None:
        return True
    return isinstance(frame, Chunk) and frame.seq <= covered


def _chunk_frame(chat_id: str, message_id: str, seq: int, content: str, reasoning: bool) -> bytes:
    """A stored chunk as its frame, of the reasoning or of the answer."""
    kind: ChunkKind = "reasoning" if reasoning else "content"
    return encode(Chunk(chat_id=chat_id, message_id=message_id, seq=seq, content=content, kind=kind))


def _end_frame(state: MessageState) -> bytes:
    """The ``complete`` or ``cancel`` frame that ended a stored reply."""
    if state.status == "cancelled":
        return encode(Cancelled(chat_id=state.chat_id, message_id=state.id, seq=state.seq))
    figures = state.figures
    return encode(
        Complete(
            chat_id=state.chat_id,
            message_id=state.id,
            seq=state.seq,
            finish_reason=state.finish_reason or "stop",
            usage=figures.usage,
            first_token_ms=figures.first_token_ms,
            tokens_per_second=figures.tokens_per_second,
        )
    )
