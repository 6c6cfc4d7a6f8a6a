"""``ChatClient``: the one asyncio worker that holds the WebSocket to the server.

It connects with our own reconnect loop (not websockets' built-in one, which
resets its backoff after every handshake), heartbeats with JSON ``ping``,
keeps user messages in the on-disk outbox until ``ack``, and delivers every
streamed chunk once, in order, across reconnects. It knows nothing of
Textual: a UI subscribes with the ``on_*`` methods or ``events()``.

Everything runs in the event loop of the caller; no threads except the
short ``fsync`` of an outbox write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)

from mfu_tui.client.attachments import Attachment
from mfu_tui.client.backoff import Backoff
from mfu_tui.client.errors import ClientError, RequestError
from mfu_tui.client.events import MessageReloaded
from mfu_tui.client.import_parts import import_entries, next_part
from mfu_tui.client.outbox import Outbox, OutboxEntry, PendingEdit, PendingFile, account_key
from mfu_tui.client.read_cache import ReadCache
from mfu_tui.client.safe_text import clean_marked, clean_strings, clean_text, may_need_cleaning
from mfu_tui.client.state import ConnectionState, Problem, Status
from mfu_tui.client.streams import StreamTracker
from mfu_tui.client.timing import PING_INTERVAL, PING_TIMEOUT, REQUEST_TIMEOUT
from mfu_tui.client.uploads import Uploads
from mfu_tui.protocol import (
    MAX_FRAME_BYTES,
    MAX_SERVER_FRAME_BYTES,
    MAX_TITLE_LENGTH,
    Ack,
    AttachmentAck,
    Cancel,
    Cancelled,
    ChatCreated,
    ChatDetail,
    ChatPage,
    ChatParams,
    ChatSummary,
    ChatUpdated,
    Chunk,
    ClientFrame,
    CloseCode,
    Complete,
    DeleteChat,
    EditMessage,
    Error,
    GetChat,
    ImportChat,
    ImportedMessage,
    ImportResult,
    ListChats,
    ListModels,
    Message,
    MessageEdited,
    ModelList,
    Ping,
    Pong,
    ProtocolError,
    RenameChat,
    Request,
    Result,
    Resync,
    Search,
    SearchResults,
    ServerFrame,
    StoredMessage,
    Subscribe,
    UnknownFrameType,
    UpdateChat,
    UpdatedChat,
    decode_result,
    decode_server,
    describe_close,
    encode,
    is_terminal,
)
from mfu_tui.redaction import redact, redacting_logger

log = logging.getLogger("mfu_tui.client")

#: What ``events()`` yields and the ``on_*`` callbacks receive.
Event = ServerFrame | MessageReloaded | ClientError | ConnectionState
Unsubscribe = Callable[[], None]

_T = TypeVar("_T")

#: Codes of an ``error`` answering a ``message`` that will never be accepted:
#: the message leaves the outbox and the UI is told.
_REFUSED = {"bad_request", "too_large", "not_found", "forbidden", "unauthorized", "quota_exceeded"}
#: Seconds before a message refused with ``conflict`` or ``rate_limited`` is tried again
#: (a conflict also clears as soon as the running answer in that chat ends).
_RETRY_REFUSED_AFTER = {"conflict": 2.0, "rate_limited": 10.0}


#: HTTP answers to the upgrade that a retry may cure: a timeout, too many connections,
#: a server or proxy starting or overloaded. Any other means the address is not a chat server.
_PASSING_STATUSES = {408, 425, 429, 500, 502, 503, 504}

#: Times a request the server applies once (``import_chat``) is sent before its failure is the caller's.
_ATTEMPTS_OF_IDEMPOTENT_REQUESTS = 5


#: websockets' own debug log, with bearer tokens and ``token=`` values hidden.
_wire_log = redacting_logger("mfu_tui.client.wire")


def default_data_dir() -> Path:
    """Where the outbox lives by default: the platform's user data directory."""
    import platformdirs

    return platformdirs.user_data_path("mfu-chat", appauthor=False)


