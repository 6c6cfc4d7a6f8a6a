"""One WebSocket connection: a reader, a writer, and a bounded outgoing queue.

The reader decodes each text frame and hands it to the handlers; a frame
that does not decode gets a ``bad_request`` (or ``too_large``) error naming
the ids the frame carried, and the connection goes on.
Everything sent to the client only appends to a queue, so a generation or a
broadcast never waits for a socket. The queue holds frames encoded for the
wire (``wire.text_frame``: a published frame is encoded once by the hub, for
every receiver), and is written by a callback the loop runs once after the
frames queued in the same turn: all of them in one transport write (up to
``WRITE_BATCH_BYTES``), or, while the transport is over its high-water mark,
when it drains. Two kinds of frames go in:

- pushed frames (``deliver``: live chunks, broadcasts) arrive whether the
  client reads or not. A client that lets more than ``send_queue_bytes`` of
  them pile up is closed with 4000 (slow consumer), so one stuck reader
  costs a bounded amount of memory and nothing else;
- replies (``reply``: results, errors, the replay of a ``resume``) answer the
  client's own frames. They are never cut off, however large (a long chat, a
  long replay), or a client could never catch up; instead the reader stops
  reading the client's next frame while the queue is over the limit, so
  the client cannot make the server buffer more than one reply beyond it.

Replies are also counted per user, across all of the user's connections on
this node (``UserReplies``): 20 connections each one reply over their own
limit would otherwise hold 20 times as much. A reader also waits while its
user's total is over ``reply_bytes_per_user``, and goes on as soon as any
of the user's connections has written enough.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.protocol import Event, State

from mfu_tui.protocol import (
    MAX_SERVER_FRAME_BYTES,
    ClientFrame,
    CloseCode,
    Error,
    ErrorCode,
    FrameIds,
    FrameTooLarge,
    ListModels,
    ProtocolError,
    Subscribe,
    decode_client,
    encode,
)
from mfu_tui.server.auth import Identity
from mfu_tui.server.flag import Flag
from mfu_tui.server.handlers import FrameError, Handlers
from mfu_tui.server.hub import Hub
from mfu_tui.server.metrics import ServerMetrics
from mfu_tui.server.store.outage import OutageLog
from mfu_tui.server.wire import WireFrame, text_frame

log = logging.getLogger(__name__)

#: Seconds a last error frame (token expired) may take before the close goes out anyway.
NOTICE_TIMEOUT = 2.0
#: Most bytes of queued frames joined into one transport write (a larger frame goes alone).
WRITE_BATCH_BYTES = 64 * 1024
#: Bytes beyond the send queue that may wait in a connection's transport: one frame
#: of the largest kind (nothing more is written while the transport is over its
#: high-water mark, and one write adds at most a batch or one frame).
TRANSPORT_SLACK = MAX_SERVER_FRAME_BYTES
#: WebSocket pings a client may send at once, then per second: clients ping every
#: few seconds at most (ours every 25 s). A flood costs the event loop a pong each, and
#: every other user waits meanwhile (x30 while one lasted): past it, the connection is dropped.
PING_BURST = 20
PINGS_PER_SECOND = 2.0


class PendingHandshakes:
    """The connections still in their opening handshake: at most ``limit``, the oldest dropped past it.

    Each costs a socket and a task until its handshake ends or times out
    (``handshake_timeout``). Dropping the oldest rather than refusing the
    newest is what keeps the door open: a peer that opens connections and
    never finishes their requests (slowloris) only pushes out its own older
    ones, while a real client, done in one round trip, gets through.

    Args:
        limit: The most connections in their handshake at once.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        #: In arrival order (dicts keep it): the first is the oldest.
        self._pending: dict[BoundedWebSocket, None] = {}
        #: Connections dropped to make room (for stats and tests).
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._pending)

    def begin(self, connection: BoundedWebSocket) -> None:
        if len(self._pending) >= self.limit:
            oldest = next(iter(self._pending))
            self.end(oldest)
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:  # a flood would log a line per connection
                log.warning(
                    "%d connection(s) dropped: more than %d opening handshakes at once", self.dropped, self.limit
                )
            oldest.transport.abort()
        self._pending[connection] = None

    def end(self, connection: BoundedWebSocket) -> None:
        self._pending.pop(connection, None)


