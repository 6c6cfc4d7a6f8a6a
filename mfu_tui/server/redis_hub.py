"""``RedisHub``: the hub of a server that runs as several nodes, over Redis pub/sub.

Each node delivers to its own connections exactly as ``LocalHub`` does, and
also publishes every frame to Redis, where the other nodes pick it up:

- ``mfu:user:<user>`` carries a user's frames (``chat_updated``,
  ``message_edited``); a node listens to it while that user has a connection there;
- ``mfu:chat:<chat id>`` carries a chat's frames (``chunk``, ``complete``,
  ``cancel``, ``error``); a node listens while one of its connections follows the chat;
- ``mfu:cancel`` asks whichever node runs a generation to stop it, and
  ``mfu:drop`` to forget the subscriptions to a deleted chat; every node listens.

A payload is the publishing process's 8-byte origin tag, its 8-byte
publication number (1, 2, ... across all its channels), then the frame as
sent on the WebSocket, so a node skips its own frames (it delivered them
already) and never decodes the others'. One task publishes, in order, on
one connection; Redis keeps that order for every subscriber, so a stream's
chunks reach other nodes in ``seq`` order, and the numbers a node receives
from one origin only ever grow.

Publishing is idempotent: a batch whose round trip timed out may have
reached Redis in whole or in part, so it is sent again whole, with the same
numbers; a receiver drops any payload numbered at or below the last it took
from that origin, so each frame reaches the other nodes' clients once.

A link that goes silent is noticed too: after ``heartbeat`` seconds with
nothing to read, the node PINGs Redis, and a PING unanswered after as long
again counts as a broken link.

If the link to Redis breaks, this node can no longer tell its connections
what happens elsewhere, so it closes them (``on_link_lost``), refuses new
ones while ``linked`` is false (clients reconnect, through the load balancer
to another node, and resume from the store) and reconnects.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
import secrets
from typing import TYPE_CHECKING, Any

from mfu_tui.redaction import redact_password
from mfu_tui.server.hub import LocalHub, Receiver

if TYPE_CHECKING:
    import redis.asyncio

log = logging.getLogger(__name__)

USER_CHANNEL = "mfu:user:"
CHAT_CHANNEL = "mfu:chat:"
CANCEL_CHANNEL = "mfu:cancel"
DROP_CHANNEL = "mfu:drop"

#: Seconds between two attempts to reach Redis again after the link broke.
RECONNECT_DELAY = 1.0

#: Most frames kept for the broker while it is out of reach (a few MB of chunks).
MAX_BACKLOG = 100_000

#: Most publishing processes whose last number a node remembers (each restart of a node is a new one).
MAX_ORIGINS = 1024

_ORIGIN = 8
_NUMBER = 8


class BrokerUnavailable(OSError):
    """Redis cannot be reached (or redis-py is missing); one line for the operator."""


class RedisHub(LocalHub):
    """A ``LocalHub`` whose publications also reach, and come from, the other nodes.

    Args:
        url: ``redis://[:password@]host[:port][/db]`` (or ``rediss://``).
        heartbeat: Seconds of silence on the link before a PING, and how long its PONG may take.
    """

    def __init__(self, url: str, heartbeat: float = 5.0) -> None:
        super().__init__()
        self.url = url
        self.heartbeat = heartbeat
        self._origin = secrets.token_bytes(_ORIGIN)
        #: This process's publications so far: the next payload gets the next number.
        self._published = itertools.count(1)
        #: The last publication number taken from each other process, by origin tag.
        self._last_taken: collections.OrderedDict[bytes, int] = collections.OrderedDict()
        self._client: redis.asyncio.Redis | None = None
        self._pubsub: Any = None
        #: Frames to publish, in order: (channel, payload).
        self._outbox: collections.deque[tuple[str, bytes]] = collections.deque()
        self._outbox_ready = asyncio.Event()
        #: Subscription changes and barriers, in order: ("subscribe"|"unsubscribe", channel) or a future.
        self._changes: collections.deque[tuple[str, str] | asyncio.Future[None]] = collections.deque()
        self._changes_ready = asyncio.Event()
        #: Barriers whose PING was sent, by the PING's payload, waiting for their PONG.
        self._barriers: dict[bytes, asyncio.Future[None]] = {}
        self._barrier_numbers = itertools.count()
        self._publisher: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def backlog(self) -> int:
        return len(self._outbox)

    # --- life cycle -----------------------------------------------------------

    async def start(self) -> None:
        try:
            import redis.asyncio
        except ImportError:
            raise BrokerUnavailable("--broker needs redis-py: pip install 'mfu-chat[cluster]'") from None
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # No silent retries: a broken link must reach ``_link_lost``, or frames sent meanwhile vanish unnoticed.
        self._client = redis.asyncio.Redis.from_url(
            self.url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=self.heartbeat
        )
        try:
            await self._connect()
        except (OSError, TimeoutError, redis.RedisError) as error:
            await self._client.aclose()
            raise BrokerUnavailable(f"cannot reach the broker {redact_password(self.url)}: {error}") from None
        loop = asyncio.get_running_loop()
        self._stopping = False
        self._publisher = loop.create_task(self._publish_forever(), name="mfu-broker-publisher")
        self._tasks = [
            loop.create_task(self._read_forever(), name="mfu-broker-reader"),
            loop.create_task(self._change_forever(), name="mfu-broker-subscriptions"),
        ]

    async def stop(self) -> None:
        # Publish what is queued first: the end frames of the answers this node stopped.
        if self._publisher is not None:
            self._stopping = True
            self._outbox_ready.set()
            await self._publisher
            self._publisher = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._pubsub is not None:
            await self._pubsub.aclose()
        if self._client is not None:
            await self._client.aclose()

    async def _connect(self) -> None:
        """Open the subscriber connection and listen to every channel this node needs now.

        Raises:
            TimeoutError: Redis did not answer within twice ``heartbeat`` (a silent link).
        """
        async with asyncio.timeout(2 * self.heartbeat):
            await self._subscribe_afresh()

    async def _subscribe_afresh(self) -> None:
        assert self._client is not None
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        self._pubsub = self._client.pubsub()
        channels = [CANCEL_CHANNEL, DROP_CHANNEL, *(USER_CHANNEL + user for user in self._by_user)]
        channels += [CHAT_CHANNEL + chat_id for chat_id in self._by_chat]
        await self._pubsub.subscribe(*channels)
        await self._client.ping()

    # --- the Hub interface ----------------------------------------------------

    def join(self, receiver: Receiver) -> None:
        first = receiver.user not in self._by_user
        super().join(receiver)
        if first:
            self._change("subscribe", USER_CHANNEL + receiver.user)

    def leave(self, receiver: Receiver) -> None:
        chats = list(self._chats_of.get(receiver, ()))
        super().leave(receiver)
        if receiver.user not in self._by_user:
            self._change("unsubscribe", USER_CHANNEL + receiver.user)
        for chat_id in chats:
            if chat_id not in self._by_chat:
                self._change("unsubscribe", CHAT_CHANNEL + chat_id)

    def subscribe(self, receiver: Receiver, chat_id: str) -> None:
        first = chat_id not in self._by_chat
        super().subscribe(receiver, chat_id)
        if first:
            self._change("subscribe", CHAT_CHANNEL + chat_id)

    def drop_chat(self, chat_id: str) -> None:
        self._drop_here(chat_id)
        self._publish(DROP_CHANNEL, chat_id.encode())

    def _drop_here(self, chat_id: str) -> None:
        if chat_id in self._by_chat:
            self._change("unsubscribe", CHAT_CHANNEL + chat_id)
        super().drop_chat(chat_id)

    def publish_user(self, user: str, data: bytes) -> None:
        super().publish_user(user, data)
        self._publish(USER_CHANNEL + user, data)

    def publish_chat(self, chat_id: str, data: bytes) -> None:
        super().publish_chat(chat_id, data)
        self._publish(CHAT_CHANNEL + chat_id, data)

    def request_cancel(self, user: str, chat_id: str, message_id: str | None) -> None:
        self._publish(CANCEL_CHANNEL, json.dumps([user, chat_id, message_id]).encode())

    async def sync(self) -> None:
        await self._barrier()

    def _barrier(self) -> asyncio.Future[None]:
        """A future resolved once Redis has answered everything sent to it before (a PING behind them)."""
        barrier: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._changes.append(barrier)
        self._changes_ready.set()
        return barrier

    # --- the three tasks --------------------------------------------------------

    def _publish(self, channel: str, data: bytes) -> None:
        # Numbered now, once: a batch sent again after a timeout keeps its numbers, so receivers see the repeat.
        number = next(self._published).to_bytes(_NUMBER, "big")
        self._outbox.append((channel, self._origin + number + data))
        self._outbox_ready.set()

    def _change(self, action: str, channel: str) -> None:
        self._changes.append((action, channel))
        self._changes_ready.set()

    async def _publish_forever(self) -> None:
        """Publish queued frames in order, each batch in one round trip."""
        assert self._client is not None
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            batch = list(self._outbox)
            self._outbox.clear()
            if not batch:
                if self._stopping:
                    return
                continue
            try:
                # Bounded: a silent link must not hold the frames (or a stop) forever.
                async with asyncio.timeout(2 * self.heartbeat), self._client.pipeline(transaction=False) as pipe:
                    for channel, payload in batch:
                        pipe.publish(channel, payload)
                    await pipe.execute()
            except Exception as error:  # a timeout too: then some may have gone; receivers drop the repeats
                if self._stopping:
                    log.error("could not publish %d frame(s) before stopping: %s", len(batch), error)
                    return
                # Kept, in order, and sent once the link is back: a follower on another
                # node then gets the rest of an answer late rather than never.
                log.warning("could not publish %d frame(s) to the broker (%s); trying again", len(batch), error)
                self._outbox.extendleft(reversed(batch))
                self._trim_backlog()
                await asyncio.sleep(RECONNECT_DELAY)
            if self._outbox or self._stopping:
                self._outbox_ready.set()  # the frames kept back, or one more round before stopping

    def _trim_backlog(self) -> None:
        """Keep at most ``MAX_BACKLOG`` unsent frames; a follower that misses the oldest resumes them."""
        excess = len(self._outbox) - MAX_BACKLOG
        if excess > 0:
            log.error("the broker has been out of reach too long: dropping %d unsent frame(s)", excess)
            for _ in range(excess):
                self._outbox.popleft()

    async def _change_forever(self) -> None:
        """Send subscription changes in order; a barrier becomes a PING whose PONG releases it."""
        while True:
            await self._changes_ready.wait()
            self._changes_ready.clear()
            while self._changes:
                change = self._changes.popleft()
                try:
                    if isinstance(change, asyncio.Future):
                        # Our own payload: a PONG that answers some other PING releases nothing.
                        payload = f"mfu-barrier-{next(self._barrier_numbers)}"
                        self._barriers[payload.encode()] = change
                        await self._pubsub.ping(payload)
                    elif change[0] == "subscribe":
                        await self._pubsub.subscribe(change[1])
                    else:
                        await self._pubsub.unsubscribe(change[1])
                except Exception as error:  # the reader reconnects and subscribes afresh
                    log.debug("subscription change failed: %s", error)
                    if isinstance(change, asyncio.Future) and not change.done():
                        change.set_result(None)

    async def _read_forever(self) -> None:
        """Deliver the other nodes' frames to this node's connections; reconnect when the link breaks."""
        heartbeat: asyncio.Future[None] | None = None
        while True:
            try:
                message = await self._pubsub.get_message(timeout=self.heartbeat)
                if message is None:  # quiet for a while: is Redis still there?
                    if heartbeat is not None and not heartbeat.done():
                        raise ConnectionError(f"no answer to a PING within {self.heartbeat:g} s")
                    heartbeat = self._barrier()
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as error:
                heartbeat = None
                await self._link_lost(error)
                continue
            self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "pong":
            barrier = self._barriers.pop(message["data"], None)
            if barrier is not None and not barrier.done():
                barrier.set_result(None)
            return
        if kind != "message":
            return
        payload: bytes = message["data"]
        origin = payload[:_ORIGIN]
        if origin == self._origin:
            return  # this node delivered it already
        if not self._first_time(origin, int.from_bytes(payload[_ORIGIN : _ORIGIN + _NUMBER], "big")):
            return  # a batch its node sent again after a timeout: this one got through the first time
        channel = message["channel"].decode()
        data = payload[_ORIGIN + _NUMBER :]
        if channel.startswith(CHAT_CHANNEL):
            super().publish_chat(channel.removeprefix(CHAT_CHANNEL), data)
        elif channel.startswith(USER_CHANNEL):
            super().publish_user(channel.removeprefix(USER_CHANNEL), data)
        elif channel == CANCEL_CHANNEL and self.on_cancel is not None:
            user, chat_id, message_id = json.loads(data)
            self.on_cancel(user, chat_id, message_id)
        elif channel == DROP_CHANNEL:
            self._drop_here(data.decode())

    def _first_time(self, origin: bytes, number: int) -> bool:
        """Whether publication ``number`` of ``origin`` is new here (numbers from one origin only grow)."""
        last = self._last_taken.get(origin, 0)
        if number <= last:
            return False
        self._last_taken[origin] = number
        self._last_taken.move_to_end(origin)
        if len(self._last_taken) > MAX_ORIGINS:
            self._last_taken.popitem(last=False)  # the longest silent: a node long gone
        return True

    async def _link_lost(self, error: Exception) -> None:
        log.error("lost the link to the broker (%s); closing this node's connections and reconnecting", error)
        self.linked = False
        if self.on_link_lost is not None:
            self.on_link_lost()
        # Barriers waiting for a PONG that will never come: the caller goes on without cross-node events.
        for barrier in self._barriers.values():
            if not barrier.done():
                barrier.set_result(None)
        self._barriers.clear()
        while True:
            await asyncio.sleep(RECONNECT_DELAY)
            try:
                await self._connect()
            except Exception as retry_error:  # refused, or silent (the connect's own timeout)
                log.debug("broker still unreachable: %s", retry_error)
                continue
            log.info("the link to the broker is back")
            self.linked = True
            return
