"""``ChatClient``: the one asyncio worker that holds the WebSocket to the server.

It is the driver of a ``ChatSession`` (``session.py``), which holds the
rules of the conversation with no I/O: the client does what the session
cannot, the socket (connected with our own reconnect loop, not websockets'
built-in one, which resets its backoff after every handshake; one attempt
is ``dial.py``), the JSON ``ping`` heartbeat, the clock, the outbox file and
the listeners, and feeds the session what happens. The requests (``list_chats``...)
are ``ChatRequests`` (``requests.py``). It knows nothing of Textual: a UI
subscribes with the ``on_*`` methods or ``events()``.

Everything runs in the event loop of the caller; no threads except the
short ``fsync`` of an outbox write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar, Unpack

import msgspec
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from mfu_tui.client.attachments import Attachment
from mfu_tui.client.backoff import Backoff
from mfu_tui.client.data_dir import default_data_dir
from mfu_tui.client.dial import Failed, Stop, dial
from mfu_tui.client.errors import ClientError, RequestError
from mfu_tui.client.events import MessageReloaded, MessageTextLoaded
from mfu_tui.client.outbox import Outbox, OutboxEntry, PendingEdit, PendingFile, account_key, token_subject
from mfu_tui.client.read_cache import ReadCache
from mfu_tui.client.requests import ChatRequests, new_id
from mfu_tui.client.safe_text import clean_strings, clean_text, may_need_cleaning
from mfu_tui.client.session import (
    AnswerChunks,
    AnswerEnded,
    ChatSession,
    EditSettled,
    ErrorReceived,
    FrameReceived,
    MessageAcked,
    MessageDeferred,
    MessageRefused,
    Outcome,
    ReloadNeeded,
    ServerStorage,
    SessionEvent,
    UploadPart,
)
from mfu_tui.client.settings import ClientOptions, ClientSettings
from mfu_tui.client.state import ConnectionState, Problem, Status
from mfu_tui.client.whole_texts import WholeTexts
from mfu_tui.protocol import (
    ATTACHMENT_PART_BYTES,
    MAX_FRAME_BYTES,
    AttachmentPart,
    Cancel,
    ChatParams,
    ChatUpdated,
    ClientFrame,
    CloseCode,
    EditMessage,
    Error,
    Message,
    Ping,
    Pong,
    ProtocolError,
    Request,
    Result,
    ServerFrame,
    StoredMessage,
    Subscribe,
    UnknownFrameType,
    decode_result,
    decode_server,
    describe_close,
    encode,
    is_terminal,
    reconnect_at_once,
)
from mfu_tui.redaction import redact

log = logging.getLogger("mfu_tui.client")

#: What ``events()`` yields and the ``on_*`` callbacks receive.
Event = ServerFrame | MessageReloaded | MessageTextLoaded | ClientError | ConnectionState
Unsubscribe = Callable[[], None]
#: Where the server is now, when it moved: a new ``(url, token)``, or ``None`` (see ``ChatClient``).
Relocate = Callable[[], Awaitable[tuple[str, str] | None]]

#: Seconds a probe's pong may take before the state says the connection is being checked
#: (``ConnectionState.checking``): a round trip takes milliseconds, so a probe answered
#: (a model thinking in silence) never turns the dot yellow for a moment.
CHECKING_AFTER = 1.0
#: A clock that runs on while this process is stopped (SIGSTOP) or the machine sleeps (a closed lid):
#: Linux's ``CLOCK_BOOTTIME``; elsewhere the monotonic clock, which counts a stopped process at least.
_BOOTTIME = getattr(time, "CLOCK_BOOTTIME", None)


def _awake_clock() -> float:
    return time.clock_gettime(_BOOTTIME) if _BOOTTIME is not None else time.monotonic()


_T = TypeVar("_T")


class ChatClient(ChatRequests):
    """The connection worker of mfu-chat, usable as a library.

    Args:
        url: The server, e.g. ``"ws://127.0.0.1:5001/ws"``; ``None`` while it is not
            known yet (the local server still starting): set ``url`` and ``token``
            before ``connect()``, and give ``account`` and ``user``. Messages sent
            meanwhile wait in the outbox.
        token: The JWT, sent in the ``Authorization`` header (never logged).
        settings: The heartbeat, the timeouts and the data directory
            (``ClientSettings``; default: its defaults).
        backoff: The reconnect schedule (default: 0.5 s to 20 s, full jitter).
        keep_for_offline: Keep the chat list and the chats opened in a local
            ``ReadCache`` beside the outbox, to read them with the server out
            of reach (``cached_chats``, ``cached_chat``, ``search_cached``).
        account: What names this account's outbox and read cache, with the
            token's user (default: ``url``). Give a name that stays when the
            server's URL does not (the local server takes a new port each start),
            or what was queued under the old URL is not sent.
        user: The user whose outbox and read cache these are (default: the
            token's). Needed when there is no token yet.
        relocate: Asked after each failed attempt to connect: the server's new
            ``(url, token)`` when it was started again elsewhere, or ``None`` to
            keep trying the same one (the backoff applies).
        **options: Fields of ``ClientSettings`` to change, by name
            (``ping_interval=0.5``): they win over ``settings``.
    """

    def __init__(
        self,
        url: str | None,
        token: str | None,
        settings: ClientSettings | None = None,
        *,
        backoff: Backoff | None = None,
        keep_for_offline: bool = False,
        account: str | None = None,
        user: str | None = None,
        relocate: Relocate | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        self.url = url
        self.token = token
        account = account or url
        if account is None or (user is None and token is None):
            raise ValueError("a client with no url and token yet needs an account and a user")
        #: Names this account's files (outbox, read cache) with ``user``: ``url`` unless given.
        self.account = account
        #: The user of this account's files; a token for another user is refused (``sign_in``).
        self.user = user if user is not None else token_subject(token or "")
        self.relocate = relocate
        settings = settings or ClientSettings()
        self.settings = replace(settings, **options) if options else settings
        """The heartbeat, the timeouts and the data directory in effect."""
        #: ``loop.time()`` of the first failure since the last connection, while failing.
        self._failing_since: float | None = None
        self.backoff = backoff or Backoff()
        self._data_dir = Path(self.settings.data_dir or default_data_dir())  # a str from an untyped caller too
        self.outbox = Outbox.for_account(self._data_dir, self.account, self.user)
        #: What the server sent of the chat list and the chats opened, for reading offline.
        self.read_cache = ReadCache(self._cache_file(self.user)) if keep_for_offline else None
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
        #: The session's rules (outbox order, in flight, resend, edits, cancels, streams), fed by this driver.
        self.session = ChatSession(self.outbox.pending(), self.outbox.pending_edits())
        self._requests: dict[str, tuple[asyncio.Future[Any], str]] = {}
        # The bytes of the files being uploaded, by (clientMessageId, clientAttachmentId): read once per upload.
        self._file_data: dict[tuple[str, str], bytes] = {}
        # Wakes the session when a message refused for now may be tried again.
        self._timer: asyncio.TimerHandle | None = None
        self._heartbeat_failure: str | None = None
        self._pong_waiter: asyncio.Future[None] | None = None
        self._ping_ts: float | None = None
        #: ``loop.time()`` of the last frame from the server (or of the connection's start).
        self._heard_at = 0.0
        self._tasks: set[asyncio.Task[Any]] = set()
        #: The messages whose rest is being loaded (``load_whole_texts``): none is asked for twice at once.
        self._loading_texts: set[str] = set()
        #: The whole texts loaded lately: not loaded again when the same page comes again (a reconnect).
        self._whole_texts = WholeTexts()

    # --- Subscriptions -------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """The current connection state."""
        return self._state

    def on_open(self, callback: Callable[[], None]) -> Unsubscribe:
        """Call ``callback()`` after each successful (re)connect; returns the unsubscribe function."""
        return self._listen("open", callback)

    def on_message(self, callback: Callable[[ServerFrame | MessageReloaded | MessageTextLoaded], None]) -> Unsubscribe:
        """Call ``callback(frame)`` for each server frame (chunks once and in order), ``MessageReloaded``
        and ``MessageTextLoaded``.

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
        """Yield what the ``on_*`` callbacks get: frames, ``MessageReloaded``, ``MessageTextLoaded``, ``ClientError``,
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

        Raises:
            ClientError: ``url`` or ``token`` is not known yet.
        """
        if self.url is None or self.token is None:
            raise ClientError("no server to connect to yet: set url and token first")
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
                After a first token that named nobody (not a JWT), the first
                user named takes the client, and what was sent meanwhile.
        """
        user = token_subject(token)
        if user != self.user:
            if self.user:
                raise ClientError(
                    "that token is for another user: to change user, quit,"
                    " run mfu-chat login with the new token, and start mfu-chat again"
                )
            self._become(user)
        ws = self._ws
        await self._stop_worker()
        if ws is not None:
            await ws.close(CloseCode.NORMAL, "signing in again")
        self.token = token
        await self.connect()

    def _become(self, user: str) -> None:
        """Take ``user``'s outbox and read cache in place of the nameless ones of a token that named nobody.

        Only while not connected (``sign_in`` stopped the worker): nothing is in flight. The messages in
        the nameless outbox were typed here, waiting for a token that works: they go as ``user``'s.
        """
        nameless = self.outbox
        self.outbox = Outbox.for_account(self._data_dir, self.account, user)
        nameless.close()
        self.outbox.adopt(nameless.path)
        if self.read_cache is not None:
            self.read_cache.close()
            self.read_cache = ReadCache(self._cache_file(user))
        self.user = user
        self.session = ChatSession(self.outbox.pending(), self.outbox.pending_edits())

    def _cache_file(self, user: str) -> Path:
        return self._data_dir / f"cache-{account_key(self.account, user)}.sqlite3"

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
        self._stopped(Stop(Problem.CLOSED, "closed by user"))
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
            outcome = self.session.subscribe(frame.chat_id)
        elif isinstance(frame, Cancel):
            outcome = self.session.cancel(frame)
        elif isinstance(frame, EditMessage):
            if frame.client_edit_id is None:
                frame = msgspec.structs.replace(frame, client_edit_id=new_id())
            await self._keep_edit(frame)
            outcome = self.session.edit(frame)
        elif self._ws is not None:
            outcome = Outcome([frame])
        else:
            self._wake.set()
            raise ClientError(f"cannot send {type(frame).__name__}: not connected")
        if self._ws is None:
            self._wake.set()
        await self._apply(outcome)

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
        client_message_id = client_message_id or new_id()
        files = [PendingFile(new_id(), file.name, file.media_type, file.size) for file in attachments]
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
            chat_id=chat_id, message_id=message_id, content=content, regenerate=regenerate, client_edit_id=new_id()
        )
        await self.send(frame)
        return frame.client_edit_id  # type: ignore[return-value]

    async def subscribe(self, chat_id: str) -> None:
        """Receive the events of ``chat_id``, now and after every reconnect."""
        await self.send(Subscribe(chat_id=chat_id))

    def load_whole_texts(self, chat_id: str, messages: Iterable[StoredMessage]) -> None:
        """Load the rest of each message of a page of ``chat_id`` that came cut (``truncated``), in the background.

        Each arrives whole as a ``MessageTextLoaded`` (``on_message``), a part
        at a time (``message_text``); a message already being loaded is not
        asked for twice, and one loaded lately comes from memory (the app
        loads the open chat again after each reconnect). A failure goes to
        ``on_error`` and the message stays cut: calling this again with it
        asks again.
        """
        for message in messages:
            if not message.truncated:
                continue
            if (whole := self._whole_texts.get(message)) is not None:
                # After the caller's page, as a loaded one would come.
                asyncio.get_running_loop().call_soon(self._emit, MessageTextLoaded(chat_id, message.id, whole))
            elif message.id not in self._loading_texts:
                self._loading_texts.add(message.id)
                self._spawn(self._load_whole_text(chat_id, message))

    async def _load_whole_text(self, chat_id: str, message: StoredMessage) -> None:
        try:
            content = await self.message_text(chat_id, message)
        except (ClientError, TimeoutError) as error:
            where = {"chat_id": chat_id, "message_id": message.id}
            self._emit_error(ClientError(f"could not load the rest of a long message: {error or 'no answer'}", **where))
            return
        finally:
            self._loading_texts.discard(message.id)
        self._whole_texts.put(message, content)
        self._emit(MessageTextLoaded(chat_id, message.id, content))

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
            async with asyncio.timeout(self.settings.request_timeout):
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

    @property
    def _shown_url(self) -> str:
        """``url`` for log lines and reasons, any token in it masked."""
        return redact(self.url or "no server yet")

    def _running(self) -> bool:
        return self._worker is not None and not self._worker.done()

    async def _run(self) -> None:
        """Connect, serve the connection, wait the backoff delay, again; until stopped."""
        loop = asyncio.get_running_loop()
        assert self.url is not None and self.token is not None  # connect() checks; relocate() gives both
        try:
            while True:
                self._wake.clear()
                try:
                    ws = await dial(self.url, self.token, self.settings.open_timeout)
                except Stop as stop:
                    self._stopped(stop)
                    return
                except Failed as failed:
                    error = str(failed)
                    if self.relocate is not None and (moved := await self.relocate()) is not None:
                        # The server was started again elsewhere (the local server, on a new port).
                        log.info("the server moved: connecting to %s", redact(moved[0]))
                        self.url, self.token = moved
                        continue
                else:
                    try:
                        error = await self._serve(ws)
                    except Stop as stop:
                        self._stopped(stop)
                        return
                    close = ws.protocol.close_rcvd
                    if close is not None and reconnect_at_once(close.code):
                        # 4012: the server is restarting and another node takes the connection now.
                        log.info("%s: connecting again at once", error)
                        self._set_state(status=Status.RECONNECTING, retry_at=None, last_error=error, reason=None)
                        continue
                delay = self.backoff.next_delay(loop.time())
                log.info("no connection to %s (%s): next attempt in %.1f s", self._shown_url, error, delay)
                failing = self._failing(error, loop.time())
                self._set_state(**failing, retry_at=loop.time() + delay, last_error=error)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                self._set_state(**failing, retry_at=None)
        except Exception as error:  # a bug: say so rather than die silently
            log.exception("the connection worker failed")
            self._emit_error(ClientError(f"internal error in the connection worker: {error!r}"))
            self._stopped(Stop(Problem.INTERNAL, f"internal error: {error!r}"))

    def _failing(self, error: str, now: float) -> dict[str, Any]:
        """The status to show after a failed attempt: yellow at first, red once it lasts.

        A short outage is "reconnecting"; one longer than ``offline_after``
        is "offline: server unreachable", said plainly, while the worker
        keeps trying in the background.
        """
        if self._failing_since is None:
            self._failing_since = now
        if now - self._failing_since < self.settings.offline_after:
            return {"status": Status.RECONNECTING, "reason": None, "problem": None}
        return {
            "status": Status.DISCONNECTED,
            "reason": f"server unreachable at {self._shown_url}: {error}",
            "problem": Problem.UNREACHABLE,
        }

    async def _serve(self, ws: ClientConnection) -> str:
        """Serve one open connection until it ends; returns why it ended.

        Raises:
            Stop: the server closed with a terminal code (4401, 4403, 4410).
        """
        loop = asyncio.get_running_loop()
        self._ws = ws
        catch_up = self.session.connected()  # with ``_ws``: the session is online exactly while it is set
        self._heartbeat_failure = None
        self._heard_at = loop.time()
        self.backoff.connected(loop.time())
        self._failing_since = None
        log.info("connected to %s", self._shown_url)
        # A server still in an outage says so among its first frames: a new connection starts with none.
        self._set_state(
            status=Status.CONNECTED,
            retry_at=None,
            last_error=None,
            reason=None,
            problem=None,
            storage_unavailable=None,
            checking=False,
        )
        heartbeat = asyncio.create_task(self._heartbeat(ws), name="mfu-chat heartbeat")
        try:
            await self._apply(catch_up)
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
        if close is not None and close.code == CloseCode.ACCOUNT_DELETED:
            if self.read_cache is not None:  # what the server deleted does not stay readable here
                await asyncio.to_thread(self.read_cache.forget_everything)
            raise Stop(Problem.ACCOUNT_DELETED, describe_close(close.code))
        if close is not None and is_terminal(close.code):
            meaning = "token invalid or expired" if close.code == CloseCode.UNAUTHORIZED else "forbidden"
            raise Stop(Problem.TOKEN_REFUSED, f"auth refused: {close.reason or meaning}")
        return error

    def _connection_lost(self) -> None:
        """Forget what belonged to the connection that just ended."""
        self.session.lost()
        self._file_data.clear()
        for request_id, (future, name) in list(self._requests.items()):
            if not future.done():
                future.set_exception(ClientError(f"connection lost before the answer to {name}"))
            del self._requests[request_id]
        if self._pong_waiter is not None and not self._pong_waiter.done():
            self._pong_waiter.cancel()

    async def _heartbeat(self, ws: ClientConnection) -> None:
        """Ping at once, then every ``ping_interval`` or sooner as a probe; abort the connection if a pong is late."""
        loop = asyncio.get_running_loop()
        probing = False
        try:
            while True:
                sent_at = loop.time()
                self._ping_ts = sent_at
                self._pong_waiter = loop.create_future()
                timeout = self.settings.probe_timeout if probing else self.settings.ping_timeout
                try:
                    async with asyncio.timeout(timeout):
                        await self._send(ws, Ping(ts=sent_at))
                        if probing and not (await asyncio.wait({self._pong_waiter}, timeout=CHECKING_AFTER))[0]:
                            self._set_state(checking=True)
                        await self._pong_waiter
                except TimeoutError:
                    self._heartbeat_failure = f"no answer to ping within {timeout:g} s"
                    log.warning("%s: dropping the connection", self._heartbeat_failure)
                    # No closing handshake: a silent network would not carry it.
                    ws.transport.abort()
                    return
                self._set_state(rtt=loop.time() - sent_at, checking=False)
                probing = await self._until_next_ping(sent_at + self.settings.ping_interval)
        except (ConnectionClosed, asyncio.CancelledError):
            return

    async def _until_next_ping(self, due: float) -> bool:
        """Wait for the next ping, due at ``due`` or sooner; True if it is a probe.

        A probe goes as soon as the server has been silent for ``probe_after``
        while it owes this client a frame (``ChatSession.awaiting``, or a
        request's answer): a network gone silent in the middle of an answer
        is noticed in seconds, not at the next heartbeat. A model that says
        nothing for a while is not mistaken for one: the server answers the
        probe, and the connection stays.

        A probe also goes on waking ``probe_after`` later than asked: this
        process or the machine was paused (SIGSTOP, a closed lid), the network
        may have gone meanwhile, and the next heartbeat may be minutes away.
        """
        loop = asyncio.get_running_loop()
        while (now := loop.time()) < due:
            quiet_until = self._heard_at + self.settings.probe_after
            owed = self.session.awaiting or bool(self._requests)
            if owed and quiet_until <= now:
                return True
            # Looked at again once the silence would be long enough, or (nothing owed) within ``probe_after``:
            # a message sent meanwhile is owed an answer.
            nap = min(due, quiet_until if owed else now + self.settings.probe_after) - now
            asleep_from = _awake_clock()
            await asyncio.sleep(nap)
            if _awake_clock() - asleep_from > nap + self.settings.probe_after:
                return True
        return False

    def _stopped(self, stop: Stop) -> None:
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
        self._heard_at = asyncio.get_running_loop().time()
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
            return
        await self._apply(self.session.receive(frame, asyncio.get_running_loop().time()))

    def _answer_request(self, frame: Result, unsafe: bool) -> None:
        """Hand a waiting request its answer's data, and whether that may need cleaning."""
        future = self._requests[frame.request_id][0]
        if not future.done():
            future.set_result((frame.data, unsafe))

    # --- Acting on the session's outcomes ----------------------------------------

    async def _apply(self, outcome: Outcome) -> None:
        """Send an outcome's frames on the connection it was made for, then act on its events.

        The connection is taken before the first ``await``: the session made
        the frames for the one up then, and a later one gets its own.
        """
        ws = self._ws
        if ws is not None and outcome.frames:
            with contextlib.suppress(ConnectionClosed):  # the reconnect sends what is still needed
                for item in outcome.frames:
                    frame = await self._part(item) if isinstance(item, UploadPart) else item
                    if frame is not None:  # None: its message is given up (``_file_missing``)
                        await self._send(ws, frame)
        for event in outcome.events:
            if isinstance(event, AnswerChunks):  # nearly every event: handed on with no await
                for chunk in event.chunks:
                    self._emit(chunk)
            else:
                await self._act(event)
        self._arm_timer()

    async def _act(self, event: SessionEvent) -> None:
        """Do what an event asks: write the outbox, hand a frame to the listeners, report an error.

        ``AnswerChunks`` are handed on by ``_apply`` itself, with no await.
        """
        match event:
            case MessageAcked(ack):
                await self._outbox_done(ack.client_message_id)
                self._emit(ack)
            case MessageRefused(client_message_id, _, code):
                log.warning("message %s refused (%s): dropped from the outbox", client_message_id, code)
                await self._outbox_done(client_message_id)
            case MessageDeferred(client_message_id, _, code, retry_at):
                wait = retry_at - asyncio.get_running_loop().time()
                log.info("message %s refused (%s); trying again in %.3g s", client_message_id, code, wait)
            case EditSettled(client_edit_id):
                async with self._outbox_lock:
                    await asyncio.to_thread(self.outbox.edit_done, client_edit_id)
            case ErrorReceived(error, client_message_id):
                self._on_error_frame(error, client_message_id)
            case AnswerEnded(end):
                self._emit(end)
            case ReloadNeeded(chat_id, message_id):
                self._spawn(self._reload(chat_id, message_id))
            case FrameReceived(frame):
                if isinstance(frame, ChatUpdated):  # here or in another terminal: the kept list follows
                    await (self._forget_cached(frame.chat.id) if frame.deleted else self._keep_listed(frame.chat))
                self._emit(frame)
            case MessageReloaded():
                self._emit(event)
            case ServerStorage(available, message):
                log.info("the server says its storage is %s: %s", "back" if available else "unavailable", message)
                self._set_state(storage_unavailable=None if available else message)

    def _on_error_frame(self, frame: Error, client_message_id: str | None) -> None:
        """Fail the request an ``error`` answers, or tell the listeners."""
        pending = self._requests.get(frame.request_id) if frame.request_id else None
        if pending is not None:
            if not pending[0].done():
                where = {"chat_id": frame.chat_id, "message_id": frame.message_id}
                pending[0].set_exception(RequestError(frame.code, frame.message, **where))
            return
        where = {"chat_id": frame.chat_id, "message_id": frame.message_id, "client_message_id": client_message_id}
        self._emit_error(ClientError(frame.message, code=frame.code, **where))

    async def _part(self, part: UploadPart) -> AttachmentPart | None:
        """The ``attachment_part`` the session asks for, read from the copy kept beside the outbox.

        Returns ``None`` if that copy is gone: the message can never be sent whole, and is given up.
        """
        key = (part.client_message_id, part.file.client_attachment_id)
        try:
            if key not in self._file_data:
                self._file_data[key] = await asyncio.to_thread(self.outbox.file_bytes, key[1])
        except OSError as error:
            self._spawn(self._file_missing(part, error))
            return None
        data = self._file_data[key]
        if part.offset + ATTACHMENT_PART_BYTES >= part.file.size:
            del self._file_data[key]  # its last part: the server acks the rest, or a reconnect reads it again
        return AttachmentPart(
            client_message_id=part.client_message_id,
            client_attachment_id=part.file.client_attachment_id,
            name=part.file.name,
            media_type=part.file.media_type,
            size=part.file.size,
            offset=part.offset,
            data=data[part.offset : part.offset + ATTACHMENT_PART_BYTES],
        )

    async def _file_missing(self, part: UploadPart, error: OSError) -> None:
        log.warning("message %s: a file kept for it is gone (%s)", part.client_message_id, error)
        outcome = self.session.file_missing(part.client_message_id)
        await self._apply(outcome)
        for event in outcome.events:
            if isinstance(event, MessageRefused):
                why = f"a file of this message is gone from the outbox ({error.strerror or error}): attach it again"
                self._emit_error(ClientError(why, chat_id=event.chat_id, client_message_id=event.client_message_id))

    async def _outbox_done(self, client_message_id: str) -> None:
        """Forget a message that left the outbox (acknowledged or refused), on disk and here."""
        self._file_data = {key: data for key, data in self._file_data.items() if key[0] != client_message_id}
        async with self._outbox_lock:
            await asyncio.to_thread(self.outbox.done, client_message_id)

    def _arm_timer(self) -> None:
        """Wake the session when it has something to do later (a refused message to try again)."""
        wake_at = self.session.wake_at
        if self._timer is not None and (wake_at is None or self._timer.when() != wake_at):
            self._timer.cancel()
            self._timer = None
        if wake_at is not None and self._timer is None:
            self._timer = asyncio.get_running_loop().call_at(wake_at, self._spawn_tick)

    def _spawn_tick(self) -> None:
        self._timer = None
        self._spawn(self._tick())

    async def _tick(self) -> None:
        await self._apply(self.session.tick(asyncio.get_running_loop().time()))

    async def _reload(self, chat_id: str, message_id: str) -> None:
        """After ``resync``: load the stored message and hand it to the listeners whole."""
        log.info("resync of message %s: reloading it", message_id)
        try:
            stored = await self.find_message(chat_id, message_id)
            if stored is not None:
                stored = await self.whole_message(chat_id, stored)
        except (ClientError, TimeoutError) as error:
            self.session.reload_failed(message_id)
            self._emit_error(ClientError(f"could not reload message {message_id}: {error}", chat_id=chat_id))
            return
        await self._apply(self.session.reloaded(chat_id, message_id, stored))
        if stored is None:
            self._emit_error(ClientError(f"message {message_id} no longer exists", code="not_found", chat_id=chat_id))

    # --- Outbox --------------------------------------------------------------

    async def _post(self, entry: OutboxEntry) -> None:
        """Write a message to the outbox, then send what may be sent."""
        async with self._outbox_lock:
            await asyncio.to_thread(self.outbox.add, entry)
        log.debug("message %s written to the outbox", entry.client_message_id)
        self._wake.set()
        await self._apply(self.session.post(entry))

    async def _keep_edit(self, frame: EditMessage) -> None:
        """Write an edit to the outbox: durable before it is sent."""
        assert frame.client_edit_id is not None
        edit = PendingEdit(frame.client_edit_id, frame.chat_id, frame.message_id, frame.content, frame.regenerate)
        async with self._outbox_lock:
            await asyncio.to_thread(self.outbox.add_edit, edit)

    # --- Plumbing ------------------------------------------------------------

    @staticmethod
    async def _send(ws: ClientConnection, frame: ClientFrame) -> None:
        await ws.send(encode(frame), text=True)

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

    def _emit(self, frame: ServerFrame | MessageReloaded | MessageTextLoaded) -> None:
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


def _entry_of(frame: Message, files: list[PendingFile]) -> OutboxEntry:
    """The outbox record of a message, named here if the caller did not name it.

    The outbox resends it, and the server stores it once by that name.
    """
    params = None if frame.params is None else msgspec.to_builtins(frame.params)
    attachments = [msgspec.to_builtins(file) for file in files] or None
    return OutboxEntry(
        frame.client_message_id or new_id(),
        frame.chat_id,
        frame.content,
        frame.model_id,
        frame.system_prompt,
        params,
        attachments,
    )