class BoundedWebSocket(ServerConnection):
    """websockets' server connection, with bounds on its transport and on handshakes in progress.

    Our own frames wait in ``Connection``'s bounded queue, and its writer waits
    for the transport to drain. But websockets answers each ping with a pong
    written straight to the transport: a client that sends pings and never
    reads would make it grow without end (0.5 to 0.9 GiB were seen). Past
    ``send_queue_bytes`` plus one frame the TCP connection is dropped.

    Until its opening handshake ends, the connection counts in ``pending_handshakes``.
    A client that sends pings faster than ``PINGS_PER_SECOND`` (after a burst of
    ``PING_BURST``) is dropped.

    What this class adds to each connection lives in slots, outside
    websockets' instance dict: that dict already holds 27 attributes, and
    CPython shares the keys of at most 30 between the instances of a class
    (past them, each instance pays for a whole dict of its own).
    """

    __slots__ = ("_pings_allowed", "_pings_counted_at", "on_writable", "identity", "subscribe_to", "client_address")

    #: Set by the server from its configuration (``send_queue_bytes`` + ``TRANSPORT_SLACK``).
    transport_limit = 0
    #: Set by the server: its connections in their opening handshake.
    pending_handshakes: PendingHandshakes
    #: Called when the transport drained below its low-water mark (set by ``Connection``).
    on_writable: Callable[[], None] | None
    #: Who the token at the door speaks for (set once the request is accepted).
    identity: Identity
    #: The chat of the URL's ``?chat=`` (set once the request is accepted).
    subscribe_to: str | None
    #: The client's address for the logs (``X-Forwarded-For`` from a trusted proxy; set with ``identity``).
    client_address: str

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.pending_handshakes.begin(self)
        self._pings_allowed = float(PING_BURST)
        self._pings_counted_at = time.monotonic()
        self.on_writable = None

    async def handshake(self, *args: Any, **kwargs: Any) -> None:
        try:
            await super().handshake(*args, **kwargs)
        finally:  # done, refused, failed or timed out (``open_timeout`` cancels it)
            self.pending_handshakes.end(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.pending_handshakes.end(self)
        super().connection_lost(exc)

    @property
    def writable(self) -> bool:
        """False while the transport holds more than its high-water mark (until ``on_writable``)."""
        return not self.paused

    def write_frames(self, frames: list[WireFrame]) -> bool:
        """Write whole encoded frames in one transport write; False (nothing written) once not open.

        After the closing handshake began no data frame may follow our close
        frame (RFC 6455 section 5.5.1), and websockets then owns the transport.
        """
        if self.protocol.state is not State.OPEN or self.transport.is_closing():
            return False
        self.transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
        return True

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.on_writable is not None:
            self.on_writable()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.get_write_buffer_size() > self.transport_limit:
            log.info("dropping a connection that does not read what it is sent (pongs included)")
            self.transport.abort()

    def process_event(self, event: Event) -> None:
        if isinstance(event, Frame) and event.opcode is Opcode.PING and not self._ping_allowed():
            if not self.transport.is_closing():
                log.info("dropping a connection that floods the server with pings")
                self.transport.abort()
            return
        super().process_event(event)

    def _ping_allowed(self) -> bool:
        now = time.monotonic()
        elapsed, self._pings_counted_at = now - self._pings_counted_at, now
        self._pings_allowed = min(PING_BURST, self._pings_allowed + elapsed * PINGS_PER_SECOND) - 1
        return self._pings_allowed >= 0


class UserReplies:
    """Bytes of replies waiting to be written across one user's connections on this node.

    Shared by the user's ``Connection`` objects, which add what they queue
    and remove what they write or drop. When the total crosses ``limit``
    (either way) each connection is told, so that its reader waits, or
    reads on.

    Args:
        limit: The total above which the user's readers wait.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        #: Reply bytes queued and not yet written, over all the user's connections.
        self.queued = 0
        #: The most ever queued at once (for stats and tests).
        self.peak = 0
        #: The user's open connections (the ones to tell when the total crosses the limit);
        #: a list: 20 at most, and a set costs 216 bytes for one.
        self.connections: list[Connection] = []

    @property
    def over(self) -> bool:
        """True while the user's readers must wait."""
        return self.queued > self.limit

    def add(self, size: int) -> None:
        was_over = self.over
        self.queued += size
        self.peak = max(self.peak, self.queued)
        if self.over and not was_over:
            self._crossed()

    def remove(self, size: int) -> None:
        was_over = self.over
        self.queued -= size
        if was_over and not self.over:
            self._crossed()

    def _crossed(self) -> None:
        for connection in self.connections:
            connection.update_room()


class Connection:
    """The server side of one client connection (a ``hub.Receiver``)."""

    def __init__(
        self,
        websocket: BoundedWebSocket,
        identity: Identity,
        handlers: Handlers,
        hub: Hub,
        *,
        send_queue_bytes: int,
        token_leeway: float,
        replies: UserReplies,
        metrics: ServerMetrics,
        outages: OutageLog,
    ) -> None:
        self.websocket = websocket
        self.user = identity.user
        self._identity = identity
        self._handlers = handlers
        self._hub = hub
        self._limit = send_queue_bytes
        self._leeway = token_leeway
        self._metrics = metrics
        self._outages = outages
        #: Frames to send, each with whether it was pushed (True) or a reply (a list, not a
        #: deque: a deque's first block is 600 bytes, and the queue is written whole).
        self._queue: list[tuple[WireFrame, bool]] = []
        self._queued_bytes = 0
        self._pushed_bytes = 0
        #: Replies queued here, counted in ``replies`` too (handed back when they go or are dropped).
        self._reply_bytes = 0
        self._replies = replies
        #: False once the connection stopped taking frames: nothing will drain the queue any more.
        self._writing = True
        #: True while a call of ``_flush`` is scheduled.
        self._flush_scheduled = False
        self._loop = asyncio.get_running_loop()
        #: The most bytes ever queued at once (for stats and tests).
        self.peak_queued_bytes = 0
        #: Set while the queue and the user's replies are within their limits: the reader
        #: may take the next frame (see ``update_room``).
        self._room = Flag()
        self._room.set()
        #: Frames handled in tasks of their own (``list_models``), made on the first.
        self._background: set[asyncio.Task[None]] | None = None
        self._closer: asyncio.Task[None] | None = None
        #: Set once the server decided to close this connection (see ``close_code``).
        self.closing = Flag()
        self.close_code: int | None = None
        #: Set once the connection is closed and its resources are released.
        self.finished = Flag()
        #: The last ``server_status`` queued (``deliver_status``), which a newer one replaces if still unsent.
        self._status: WireFrame | None = None

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting to be sent on this connection (for the metrics)."""
        return self._queued_bytes

    def deliver(self, frame: WireFrame) -> None:
        """Queue a pushed frame; closes the connection with 4000 past the byte limit."""
        if self.closing.is_set():
            return
        self._pushed_bytes += len(frame)
        if self._pushed_bytes > self._limit:
            self.close(CloseCode.SLOW_CONSUMER, "slow consumer: too much unread data")
            return
        self._enqueue(frame, pushed=True)

    def deliver_status(self, frame: WireFrame) -> None:
        """Queue a pushed ``server_status``, dropping the one before it if still unsent.

        Only the latest state matters: a flapping database queues one of
        them at most. The new one goes last, after the refusals of the outage
        it may end, so a client resends them when it says ``ok``.
        """
        stale, self._status = self._status, frame
        for index, (queued, _) in enumerate(self._queue):
            if queued is stale:
                del self._queue[index]
                self._queued_bytes -= len(queued)
                self._pushed_bytes -= len(queued)
                break
        self.deliver(frame)

    def reply(self, data: bytes) -> None:
        """Queue a frame (its JSON) that answers this connection's own frame; never cut off."""
        if not self.closing.is_set():
            self._enqueue(text_frame(data), pushed=False)

    def _enqueue(self, frame: WireFrame, *, pushed: bool) -> None:
        self._queue.append((frame, pushed))
        self._queued_bytes += len(frame)
        self.peak_queued_bytes = max(self.peak_queued_bytes, self._queued_bytes)
        if not pushed:
            self._reply_bytes += len(frame)
            self._replies.add(len(frame))
        self.update_room()
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        """Write the queue once the frames queued in this turn of the loop are in."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Write the queue, up to ``WRITE_BATCH_BYTES`` per transport write, while the transport takes it."""
        self._flush_scheduled = False
        while self._queue and self.websocket.writable:  # else ``on_writable`` comes back here
            if not self.websocket.write_frames(self._take_batch()):
                self._stop_writing()
                return

    def _take_batch(self) -> list[WireFrame]:
        """Take the next frames to write together (at least one), counting them out of the limits."""
        batch: list[WireFrame] = []
        size = pushed_size = 0
        for frame, pushed in self._queue:
            if batch and size + len(frame) > WRITE_BATCH_BYTES:
                break
            batch.append(frame)
            size += len(frame)
            if pushed:
                pushed_size += len(frame)
        del self._queue[: len(batch)]
        self._queued_bytes -= size
        self._pushed_bytes -= pushed_size
        if size > pushed_size:
            self._reply_bytes -= size - pushed_size
            self._replies.remove(size - pushed_size)
        self.update_room()
        return batch

    def _stop_writing(self) -> None:
        """The connection is closing or closed: drop what is queued, and never hold the reader again."""
        self._writing = False
        self._queue.clear()
        self._queued_bytes = self._pushed_bytes = 0
        self._drop_replies()
        self.update_room()

    def update_room(self) -> None:
        """Let the reader take the next frame, or make it wait, by both limits.

        A closing connection, or one that stopped writing, never holds its
        reader: nothing would ever make room.
        """
        within = self._queued_bytes <= self._limit and not self._replies.over
        if within or self.closing.is_set() or not self._writing:
            self._room.set()
        else:
            self._room.clear()

    def _drop_replies(self) -> None:
        """Hand the user's budget back the replies that will never be written."""
        self._replies.remove(self._reply_bytes)
        self._reply_bytes = 0

    def close(self, code: int, reason: str, *, notice: bytes | None = None) -> None:
        """Close with ``code`` (once); queued frames are dropped, ``notice`` is sent first."""
        if self.closing.is_set():
            return
        self.close_code = code
        self.closing.set()
        self._queue.clear()
        self._queued_bytes = self._pushed_bytes = 0
        self._drop_replies()
        self.update_room()  # the reader must not wait for a writer that is gone
        log.info("closing a connection of %s: %d %s", self.user, code, reason)
        self._closer = asyncio.get_running_loop().create_task(self._close(code, reason, notice))

    async def _close(self, code: int, reason: str, notice: bytes | None) -> None:
        if notice is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(NOTICE_TIMEOUT):
                    await self.websocket.send(notice, text=True)
        await self.websocket.close(code, reason)

    def _expire(self) -> None:
        notice = encode(Error(code=ErrorCode.UNAUTHORIZED.value, message="your token expired: get a new one"))
        self.close(CloseCode.UNAUTHORIZED, "token expired", notice=notice)

    async def run(self, subscribe_to: str | None) -> None:
        """Serve the connection until it closes; the websockets handler body."""
        self._hub.join(self)
        self._replies.connections.append(self)
        self.websocket.on_writable = self._schedule_flush
        expires_in = self._identity.expires_at + self._leeway - time.time()
        expiry = self._loop.call_later(max(expires_in, 0), self._expire)
        try:
            if subscribe_to:
                await self._dispatch_safely(Subscribe(chat_id=subscribe_to))
            # Read here rather than in a coroutine of its own: each idle connection
            # holds its chain of coroutine frames, and this saves one.
            async for message in self.websocket:
                await self._receive(message)
        except ConnectionClosed:
            pass
        finally:
            expiry.cancel()
            self._hub.leave(self)
            self._replies.connections.remove(self)
            self.websocket.on_writable = None
            for task in self._background or ():
                task.cancel()
            if self._closer is not None:
                with contextlib.suppress(Exception):
                    await self._closer
            self._stop_writing()  # what the client left unread when it went
            self.finished.set()

    async def _receive(self, message: str | bytes) -> None:
        """Handle one frame from the client (after its replies made room)."""
        if not self._room.is_set():
            # Replies are piling up, here or on the user's other connections:
            # let the client read them first.
            await self._room.wait()
        if self.closing.is_set():
            return  # not answered, but read on: our close frame's answer comes after them
        if isinstance(message, bytes):
            self._error(ErrorCode.BAD_REQUEST, "binary frames are not accepted: send JSON text frames")
            return
        try:
            frame = decode_client(message)
        except ProtocolError as error:
            code = ErrorCode.TOO_LARGE if isinstance(error, FrameTooLarge) else ErrorCode.BAD_REQUEST
            self._error(code, str(error), **dataclasses.asdict(error.ids))
            return
        if isinstance(frame, ListModels):
            # It may wait on the model server: do not hold up the frames behind it.
            task = self._loop.create_task(self._dispatch_safely(frame))
            if self._background is None:
                self._background = set()
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return
        await self._dispatch_safely(frame)

    async def _dispatch_safely(self, frame: ClientFrame) -> None:
        """Handle ``frame``; whatever fails is answered with an ``error`` naming the frame's ids.

        The ids let the client tell which of its messages or requests was
        refused; ``unavailable`` (the database is out of reach) says that
        sending it again later may work, ``internal`` that it will not.
        """
        try:
            await self._handlers.handle(self, frame)
        except FrameError as error:
            self._error(
                error.code,
                error.message,
                request_id=error.request_id,
                chat_id=error.chat_id,
                message_id=error.message_id,
                client_message_id=error.client_message_id,
                client_edit_id=error.client_edit_id,
            )
        except Exception as error:
            ids = dataclasses.asdict(FrameIds.of(frame))
            if self._outages.failed("frames refused", error):
                self._error(ErrorCode.UNAVAILABLE, "the server cannot reach its database; try again in a moment", **ids)
            else:
                log.exception("a frame of %s failed", self.user)
                self._error(ErrorCode.INTERNAL, "the server failed to handle this frame", **ids)

    def _error(self, code: ErrorCode, message: str, **where: str | None) -> None:
        self._metrics.frames_refused.labels(code.value).inc()
        self.reply(encode(Error(code=code.value, message=message, **where)))
