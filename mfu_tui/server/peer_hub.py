"""``PeerHub``: the fan-out between the workers of one ``mfu-chat serve --workers N`` on SQLite.

Workers on one machine need no Redis: each links to every sibling over a
Unix socket in the supervisor's private directory. Worker ``i`` listens on
``<i>.sock``, and opens one link of its own to each sibling, on which it
says which channels it follows (``redis_hub``'s names: a user's, a chat's,
and always ``mfu:cancel`` and ``mfu:drop``) and receives the frames the
sibling publishes on them. So a frame crosses only to the workers that
follow its channel, in the order it was published (one stream per pair of
workers), and a chat nobody follows elsewhere costs nothing more than on
one worker.

The guarantees of the Redis fan-out hold:

- ``sync`` returns once every sibling has the subscriptions made so far: a
  PING sent behind them on each link came back. A chunk is stored before it
  is published, so what a sibling published before that is in the store,
  where a ``resume`` finds it.
- A worker that starts waits (up to ``STARTUP_WAIT``) until each running
  sibling has linked to it and it to them, before it opens the store and
  publishes the ends of the answers its crashed predecessor left: their
  followers on the siblings get them.
- A sibling that stops reading (a stalled process) is sent no frame past
  ``MAX_LINK_BYTES`` waiting for it; once it has read the rest it is told
  (``LOST``) and closes its clients with 1013, as a node that lost Redis
  does: they reconnect and resume from the store.
- A link that closes means its sibling stopped or died, and its clients
  with it; the supervisor restarts it, and this worker links to it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import struct
from dataclasses import dataclass, field

from mfu_tui.server.config import Siblings
from mfu_tui.server.hub import LocalHub, Receiver
from mfu_tui.server.redis_hub import CANCEL_CHANNEL, CHAT_CHANNEL, DROP_CHANNEL, USER_CHANNEL

log = logging.getLogger(__name__)

#: Seconds a starting worker waits for its siblings to link to it (a sibling not there by then is not running).
STARTUP_WAIT = 5.0
#: Seconds between two attempts to link to a sibling that is not listening (starting, or restarting).
RETRY_DELAY = 0.05
#: Seconds a stopping worker waits for the handlers of its siblings' links to see them closed.
STOP_WAIT = 5.0
#: Bytes of frames waiting for a sibling that does not read, past which it is sent no more (then told).
MAX_LINK_BYTES = 16 * 1024 * 1024

#: A message on a link: the length of what follows the header, its kind, the channel's length.
_HEADER = struct.Struct(">IBH")

HELLO = 1  # channel: the sender's index, first on a link
SUBSCRIBE = 2  # channel
UNSUBSCRIBE = 3  # channel
FRAME = 4  # channel, then the frame's JSON
PING = 5  # channel: a barrier's number
PONG = 6  # channel: the number of the PING it answers
LOST = 7  # frames for you were dropped while you did not read


def message(kind: int, channel: str, data: bytes = b"") -> bytes:
    """One message of a link, as written on the socket."""
    name = channel.encode()
    return _HEADER.pack(len(name) + len(data), kind, len(name)) + name + data


async def read_message(reader: asyncio.StreamReader) -> tuple[int, str, bytes]:
    """The next message of a link: its kind, channel and data.

    Raises:
        asyncio.IncompleteReadError: The link closed.
    """
    length, kind, name_length = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    body = await reader.readexactly(length)
    return kind, body[:name_length].decode(), body[name_length:]


@dataclass(eq=False)
class _Follower:
    """A sibling's link to this worker: what it follows, and the frames sent to it."""

    writer: asyncio.StreamWriter
    wants: set[str] = field(default_factory=set)
    #: Frames were dropped since it stopped reading; it is told once it has read the rest.
    cut_off: bool = False