class ChatClient:
    """The connection worker of mfu-chat, usable as a library.

    Args:
        url: The server, e.g. ``"ws://127.0.0.1:5001/ws"``.
        token: The JWT, sent in the ``Authorization`` header (never logged).
        data_dir: Where the outbox file lives (default: the user data directory).
        ping_interval: Seconds between JSON pings.
        ping_timeout: Seconds to wait for the ``pong`` before the connection is
            declared dead (so a silent network is noticed within
            ``ping_interval + ping_timeout``).
        request_timeout: Seconds a request (``list_chats``...) waits for its answer.
        open_timeout: Seconds an attempt may take to open the WebSocket.
        backoff: The reconnect schedule (default: 0.5 s to 20 s, full jitter).
        offline_after: Seconds of failed attempts after which the state turns
            from ``RECONNECTING`` to ``DISCONNECTED("server unreachable: ...")``.
            The worker keeps trying (``retry_at`` says when), and turns green
            as soon as the server answers again.
        keep_for_offline: Keep the chat list and the chats opened in a local
            ``ReadCache`` beside the outbox, to read them with the server out
            of reach (``cached_chats``, ``cached_chat``, ``search_cached``).
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        data_dir: Path | str | None = None,
        ping_interval: float = PING_INTERVAL,
        ping_timeout: float = PING_TIMEOUT,
        request_timeout: float = REQUEST_TIMEOUT,
        open_timeout: float = 10.0,
        backoff: Backoff | None = None,
        offline_after: float = 30.0,
        keep_for_offline: bool = False,
    ) -> None:
        self.url = url
        self.token = token
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.request_timeout = request_timeout
        self.open_timeout = open_timeout
        self.offline_after = offline_after
        #: ``loop.time()`` of the first failure since the last connection, while failing.
        self._failing_since: float | None = None
        self.backoff = backoff or Backoff()
        data_dir = Path(data_dir) if data_dir else default_data_dir()
        self.outbox = Outbox.for_account(data_dir, url, token)
        #: What the server sent of the chat list and the chats opened, for reading offline.
        self.read_cache = ReadCache(data_dir / f"cache-{account_key(url, token)}.sqlite3") if keep_for_offline else None
        self._state = ConnectionState(Status.DISCONNECTED, reason="not connected yet", problem=Problem.NOT_STARTED)
        self._listeners: dict[str, list[Callable[..., Any]]] = {"open": [], "message": [], "error": [], "state": []}
        self._queues: set[asyncio.Queue[Event | None]] = set()
        self._worker: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None
        # Set by any user action while reconnecting: try again at once.
        self._wake = asyncio.Event()
        # Replaced on every state change; waiters await the current one.
        self._state_changed = asyncio.Event()
        self._outbox_lock = asyncio.Lock()
        # Chats to (re)subscribe after every connect, in order.
        self._chats: dict[str, None] = {}
        # Edits not confirmed yet (by their message_edited, or an error naming them),
        # by clientEditId: on disk in the outbox, and sent again after every connect,
        # since a connection that died unnoticed may have swallowed them. The server
        # applies each once.
        self._edits: dict[str, EditMessage] = {
            edit.client_edit_id: EditMessage(
                chat_id=edit.chat_id,
                message_id=edit.message_id,
                content=edit.content,
                regenerate=edit.regenerate,
                client_edit_id=edit.client_edit_id,
            )
            for edit in self.outbox.pending_edits()
        }
        # Edits sent on an earlier connection or by an earlier process: after their
        # message_edited the regenerated answer is resumed, since part of it may have been missed.
        self._edits_resent: set[str] = set(self._edits)
        # Cancels not answered yet (by the end of that chat's answer, or not_found),
        # by chat: sent again after every connect, since a connection that died
        # unnoticed may have swallowed them. A repeated cancel is harmless.
        self._cancels: dict[str, Cancel] = {}
        self._requests: dict[str, tuple[asyncio.Future[Any], str]] = {}
        self._streams = StreamTracker()
        # Outbox messages sent on this connection and not yet acknowledged: id -> chat key.
        self._inflight: dict[str, str | None] = {}
        # Messages sent on an earlier connection or by an earlier process: after
        # their ack the reply is resumed, since part of it may have been missed.
        self._resent: set[str] = set(entry.client_message_id for entry in self.outbox.pending())
        # Chats with an answer being generated (chat -> reply id, "" if unknown):
        # the next message for them waits, since the server would refuse it.
        self._busy: dict[str, str] = {}
        # The files of outbox messages being uploaded on this connection.
        self._uploads = Uploads()
        self._heartbeat_failure: str | None = None
        self._pong_waiter: asyncio.Future[None] | None = None
        self._ping_ts: float | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- Subscriptions -------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """The current connection state."""
        return self._state

    def on_open(self, callback: Callable[[], None]) -> Unsubscribe:
        """Call ``callback()`` after each successful (re)connect; returns the unsubscribe function."""
        return self._listen("open", callback)

    def on_message(self, callback: Callable[[ServerFrame | MessageReloaded], None]) -> Unsubscribe:
        """Call ``callback(frame)`` for each server frame (chunks once and in order) and ``MessageReloaded``.

        ``pong`` frames and the ``result`` and ``error`` frames answering this
        client's own requests are consumed by the client and not passed on;
        other ``error`` frames go to ``on_error``.
        """
        return self._listen("message", callback)

    def on_error(self, callback: Callable[[ClientError], None]) -> Unsubscribe:
        """Call ``callback(error)`` for worker failures and the server's ``error`` frames."""
        return self._listen("error", callback)

    def on_state(self, callback: Callable[[ConnectionState], None]) -> Unsubscribe:
        """Call ``callback(state)`` on every change of ``state``."""
        return self._listen("state", callback)

    async def events(self) -> AsyncIterator[Event]:
        """Yield what the ``on_*`` callbacks get: frames, ``MessageReloaded``, ``ClientError``,
        ``ConnectionState`` (a (re)connect shows as a state with status ``CONNECTED``).

        Ends after ``close()``.
        """
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._queues.add(queue)
        try:
            while (event := await queue.get()) is not None:
                yield event
        finally:
            self._queues.discard(queue)

    # --- Connection ----------------------------------------------------------

    async def connect(self, chat_id: str | None = None) -> None:
        """Start the worker (if it is not running) and subscribe to ``chat_id``; returns at once.

        Also restarts a worker stopped by an auth refusal (set ``token`` first)
        or by ``close()``.
        """
        if chat_id is not None:
            await self.subscribe(chat_id)
        if not self._running():
            self.backoff.reset()
            self._failing_since = None
            self._set_state(status=Status.CONNECTING, reason=None, problem=None, retry_at=None, last_error=None)
            self._worker = asyncio.create_task(self._run(), name="mfu-chat client worker")

    async def reconnect(self) -> None:
        """Try to connect now: wake a worker waiting out its backoff, or restart a stopped one.

        For a person who fixed what was wrong (started the server, changed a
        proxy) and does not want to wait. Does nothing while connected.
        """
        if self._running():
            self.backoff.reset()
            self._wake.set()
        else:
            await self.connect()

    async def sign_in(self, token: str) -> None:
        """Use ``token`` from now on, and connect again with it (after the server refused the old one).

        Messages sent meanwhile are in the outbox, and go as soon as the
        server takes the new token.

        Raises:
            ClientError: ``token`` names another user: this client's outbox and
                read cache are the first user's (start a new client for another).
        """
        if account_key(self.url, token) != account_key(self.url, self.token):
            raise ClientError("that token is for another user; to change user, start mfu-chat again with it")
        ws = self._ws
        await self._stop_worker()
        if ws is not None:
            await ws.close(CloseCode.NORMAL, "signing in again")
        self.token = token
        await self.connect()

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until the state is ``CONNECTED``.

        Raises:
            ClientError: the worker stopped (auth refused, closed...); the message says why.
            TimeoutError: not connected within ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            await self._connected_socket(hurry=False)

    async def close(self) -> None:
        """Close the connection and stop the worker; the state becomes ``DISCONNECTED("closed by user")``.

        Pending outbox messages stay on disk for the next run.
        """
        ws = self._ws
        await self._stop_worker()
        if ws is not None:
            await ws.close(CloseCode.NORMAL, "closed by user")
        self._stopped(_Stop(Problem.CLOSED, "closed by user"))
        self.outbox.close()  # another client of this account may now send what is left
        if self.read_cache is not None:
            self.read_cache.close()
        for queue in self._queues:
            queue.put_nowait(None)

    # --- Sending -------------------------------------------------------------

    async def send(self, frame: ClientFrame) -> None:
        """Send any client frame.

        A ``message`` goes through the outbox (see ``send_message``); ``subscribe``,
        ``cancel`` and ``edit_message`` given while offline are sent after the
        next connect, and a cancel or an edit again after every reconnect until
        answered (an edit gets a ``clientEditId`` if it has none, so the server
        applies it once). Other frames need a connection.

        Raises:
            ClientError: the frame is larger than the server accepts (code
                ``too_large``; it would be refused at every reconnect), or it
                needs a connection and there is none.
        """
        self._check_size(frame)
        if isinstance(frame, Message):
            if frame.attachments:
                raise ClientError("a message with files is sent with send_message(..., attachments=...)")
            await self._post(_entry_of(frame, []))
            return
        if isinstance(frame, Subscribe):
            self._chats[frame.chat_id] = None
        if isinstance(frame, Cancel):
            self._cancels[frame.chat_id] = frame
        if isinstance(frame, EditMessage):
            if frame.client_edit_id is None:
                frame = msgspec.structs.replace(frame, client_edit_id=_new_id())
            await self._keep_edit(frame)
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(ConnectionClosed):  # resent after the reconnect
                await self._send(ws, frame)
            return
        self._wake.set()
        if not isinstance(frame, (Subscribe, Cancel, EditMessage)):
            raise ClientError(f"cannot send {type(frame).__name__}: not connected")

    async def send_message(
        self,
        chat_id: str | None,
        content: str,
        model_id: str | None = None,
        *,
        system_prompt: str | None = None,
        params: ChatParams | None = None,
        attachments: Sequence[Attachment] = (),
        client_message_id: str | None = None,
    ) -> str:
        """Send a user message; ``chat_id=None`` creates a chat. Returns its ``clientMessageId``.

        The message is on disk before this returns and is sent, now or after
        the next connect, until the server acknowledges it (``Ack`` on
        ``on_message``). Messages to one chat go out in the order given.
        A message that creates a chat may give its ``system_prompt`` and
        ``params``: they are kept and sent with it, so the chat is created with
        them (and its first answer made with them) however often it is resent.

        ``attachments`` (from ``read_attachment``) are copied into the outbox
        with the message, uploaded in parts before it (after a reconnect, from
        where the server got to), and only then is the message sent. With
        files, ``content`` may be empty.

        ``client_message_id`` names the message, for a caller that shows it
        before the server answers; by default a new UUID.

        Raises:
            ValueError: ``content`` is empty or blank, and there are no files.
            ClientError: the message is too large (code ``too_large``); it was not kept.
        """
        client_message_id = client_message_id or _new_id()
        files = [PendingFile(_new_id(), file.name, file.media_type, file.size) for file in attachments]
        frame = Message(
            chat_id=chat_id,
            client_message_id=client_message_id,
            content=content,
            model_id=model_id,
            system_prompt=system_prompt,
            params=params,
            attachments=[file.client_attachment_id for file in files] or None,
        )
        if not files:
            await self.send(frame)
            return client_message_id
        self._check_size(frame)
        for file, attached in zip(files, attachments, strict=True):
            await asyncio.to_thread(self.outbox.keep_file, file.client_attachment_id, attached.data)
        await self._post(_entry_of(frame, files))
        return client_message_id

    @staticmethod
    def _check_size(frame: ClientFrame) -> None:
        """Refuse a frame the server would refuse at every reconnect.

        Raises:
            ClientError: code ``too_large``.
        """
        size = len(encode(frame))
        if size > MAX_FRAME_BYTES:
            raise ClientError(
                f"{type(frame).__name__} is too large: {size} bytes, the limit is {MAX_FRAME_BYTES}",
                code="too_large",
                chat_id=getattr(frame, "chat_id", None),
            )

    async def cancel(self, chat_id: str, message_id: str | None = None) -> None:
        """Stop the running answer in ``chat_id``."""
        await self.send(Cancel(chat_id=chat_id, message_id=message_id))

    async def edit_message(self, chat_id: str, message_id: str, content: str, regenerate: bool = False) -> str:
        """Change a stored user message; with ``regenerate`` the answer is generated again.

        Sent until the server confirms it (``MessageEdited`` with this
        ``clientEditId`` on ``on_message``) or refuses it, across reconnects;
        the server applies it once. Returns its ``clientEditId``.
        """
        frame = EditMessage(
            chat_id=chat_id, message_id=message_id, content=content, regenerate=regenerate, client_edit_id=_new_id()
        )
        await self.send(frame)
        return frame.client_edit_id  # type: ignore[return-value]

    async def subscribe(self, chat_id: str) -> None:
        """Receive the events of ``chat_id``, now and after every reconnect."""
        await self.send(Subscribe(chat_id=chat_id))

    # --- Requests ------------------------------------------------------------

    async def list_chats(
        self, limit: int | None = None, before: str | None = None, *, archived: bool = False
    ) -> ChatPage:
        """A page of the chat list, pinned chats first, each part newest first; ``archived``: the archived ones."""
        frame = ListChats(request_id=_new_id(), limit=limit, before=before, archived=archived)
        page = await self._request(frame, ChatPage)
        # The kept copy is the list a user reads offline: the chats not archived.
        if self.read_cache is not None and before is None and not archived:
            await asyncio.to_thread(self.read_cache.keep_chats, page.chats)
        return page

    async def get_chat(
        self,
        chat_id: str,
        *,
        before: str | None = None,
        offset: int | None = None,
        at: str | None = None,
        limit: int | None = None,
    ) -> ChatDetail:
        """One chat with a page of its messages, oldest first.

        The newest ones by default; give at most one of ``before``, ``offset``
        and ``at`` for another page. The page's ``offset`` says where it is in
        the chat, so a page can be placed anywhere.

        Args:
            chat_id: The chat.
            before: The ``next_cursor`` of a page already loaded, to get the messages before it.
            offset: The index of the page's first message (0: the chat's first).
            at: A message of the chat, to get the page that starts with it.
            limit: At most this many messages (the server's default if ``None``).

        Raises:
            ProtocolError: more than one of ``before``, ``offset`` and ``at``.
        """
        frame = GetChat(request_id=_new_id(), chat_id=chat_id, before=before, offset=offset, at=at, limit=limit)
        detail = await self._request(frame, ChatDetail)
        # Only the newest page is kept for reading offline (the one a chat opens with).
        if self.read_cache is not None and before is None and offset is None and at is None:
            await asyncio.to_thread(self.read_cache.keep_chat, detail)
        return detail

    async def get_whole_chat(self, chat_id: str) -> ChatDetail:
        """One chat with all its messages, oldest first, asked for a page at a time (for an export)."""
        detail = await self.get_chat(chat_id)
        pages = [detail.messages]
        while detail.next_cursor is not None:
            detail = await self.get_chat(chat_id, before=detail.next_cursor)
            pages.append(detail.messages)
        messages = [message for page in reversed(pages) for message in page]
        return ChatDetail(chat=detail.chat, messages=messages)

    async def find_message(self, chat_id: str, message_id: str) -> StoredMessage | None:
        """A stored message as the server has it now (its figures included), or None if it is gone.

        Looked for from the newest page back: it is nearly always on the first.
        """
        detail = await self.get_chat(chat_id)
        while True:
            found = next((message for message in detail.messages if message.id == message_id), None)
            if found is not None or detail.next_cursor is None:
                return found
            detail = await self.get_chat(chat_id, before=detail.next_cursor)

    async def rename_chat(self, chat_id: str, title: str) -> ChatSummary:
        """Rename a chat; returns it as the list shows it."""
        return await self._request(RenameChat(request_id=_new_id(), chat_id=chat_id, title=title), ChatSummary)

    async def update_chat(
        self,
        chat_id: str,
        *,
        title: str | None = None,
        system_prompt: str | None = None,
        params: ChatParams | None = None,
        pinned: bool | None = None,
        archived: bool | None = None,
    ) -> UpdatedChat:
        """Change a chat; ``None`` leaves a field as it is. Returns the chat and its settings after the change.

        ``system_prompt=""`` removes the prompt; ``params`` replaces all four parameters.

        Raises:
            ProtocolError: nothing to change.
            RequestError: the server refused it (``bad_request`` naming a value out of range, ``not_found``).
        """
        frame = UpdateChat(
            request_id=_new_id(),
            chat_id=chat_id,
            title=title,
            system_prompt=system_prompt,
            params=params,
            pinned=pinned,
            archived=archived,
        )
        return await self._request(frame, UpdatedChat)

    async def delete_chat(self, chat_id: str) -> None:
        """Delete a chat and its messages."""
        await self._request(DeleteChat(request_id=_new_id(), chat_id=chat_id), None)
        self._chats.pop(chat_id, None)
        await self._forget_cached(chat_id)

    # --- Reading offline -------------------------------------------------------

    async def cached_chats(self) -> list[ChatSummary]:
        """The chat list as last received (empty without ``keep_for_offline``)."""
        return [] if self.read_cache is None else await asyncio.to_thread(self.read_cache.chats)

    async def cached_chat(self, chat_id: str) -> ChatDetail | None:
        """A chat's newest page as last received, or ``None``."""
        return None if self.read_cache is None else await asyncio.to_thread(self.read_cache.chat, chat_id)

    async def search_cached(self, query: str) -> SearchResults:
        """Like ``search``, in the chats kept for reading offline (their newest page each)."""
        if self.read_cache is None:
            return SearchResults(hits=[])
        return await asyncio.to_thread(self.read_cache.search, query)

    async def _forget_cached(self, chat_id: str) -> None:
        if self.read_cache is not None:
            await asyncio.to_thread(self.read_cache.forget_chat, chat_id)

    async def list_models(self) -> ModelList:
        """The models the server can use."""
        return await self._request(ListModels(request_id=_new_id()), ModelList)

    async def search(self, query: str, *, limit: int | None = None, before: str | None = None) -> SearchResults:
        """The messages of the user's chats that hold every word of ``query``, newest first.

        Chat titles and snippets come cleaned (``clean_text``), and each hit's
        ``highlights`` are offsets into its cleaned snippet.

        Args:
            query: Plain words, as typed; the last one also matches the start of a longer word.
            limit: At most this many hits (the server's default if ``None``).
            before: The ``next_cursor`` of an earlier page of the same search, for the older hits.

        Raises:
            ProtocolError: ``query`` has no words (``protocol.search_words`` says), or is too long.
            RequestError: the server refused it (``bad_request``: a cursor it did not hand out).
        """
        frame = Search(request_id=_new_id(), query=query, limit=limit, before=before)
        return await self._request(frame, SearchResults, clean=_clean_results)

    async def import_chat(
        self,
        import_key: str,
        title: str,
        created_at: datetime,
        updated_at: datetime,
        messages: Sequence[ImportedMessage],
    ) -> ImportResult:
        """Store a conversation from elsewhere as one chat, once per ``import_key``.

        The messages go whole, any length: the client cuts them into entries
        and frames (``import_parts``). Each part is sent until answered, across
        reconnects; the server stores each entry once, so an import cut short
        goes on where it stopped when called again, and one already done
        stores nothing (``created`` false, ``added`` 0).

        Args:
            import_key: Names the conversation where it came from, e.g. ``chatgpt:<its id>``.
            title: The chat's title; cut at 200 characters.
            created_at: When the conversation began (aware).
            updated_at: When it last changed: the chat's place in the list.
            messages: Oldest first; an empty one is left out.

        Returns:
            The chat, whether this call created it, the entries stored and those this call added.

        Raises:
            ValueError: no message has any text.
            RequestError: the server refused it (``quota_exceeded``...).
            ClientError: the connection stopped (auth refused...) or stayed away through every attempt.
        """
        entries = import_entries(messages)
        if not entries:
            raise ValueError("a conversation to import needs a message with some text")
        frame = ImportChat(
            request_id=_new_id(),
            import_key=import_key,
            title=title[:MAX_TITLE_LENGTH],
            created_at=created_at,
            updated_at=updated_at,
            first=0,
            total=len(entries),
            messages=entries[:1],
        )
        created, added, first = False, 0, 0
        while True:
            part = msgspec.structs.replace(next_part(frame, entries, first), request_id=_new_id())
            result = await self._request_until_answered(part, ImportResult)
            created, added = created or result.created, added + result.added
            if result.stored >= len(entries):
                return ImportResult(chat=result.chat, created=created, stored=result.stored, added=added)
            if result.stored <= first:  # a server that stores nothing would be asked forever
                raise ClientError(f"the server stored nothing of {import_key} past entry {first}")
            first = result.stored  # where the server is: past a part stored before, on resuming

    async def _request_until_answered(self, frame: Request, kind: type[_T]) -> _T:
        """``_request``, sent again after a dropped connection or a silence: for requests applied once."""
        attempts = 1
        while True:
            try:
                return await self._request(frame, kind)
            except RequestError:
                raise
            except (ClientError, TimeoutError) as error:
                if not self._running() or attempts == _ATTEMPTS_OF_IDEMPOTENT_REQUESTS:
                    raise
                log.info("%s not answered (%s): sending it again", type(frame).__name__, error or "no answer")
                attempts += 1

    async def _request(self, frame: Request, kind: type[_T] | None, *, clean: Callable[[_T], _T] | None = None) -> _T:
        """Send a request and wait for its ``result``.

        Waits for a connection first (asking for an immediate attempt), all
        within ``request_timeout``. A request is not resent: if the
        connection drops before the answer, it fails at once. The answer's
        strings are cleaned (``clean_strings``), or else passed to ``clean``,
        which knows its shape.

        Raises:
            RequestError: the server answered with an ``error``.
            ClientError: no connection (the worker stopped) or it dropped before the answer.
            TimeoutError: no answer within ``request_timeout``.
        """
        name = type(frame).__name__
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._requests[frame.request_id] = (future, name)
        try:
            async with asyncio.timeout(self.request_timeout):
                ws = await self._connected_socket(hurry=True)
                try:
                    await self._send(ws, frame)
                except ConnectionClosed:
                    raise ClientError(f"connection lost before the answer to {name}") from None
                data, unsafe = await future
        finally:
            self._requests.pop(frame.request_id, None)
        if kind is None:
            return None  # type: ignore[return-value]
        try:
            result = decode_result(data, kind)
        except ProtocolError as error:
            raise ClientError(f"unexpected answer to {name}: {error}") from None
        if clean is not None:
            return clean(result)
        return clean_strings(result) if unsafe else result

    # --- The worker ----------------------------------------------------------

    def _running(self) -> bool:
        return self._worker is not None and not self._worker.done()

    async def _run(self) -> None:
        """Connect, serve the connection, wait the backoff delay, again; until stopped."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                self._wake.clear()
                try:
                    ws = await self._open()
                except _Stop as stop:
                    self._stopped(stop)
                    return
                except _Failed as failed:
                    error = str(failed)
                else:
                    try:
                        error = await self._session(ws)
                    except _Stop as stop:
                        self._stopped(stop)
                        return
                delay = self.backoff.next_delay(loop.time())
                log.info("no connection to %s (%s): next attempt in %.1f s", redact(self.url), error, delay)
                failing = self._failing(error, loop.time())
                self._set_state(**failing, retry_at=loop.time() + delay, last_error=error)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                self._set_state(**failing, retry_at=None)
        except Exception as error:  # a bug: say so rather than die silently
            log.exception("the connection worker failed")
            self._emit_error(ClientError(f"internal error in the connection worker: {error!r}"))
            self._stopped(_Stop(Problem.INTERNAL, f"internal error: {error!r}"))

    def _failing(self, error: str, now: float) -> dict[str, Any]:
        """The status to show after a failed attempt: yellow at first, red once it lasts.

        A short outage is "reconnecting"; one longer than ``offline_after``
        is "offline: server unreachable", said plainly, while the worker
        keeps trying in the background.
        """
        if self._failing_since is None:
            self._failing_since = now
        if now - self._failing_since < self.offline_after:
            return {"status": Status.RECONNECTING, "reason": None, "problem": None}
        return {
            "status": Status.DISCONNECTED,
            "reason": f"server unreachable at {redact(self.url)}: {error}",
            "problem": Problem.UNREACHABLE,
        }

    async def _open(self) -> ClientConnection:
        """One connection attempt.

        Raises:
            _Stop: retrying cannot help (auth refused, invalid address).
            _Failed: this attempt failed; the message says why in plain words.
        """
        log.info("connecting to %s", redact(self.url))
        try:
            return await connect(
                self.url,
                proxy=None,
                additional_headers={"Authorization": f"Bearer {self.token}"},
                open_timeout=self.open_timeout,
                ping_interval=None,  # our JSON heartbeat measures the RTT the UI shows
                close_timeout=2.0,
                max_size=MAX_SERVER_FRAME_BYTES,
                logger=_wire_log,
            )
        except InvalidStatus as error:
            status = error.response.status_code
            body = " ".join(error.response.body.decode(errors="replace").split())[:120]
            if status in (401, 403):
                raise _Stop(Problem.TOKEN_REFUSED, f"auth refused: {body or f'HTTP {status}'}") from None
            if status not in _PASSING_STATUSES:
                # A wrong path or port stays wrong: retrying forever would only hide it.
                where = "check the path, usually /ws" if status == 404 else "check the port and the path, usually /ws"
                raise _Stop(
                    Problem.NO_WEBSOCKET, f"no WebSocket endpoint at {redact(self.url)} (HTTP {status}): {where}"
                ) from None
            # The server's words say more than the number (429: too many connections).
            raise _Failed(f"server answered HTTP {status}" + (f": {body}" if body else "")) from None
        except InvalidURI:
            raise _Stop(
                Problem.BAD_ADDRESS, f"invalid server address {redact(self.url)}{_scheme_hint(self.url)}"
            ) from None
        except TimeoutError:
            raise _Failed(f"no answer within {self.open_timeout:g} s") from None
        except ConnectionRefusedError:
            raise _Failed("connection refused") from None
        except socket.gaierror:
            raise _Failed("unknown host") from None
        except OSError as error:
            reason = error.strerror or str(error) or type(error).__name__
            if self.url.startswith("wss://") and isinstance(error, (ssl.SSLError, ConnectionResetError)):
                # A server without TLS answers a TLS greeting with garbage or a reset; that stays so.
                raise _Stop(
                    Problem.TLS_MISMATCH,
                    f"TLS handshake with {redact(self.url)} failed ({_reset_words(error)}): "
                    "if the server has no TLS, use ws:// instead of wss://",
                ) from None
            raise _Failed(reason) from None
        except InvalidHandshake as error:
            raise _Failed(f"handshake failed: {error}") from None

    async def _session(self, ws: ClientConnection) -> str:
        """Serve one open connection until it ends; returns why it ended.

        Raises:
            _Stop: the server closed with a terminal code (4401, 4403).
        """
        loop = asyncio.get_running_loop()
        self._ws = ws
        self._heartbeat_failure = None
        self.backoff.connected(loop.time())
        self._failing_since = None
        log.info("connected to %s", redact(self.url))
        self._set_state(status=Status.CONNECTED, retry_at=None, last_error=None, reason=None, problem=None)
        heartbeat = asyncio.create_task(self._heartbeat(ws), name="mfu-chat heartbeat")
        try:
            await self._after_open(ws)
            self._notify("open")
            async for data in ws:
                await self._receive(data)
        except ConnectionClosed:
            pass
        finally:
            heartbeat.cancel()
            self._ws = None
            self._connection_lost()
        close = ws.protocol.close_rcvd
        if self._heartbeat_failure is not None:
            error = self._heartbeat_failure
        else:
            error = describe_close(close.code, close.reason) if close else "connection lost"
        log.info("connection closed: %s", error)
        if close is not None and is_terminal(close.code):
            meaning = "token invalid or expired" if close.code == CloseCode.UNAUTHORIZED else "forbidden"
            raise _Stop(Problem.TOKEN_REFUSED, f"auth refused: {close.reason or meaning}")
        return error

    async def _after_open(self, ws: ClientConnection) -> None:
        """Bring a new connection up to date: subscriptions, resumes, deferred frames, outbox."""
        for chat_id in list(self._chats):
            await self._send(ws, Subscribe(chat_id=chat_id))
        for resume in self._streams.resumes():
            log.info("resuming message %s after seq %d", resume.message_id, resume.last_seq)
            await self._send(ws, resume)
        deferred: list[EditMessage | Cancel] = [*self._edits.values(), *self._cancels.values()]
        for frame in deferred:
            await self._send(ws, frame)
        await self._pump_outbox()

    def _connection_lost(self) -> None:
        """Forget what belonged to the connection that just ended."""
        self._resent.update(self._inflight)
        self._edits_resent.update(self._edits)
        self._inflight.clear()
        self._uploads.stop_all()  # the reconnect starts them again, from what the server received
        for request_id, (future, name) in list(self._requests.items()):
            if not future.done():
                future.set_exception(ClientError(f"connection lost before the answer to {name}"))
            del self._requests[request_id]
        if self._pong_waiter is not None and not self._pong_waiter.done():
            self._pong_waiter.cancel()

    async def _heartbeat(self, ws: ClientConnection) -> None:
        """Ping at once and then every ``ping_interval``; abort the connection if a pong is late."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                sent_at = loop.time()
                self._ping_ts = sent_at
                self._pong_waiter = loop.create_future()
                try:
                    async with asyncio.timeout(self.ping_timeout):
                        await self._send(ws, Ping(ts=sent_at))
                        await self._pong_waiter
                except TimeoutError:
                    self._heartbeat_failure = f"no answer to ping within {self.ping_timeout:g} s"
                    log.warning("%s: dropping the connection", self._heartbeat_failure)
                    # No closing handshake: a silent network would not carry it.
                    ws.transport.abort()
                    return
                self._set_state(rtt=loop.time() - sent_at)
                await asyncio.sleep(self.ping_interval)
        except (ConnectionClosed, asyncio.CancelledError):
            return

    def _stopped(self, stop: _Stop) -> None:
        log.info("disconnected: %s", stop.reason)
        self._set_state(status=Status.DISCONNECTED, reason=stop.reason, problem=stop.problem, retry_at=None)

    async def _stop_worker(self) -> None:
        tasks = [task for task in (self._worker, *self._tasks) if task is not None and not task.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _connected_socket(self, *, hurry: bool) -> ClientConnection:
        """The open connection, waiting for one if needed.

        Args:
            hurry: While reconnecting, ask once for an immediate attempt
                (a user action is waiting) instead of waiting for the backoff.

        Raises:
            ClientError: the worker is not running; the message says why.
        """
        while self._ws is None or self._state.status is not Status.CONNECTED:
            if not self._running():
                raise ClientError(f"not connected: {self._state.reason or 'call connect() first'}")
            if hurry:
                self._wake.set()
                hurry = False
            await self._state_changed.wait()
        return self._ws

    # --- Receiving -----------------------------------------------------------

    async def _receive(self, data: str | bytes) -> None:
        try:
            frame = decode_server(data)
        except UnknownFrameType as error:  # a newer server's: ignored, so old clients keep working
            log.info("ignoring a frame this client does not know: %s", clean_text(str(error)))
            return
        except ProtocolError as error:
            log.warning("ignoring an invalid frame from the server: %s", error)
            self._emit_error(ClientError(clean_text(f"the server sent an invalid frame: {error}")))
            return
        unsafe = may_need_cleaning(data)
        if isinstance(frame, Result) and frame.request_id in self._requests:
            # Cleaned by the request once typed: it knows the answer's shape (a search
            # hit's highlights are offsets into its snippet, which cleaning shifts).
            self._answer_request(frame, unsafe)
            return
        if unsafe:  # nothing from the server reaches a terminal raw
            frame = clean_strings(frame)
        if isinstance(frame, Pong):
            if self._pong_waiter is not None and not self._pong_waiter.done() and frame.ts == self._ping_ts:
                self._pong_waiter.set_result(None)
        elif isinstance(frame, Error):
            await self._on_error_frame(frame)
        elif isinstance(frame, Ack):
            await self._on_ack(frame)
        elif isinstance(frame, AttachmentAck):
            self._uploads.acked(frame)
        elif isinstance(frame, (Chunk, Complete, Cancelled)):
            await self._on_stream(frame)
        elif isinstance(frame, Resync):
            self._spawn(self._reload(frame.chat_id, frame.message_id))
        else:  # a Result here answers a request sent with send()
            if isinstance(frame, ChatCreated):
                self._chats[frame.chat_id] = None
            elif isinstance(frame, ChatUpdated) and frame.deleted:
                await self._forget_cached(frame.chat.id)  # deleted in another terminal: gone here too
            elif isinstance(frame, MessageEdited):
                await self._on_edited(frame)
                return
            self._emit(frame)

    async def _on_edited(self, frame: MessageEdited) -> None:
        if frame.client_edit_id is not None:
            await self._edit_done(frame.client_edit_id)
        if frame.reply_id is not None:
            # A regenerated answer: track it like an acked one, so a reconnect resumes it.
            if self._streams.expect(frame.chat_id, frame.reply_id):
                self._busy[frame.chat_id] = frame.reply_id
        self._emit(frame)
        if frame.client_edit_id in self._edits_resent:
            self._edits_resent.discard(frame.client_edit_id)
            if frame.reply_id is not None:  # sent before this connection: part of the answer may have gone by
                for resume in self._streams.resumes_for(frame.reply_id):
                    await self._send_if_open(resume)

    def _answer_request(self, frame: Result, unsafe: bool) -> None:
        """Hand a waiting request its answer's data, and whether that may need cleaning."""
        future = self._requests[frame.request_id][0]
        if not future.done():
            future.set_result((frame.data, unsafe))

    async def _on_error_frame(self, frame: Error) -> None:
        if frame.code == "not_found" and frame.chat_id is not None:
            self._cancels.pop(frame.chat_id, None)
            if frame.message_id is not None and self._streams.gone(frame.message_id):
                # A resume of an answer whose chat was deleted: it ends here, not at every reconnect.
                if self._busy.get(frame.chat_id) == frame.message_id:
                    del self._busy[frame.chat_id]
        if frame.client_edit_id is not None:  # refused: sending it again would be refused again
            await self._edit_done(frame.client_edit_id)
            self._edits_resent.discard(frame.client_edit_id)
        pending = self._requests.get(frame.request_id) if frame.request_id else None
        if pending is not None:
            if not pending[0].done():
                where = {"chat_id": frame.chat_id, "message_id": frame.message_id}
                pending[0].set_exception(RequestError(frame.code, frame.message, **where))
            return
        refused = self._refused_message(frame)
        if refused is not None:
            await self._on_message_refused(refused, frame)
            if frame.code == "conflict":
                return  # the outbox sends it again when the running answer ends: nothing to tell
        self._emit_error(
            ClientError(
                frame.message,
                code=frame.code,
                chat_id=frame.chat_id,
                message_id=frame.message_id,
                client_message_id=refused,
            )
        )

    def _refused_message(self, frame: Error) -> str | None:
        """The in-flight outbox message an ``error`` frame refuses (named by its ``clientMessageId``), if any."""
        if frame.client_message_id in self._inflight:
            return frame.client_message_id
        return None

    async def _on_message_refused(self, client_message_id: str, frame: Error) -> None:
        chat_key = self._inflight.pop(client_message_id)
        self._uploads.stop(client_message_id)  # a refused part refuses its message
        if frame.code in _REFUSED:
            log.warning("message %s refused (%s): dropped from the outbox", client_message_id, frame.code)
            self._resent.discard(client_message_id)
            async with self._outbox_lock:
                await asyncio.to_thread(self.outbox.done, client_message_id)
            await self._pump_outbox()
            return
        delay = _RETRY_REFUSED_AFTER.get(frame.code, _RETRY_REFUSED_AFTER["rate_limited"])
        log.info("message %s refused (%s); trying again in %g s", client_message_id, frame.code, delay)
        self._resent.add(client_message_id)
        if chat_key is not None:
            self._busy[chat_key] = ""
        asyncio.get_running_loop().call_later(delay, self._retry_chat, chat_key)

    def _retry_chat(self, chat_key: str | None) -> None:
        if chat_key is not None and self._busy.get(chat_key) == "":
            del self._busy[chat_key]
        if self._ws is not None:
            self._spawn(self._pump_outbox())

    async def _on_ack(self, frame: Ack) -> None:
        async with self._outbox_lock:
            await asyncio.to_thread(self.outbox.done, frame.client_message_id)
        self._inflight.pop(frame.client_message_id, None)
        self._chats[frame.chat_id] = None
        self._cancels.pop(frame.chat_id, None)  # a new answer: an older cancel must not stop it
        if self._streams.expect(frame.chat_id, frame.reply_id):
            self._busy[frame.chat_id] = frame.reply_id
        self._emit(frame)
        if frame.client_message_id in self._resent:
            # Sent before this connection: part of the answer may have gone by.
            self._resent.discard(frame.client_message_id)
            for resume in self._streams.resumes_for(frame.reply_id):
                await self._send_if_open(resume)
        await self._pump_outbox()

    async def _on_stream(self, frame: Chunk | Complete | Cancelled) -> None:
        if not isinstance(frame, Chunk):
            self._cancels.pop(frame.chat_id, None)  # the answer ended: nothing left to cancel
        delivery = self._streams.feed(frame)
        for delivered in delivery.frames:
            self._emit(delivered)
        if delivery.resume is not None:
            log.info("gap in message %s: resuming after seq %d", frame.message_id, delivery.resume.last_seq)
            await self._send_if_open(delivery.resume)
        if not isinstance(frame, Chunk) and self._busy.get(frame.chat_id) in (frame.message_id, ""):
            del self._busy[frame.chat_id]
            await self._pump_outbox()

    async def _reload(self, chat_id: str, message_id: str) -> None:
        """After ``resync``: load the stored message and hand it to the UI whole."""
        log.info("resync of message %s: reloading it", message_id)
        self._streams.start_reload(message_id)
        try:
            stored = await self.find_message(chat_id, message_id)
        except (ClientError, TimeoutError) as error:
            self._streams.reload_failed(message_id)
            self._emit_error(ClientError(f"could not reload message {message_id}: {error}", chat_id=chat_id))
            return
        if stored is None:
            self._streams.reloaded(chat_id, message_id, content="", seq=0, streaming=False)
            self._emit_error(ClientError(f"message {message_id} no longer exists", code="not_found", chat_id=chat_id))
            return
        streaming = stored.status == "streaming"
        resume = self._streams.reloaded(
            chat_id, message_id, content=stored.content, seq=stored.seq, streaming=streaming
        )
        self._emit(MessageReloaded(chat_id, message_id, stored.content, stored.status, stored.finish_reason))
        if resume is not None:
            await self._send_if_open(resume)
        elif self._busy.get(chat_id) in (message_id, ""):
            del self._busy[chat_id]
            await self._pump_outbox()

    # --- Outbox --------------------------------------------------------------

    async def _post(self, entry: OutboxEntry) -> None:
        """Write a message to the outbox, then send what may be sent."""
        async with self._outbox_lock:
            await asyncio.to_thread(self.outbox.add, entry)
        log.debug("message %s written to the outbox", entry.client_message_id)
        if entry.chat_id is not None and entry.chat_id not in self._chats:
            # See the chat's answers end, which is when its next message may go.
            await self.subscribe(entry.chat_id)
        self._wake.set()
        await self._pump_outbox()

    async def _keep_edit(self, frame: EditMessage) -> None:
        """Write an edit to the outbox (durable before it is sent) and remember it for resending."""
        assert frame.client_edit_id is not None
        edit = PendingEdit(frame.client_edit_id, frame.chat_id, frame.message_id, frame.content, frame.regenerate)
        async with self._outbox_lock:
            await asyncio.to_thread(self.outbox.add_edit, edit)
        self._edits[frame.client_edit_id] = frame

    async def _edit_done(self, client_edit_id: str) -> None:
        if self._edits.pop(client_edit_id, None) is not None:
            async with self._outbox_lock:
                await asyncio.to_thread(self.outbox.edit_done, client_edit_id)

    async def _pump_outbox(self) -> None:
        """Send the first pending message of each chat that is free to take one."""
        ws = self._ws
        if ws is None:
            return
        taken = set(self._inflight.values()) | set(self._busy)
        for entry in self.outbox.pending():
            if entry.chat_id in taken or entry.client_message_id in self._inflight:
                continue
            # Mark before awaiting, so that a concurrent pump does not send it too.
            taken.add(entry.chat_id)
            self._inflight[entry.client_message_id] = entry.chat_id
            if entry.chat_id is not None:
                self._chats[entry.chat_id] = None
            files = entry.files()
            frame = Message(
                chat_id=entry.chat_id,
                client_message_id=entry.client_message_id,
                content=entry.content,
                model_id=entry.model_id,
                system_prompt=entry.system_prompt,
                params=entry.chat_params(),
                attachments=[file.client_attachment_id for file in files] or None,
            )
            if files:  # its files go up first, each part waiting for its ack: not in this loop
                self._uploads.start(entry.client_message_id, self._send_with_files(ws, entry, files, frame))
                continue
            try:
                await self._send(ws, frame)
            except ConnectionClosed:
                return  # the reconnect sends it again

    async def _send_with_files(
        self, ws: ClientConnection, entry: OutboxEntry, files: list[PendingFile], frame: Message
    ) -> None:
        """Upload a message's files, then send it; a dropped connection ends it (the reconnect starts it again)."""
        client_message_id = entry.client_message_id
        try:
            for file in files:
                data = await asyncio.to_thread(self.outbox.file_bytes, file.client_attachment_id)
                await self._uploads.upload(lambda part: self._send(ws, part), client_message_id, file, data)
            await self._send(ws, frame)
        except ConnectionClosed:
            return
        except OSError as error:  # its kept copy is gone: it can never be sent whole
            log.warning(
                "message %s: a file kept for it is gone (%s): dropped from the outbox", client_message_id, error
            )
            self._inflight.pop(client_message_id, None)
            async with self._outbox_lock:
                await asyncio.to_thread(self.outbox.done, client_message_id)
            self._emit_error(
                ClientError(
                    f"a file of this message is gone from the outbox ({error.strerror or error}): attach it again",
                    chat_id=entry.chat_id,
                    client_message_id=client_message_id,
                )
            )
            await self._pump_outbox()

    # --- Plumbing ------------------------------------------------------------

    @staticmethod
    async def _send(ws: ClientConnection, frame: ClientFrame) -> None:
        await ws.send(encode(frame), text=True)

    async def _send_if_open(self, frame: ClientFrame) -> None:
        """Send now if connected; otherwise the reconnect sends what is still needed."""
        if self._ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await self._send(self._ws, frame)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _listen(self, kind: str, callback: Callable[..., Any]) -> Unsubscribe:
        listeners = self._listeners[kind]
        listeners.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                listeners.remove(callback)

        return unsubscribe

    def _notify(self, kind: str, *args: Any) -> None:
        for callback in list(self._listeners[kind]):
            try:
                callback(*args)
            except Exception:  # a broken listener must not stop the worker
                log.exception("an on_%s callback failed", kind)
        if kind != "open":
            for queue in self._queues:
                queue.put_nowait(args[0])

    def _emit(self, frame: ServerFrame | MessageReloaded) -> None:
        self._notify("message", frame)

    def _emit_error(self, error: ClientError) -> None:
        self._notify("error", error)

    def _set_state(self, **changes: Any) -> None:
        # Reasons quote the server (close reasons, HTTP bodies): shown in the status line.
        for name in ("reason", "last_error"):
            if changes.get(name) is not None:
                changes[name] = clean_text(changes[name])
        state = replace(self._state, **changes)
        if state == self._state:
            return
        self._state = state
        self._state_changed.set()
        self._state_changed = asyncio.Event()
        self._notify("state", state)


class _Stop(Exception):
    """The worker must stop: retrying cannot help.

    Args:
        problem: The kind of reason, for the UI to act on.
        reason: What happened and what to do, in words.
    """

    def __init__(self, problem: Problem, reason: str) -> None:
        super().__init__(reason)
        self.problem = problem
        self.reason = reason


class _Failed(Exception):
    """One connection attempt failed. The message says why."""


def _clean_results(results: SearchResults) -> SearchResults:
    """Search results with their titles and snippets cleaned, each snippet's highlights moved to match."""
    hits = []
    for hit in results.hits:
        snippet, highlights = clean_marked(hit.snippet, hit.highlights)
        cleaned = msgspec.structs.replace(
            hit, chat_title=clean_text(hit.chat_title), snippet=snippet, highlights=highlights
        )
        hits.append(cleaned)
    return SearchResults(hits=hits, next_cursor=results.next_cursor)


def _entry_of(frame: Message, files: list[PendingFile]) -> OutboxEntry:
    """The outbox record of a message, named here if the caller did not name it.

    The outbox resends it, and the server stores it once by that name.
    """
    params = None if frame.params is None else msgspec.to_builtins(frame.params)
    attachments = [msgspec.to_builtins(file) for file in files] or None
    return OutboxEntry(
        frame.client_message_id or _new_id(),
        frame.chat_id,
        frame.content,
        frame.model_id,
        frame.system_prompt,
        params,
        attachments,
    )


def _scheme_hint(url: str) -> str:
    """What to write instead of an ``http(s)://`` address; ``""`` for any other."""
    scheme = urlsplit(url).scheme
    if scheme in ("http", "https"):
        return f": use {'wss' if scheme == 'https' else 'ws'}:// instead of {scheme}://"
    return ""


def _reset_words(error: OSError) -> str:
    """An ``OSError`` of a TLS greeting in words, not a class name."""
    if isinstance(error, ConnectionResetError):
        return "the server reset the connection"
    return getattr(error, "reason", None) or error.strerror or str(error) or "no TLS answer"


def _new_id() -> str:
    return uuid.uuid4().hex