class PeerHub(LocalHub):
    """A ``LocalHub`` whose publications also reach, and come from, the sibling workers.

    Args:
        siblings: This worker's index, how many there are, and the directory of their sockets.
    """

    def __init__(self, siblings: Siblings) -> None:
        super().__init__()
        self.siblings = siblings
        #: This worker's links to its siblings, by their index (those up).
        self._links: dict[int, asyncio.StreamWriter] = {}
        #: The siblings' links to this worker, by their index.
        self._followers: dict[int, _Follower] = {}
        #: The handler of every link to this worker, hello said or not, by its writer.
        self._serving: dict[asyncio.StreamWriter, asyncio.Task[None]] = {}
        self._barriers: dict[str, tuple[int, asyncio.Future[None]]] = {}
        self._barrier_numbers = itertools.count()
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._linked_changed = asyncio.Event()
        #: Tasks telling cut-off siblings (held: the loop keeps only weak references).
        self._telling: set[asyncio.Task[None]] = set()

    def _path(self, index: int) -> str:
        return str(self.siblings.directory / f"{index}.sock")

    def _others(self) -> list[int]:
        return [index for index in range(self.siblings.count) if index != self.siblings.index]

    # --- life cycle -----------------------------------------------------------

    async def start(self) -> None:
        path = self._path(self.siblings.index)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a crashed predecessor's
        self._server = await asyncio.start_unix_server(self._serve_follower, path)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._follow(index), name=f"mfu-sibling-{index}") for index in self._others()]
        try:
            async with asyncio.timeout(STARTUP_WAIT):
                while not self._all_linked():
                    self._linked_changed.clear()
                    await self._linked_changed.wait()
        except TimeoutError:
            missing = [i for i in self._others() if i not in self._links or i not in self._followers]
            log.warning(
                "workers %s did not link to worker %d within %g s: taken as not running",
                missing,
                self.siblings.index,
                STARTUP_WAIT,
            )

    def _all_linked(self) -> bool:
        return all(index in self._links and index in self._followers for index in self._others())

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._server is not None:
            self._server.close()
            for writer in self._serving:  # each handler reads the end of its link and returns
                writer.close()
            # Awaited, not left to asyncio.run to cancel: Python 3.11 logs a cancelled handler of
            # start_unix_server as an error, with a traceback, at every stop. Bounded: a stop never hangs.
            if self._serving:
                await asyncio.wait(list(self._serving.values()), timeout=STOP_WAIT)
            await self._server.wait_closed()
            self._server = None
        self._followers.clear()

    # --- the Hub interface ----------------------------------------------------

    def join(self, receiver: Receiver) -> None:
        first = receiver.user not in self._by_user
        super().join(receiver)
        if first:
            self._tell_siblings(SUBSCRIBE, USER_CHANNEL + receiver.user)

    def leave(self, receiver: Receiver) -> None:
        chats = list(self._chats_of.get(receiver, ()))
        super().leave(receiver)
        if receiver.user not in self._by_user:
            self._tell_siblings(UNSUBSCRIBE, USER_CHANNEL + receiver.user)
        for chat_id in chats:
            if chat_id not in self._by_chat:
                self._tell_siblings(UNSUBSCRIBE, CHAT_CHANNEL + chat_id)

    def subscribe(self, receiver: Receiver, chat_id: str) -> None:
        first = chat_id not in self._by_chat
        super().subscribe(receiver, chat_id)
        if first:
            self._tell_siblings(SUBSCRIBE, CHAT_CHANNEL + chat_id)

    def drop_chat(self, chat_id: str) -> None:
        self._drop_here(chat_id)
        self._publish(DROP_CHANNEL, chat_id.encode())

    def _drop_here(self, chat_id: str) -> None:
        if chat_id in self._by_chat:
            self._tell_siblings(UNSUBSCRIBE, CHAT_CHANNEL + chat_id)
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
        loop = asyncio.get_running_loop()
        waiting = []
        for index, writer in list(self._links.items()):
            number = str(next(self._barrier_numbers))
            barrier: asyncio.Future[None] = loop.create_future()
            self._barriers[number] = (index, barrier)
            writer.write(message(PING, number))
            waiting.append(barrier)
        await asyncio.gather(*waiting)

    # --- this worker's links: what it follows, what comes back ------------------

    def _following(self) -> list[str]:
        """Every channel this worker needs from its siblings now."""
        return [
            CANCEL_CHANNEL,
            DROP_CHANNEL,
            *(USER_CHANNEL + user for user in self._by_user),
            *(CHAT_CHANNEL + chat_id for chat_id in self._by_chat),
        ]

    def _tell_siblings(self, kind: int, channel: str) -> None:
        data = message(kind, channel)
        for writer in self._links.values():
            writer.write(data)

    async def _follow(self, index: int) -> None:
        """Keep a link to sibling ``index``: connect (again), say what this worker follows, take its frames."""
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(self._path(index))
            except OSError:  # not listening yet, or restarting
                await asyncio.sleep(RETRY_DELAY)
                continue
            writer.write(message(HELLO, str(self.siblings.index)))
            writer.writelines([message(SUBSCRIBE, channel) for channel in self._following()])
            self._links[index] = writer
            self._linked_changed.set()
            try:
                while True:
                    kind, channel, data = await read_message(reader)
                    self._take(index, kind, channel, data)
            except (asyncio.IncompleteReadError, OSError):
                # Stopping, this worker most likely stops with its siblings (the supervisor's stop): no news.
                if not self.node_stopping:
                    log.info(
                        "the link of worker %d to worker %d closed (it stopped); linking again once it is back",
                        self.siblings.index,
                        index,
                    )
            finally:
                del self._links[index]
                writer.close()
                for number, (sibling, barrier) in list(self._barriers.items()):
                    if sibling == index:  # no PONG will come: a sibling gone publishes nothing more
                        del self._barriers[number]
                        barrier.set_result(None)

    def _take(self, index: int, kind: int, channel: str, data: bytes) -> None:
        if kind == FRAME:
            if channel.startswith(CHAT_CHANNEL):
                super().publish_chat(channel.removeprefix(CHAT_CHANNEL), data)
            elif channel.startswith(USER_CHANNEL):
                super().publish_user(channel.removeprefix(USER_CHANNEL), data)
            elif channel == CANCEL_CHANNEL and self.on_cancel is not None:
                user, chat_id, message_id = json.loads(data)
                self.on_cancel(user, chat_id, message_id)
            elif channel == DROP_CHANNEL:
                self._drop_here(data.decode())
        elif kind == PONG:
            waiting = self._barriers.pop(channel, None)
            if waiting is not None and not waiting[1].done():
                waiting[1].set_result(None)
        elif kind == LOST:
            log.error(
                "worker %d dropped frames for worker %d while it did not read; closing its connections",
                index,
                self.siblings.index,
            )
            if self.on_link_lost is not None:
                self.on_link_lost()

    # --- the siblings' links: what they follow, what is sent to them ------------

    async def _serve_follower(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        follower = _Follower(writer)
        # Paused past this: ``_send`` then drops frames until the sibling has read the rest.
        writer.transport.set_write_buffer_limits(high=MAX_LINK_BYTES)
        index = -1
        handler = asyncio.current_task()
        assert handler is not None
        self._serving[writer] = handler
        try:
            kind, channel, _ = await read_message(reader)
            if kind != HELLO:
                return
            index = int(channel)
            self._followers[index] = follower
            self._linked_changed.set()
            while True:
                kind, channel, data = await read_message(reader)
                if kind == SUBSCRIBE:
                    follower.wants.add(channel)
                elif kind == UNSUBSCRIBE:
                    follower.wants.discard(channel)
                elif kind == PING:  # after every change sent before it
                    writer.write(message(PONG, channel))
        except (asyncio.IncompleteReadError, OSError):
            pass
        finally:
            if self._followers.get(index) is follower:
                del self._followers[index]
            del self._serving[writer]
            writer.close()

    def _publish(self, channel: str, data: bytes) -> None:
        encoded: bytes | None = None
        for follower in self._followers.values():
            if channel not in follower.wants or follower.cut_off:
                continue
            encoded = encoded or message(FRAME, channel, data)
            if follower.writer.transport.get_write_buffer_size() > MAX_LINK_BYTES:
                follower.cut_off = True
                task = asyncio.get_running_loop().create_task(self._tell_lost(follower))
                self._telling.add(task)
                task.add_done_callback(self._telling.discard)
                continue
            follower.writer.write(encoded)

    @staticmethod
    async def _tell_lost(follower: _Follower) -> None:
        """Once a cut-off sibling has read what waited, tell it that frames were dropped after them."""
        with contextlib.suppress(OSError, ConnectionError):
            await follower.writer.drain()
            follower.writer.write(message(LOST, ""))
        follower.cut_off = False
