"""A loopback TCP proxy that simulates a bad network between a client and the server.

Put it between the two and switch it at runtime::

    async with FaultProxy(server.port) as proxy:
        client = ChatClient(proxy.url("/ws"), token)
        ...
        proxy.blackhole()     # stop forwarding, keep the sockets open (no FIN, no RST)
        proxy.pass_through()  # forward again
        proxy.delay(0.2)      # forward each piece after a pause
        proxy.reset()         # RST every open connection (SO_LINGER 0) and each new one,
                              # until pass_through(): a network that is down
        proxy.stall_reader()  # stop forwarding server -> client only: a client that stopped reading
        proxy.drop()          # read and discard both ways, sockets open: packets lost for good

It only listens on 127.0.0.1, keeps at most ``max_connections`` connections,
and holds at most one read (64 KiB) per direction: a blackhole stops reading,
so the kernel buffers fill and the peers see a silent network, and nothing
grows in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

_READ_SIZE = 64 * 1024


class FaultProxy:
    """Forwards 127.0.0.1:``port`` to ``target_host``:``target_port``, with faults on demand.

    Args:
        target_port: Where to forward.
        target_host: A loopback address.
        max_connections: Further connections are closed at once.
        upstream_receive_buffer: Kernel receive buffer (``SO_RCVBUF``) of each
            connection to the target; small values make ``blackhole`` and
            ``stall_reader`` push back on the server sooner. Default: the kernel's.
    """

    def __init__(
        self,
        target_port: int,
        target_host: str = "127.0.0.1",
        *,
        max_connections: int = 32,
        upstream_receive_buffer: int | None = None,
    ) -> None:
        if not target_host.startswith("127."):
            raise ValueError("the fault proxy only forwards to loopback addresses")
        self.target_host = target_host
        self.target_port = target_port
        self.max_connections = max_connections
        self.upstream_receive_buffer = upstream_receive_buffer
        self.port = 0
        #: How many connections were accepted since the start.
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        # Cleared by stall_reader(): only the server -> client direction waits on it.
        self._downstream = asyncio.Event()
        self._downstream.set()
        self._delay = 0.0
        self._resetting = False
        self._dropping = False
        self._accepted_changed = asyncio.Event()

    def url(self, path: str = "/ws") -> str:
        """The ``ws://`` URL of the proxy."""
        return f"ws://127.0.0.1:{self.port}{path}"

    async def start(self) -> FaultProxy:
        """Start listening on a free port."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        if self._server is not None:
            self._server.close()
        links = list(self._links)
        for link in links:
            link.close(reset=False)
            # A blackholed pump waits for the traffic to flow again: stop it.
            link.task.cancel()
        await asyncio.gather(*(link.task for link in links), return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- Faults --------------------------------------------------------------

    def pass_through(self) -> None:
        """Forward everything at once."""
        self._set(delay=0.0, flowing=True, resetting=False)

    def delay(self, seconds: float) -> None:
        """Forward each piece ``seconds`` after it was read."""
        self._set(delay=seconds, flowing=True, resetting=False)

    def blackhole(self) -> None:
        """Stop forwarding in both directions, keeping every socket open."""
        self._set(delay=0.0, flowing=False, resetting=False)

    def reset(self) -> None:
        """Send RST on both sides of every open connection, and to each new one until ``pass_through``."""
        self._set(delay=0.0, flowing=True, resetting=True)
        for link in list(self._links):
            link.close(reset=True)

    def stall_reader(self) -> None:
        """Stop forwarding what the server sends, keep forwarding what the client sends.

        The server sees a client that stopped reading: its frames pile up,
        first in the kernel buffers, then in the server's send queue.
        """
        self._set(delay=0.0, flowing=True, resetting=False)
        self._downstream.clear()

    def drop(self) -> None:
        """Read and discard in both directions, keeping every socket open.

        Unlike ``blackhole``, what is sent meanwhile is gone for good, as on a
        real network that loses packets until the sender gives up.
        """
        self._set(delay=0.0, flowing=True, resetting=False)
        self._dropping = True

    def _set(self, *, delay: float, flowing: bool, resetting: bool) -> None:
        self._delay = delay
        self._resetting = resetting
        self._dropping = False
        self._downstream.set()
        if flowing:
            self._flowing.set()
        else:
            self._flowing.clear()

    @property
    def open_connections(self) -> int:
        """Connections currently open through the proxy."""
        return len(self._links)

    async def wait_accepted(self, count: int) -> None:
        """Wait until ``accepted`` reaches ``count``."""
        while self.accepted < count:
            changed = self._accepted_changed
            await changed.wait()

    # --- Plumbing ------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._resetting:
            _abort(writer, reset=True)
            return
        if len(self._links) >= self.max_connections:
            writer.close()
            return
        try:
            up_reader, up_writer = await self._connect_upstream()
        except OSError:
            _abort(writer, reset=True)
            return
        link = _Link(writer, up_writer)
        self._links.add(link)
        self.accepted += 1
        self._accepted_changed.set()
        self._accepted_changed = asyncio.Event()
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, link), self._pump(up_reader, writer, link, self._downstream)
            )
        except asyncio.CancelledError:
            pass  # stop() ends the link
        finally:
            link.close(reset=False)
            self._links.discard(link)

    async def _connect_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.upstream_receive_buffer is None:
            return await asyncio.open_connection(self.target_host, self.target_port)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # Before connect, so that the advertised window stays small.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.upstream_receive_buffer)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, (self.target_host, self.target_port))
        except OSError:
            sock.close()
            raise
        return await asyncio.open_connection(sock=sock)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        link: _Link,
        gate: asyncio.Event | None = None,
    ) -> None:
        """Copy one direction until EOF or an error, obeying the current fault (and ``gate``, if given)."""
        try:
            while True:
                await self._open_for(gate)
                data = await reader.read(_READ_SIZE)
                if not data:
                    break
                if self._dropping:
                    continue
                if self._delay:
                    await asyncio.sleep(self._delay)
                await self._open_for(gate)
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()  # pass the FIN on, keep the other direction going
        except (ConnectionError, OSError):
            link.close(reset=True)

    async def _open_for(self, gate: asyncio.Event | None) -> None:
        """Wait until traffic may flow (in the direction ``gate`` guards, if given)."""
        await self._flowing.wait()
        if gate is not None:
            await gate.wait()


class _Link:
    """The two sockets of one proxied connection."""

    def __init__(self, downstream: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.writers = (downstream, upstream)
        #: The task forwarding both directions (the server's connection handler).
        self.task = asyncio.current_task()

    def close(self, *, reset: bool) -> None:
        for writer in self.writers:
            _abort(writer, reset=reset)


def _abort(writer: asyncio.StreamWriter, *, reset: bool) -> None:
    """Close a socket; with ``reset``, with an RST (SO_LINGER 0) instead of a FIN."""
    if writer.transport.is_closing():
        return
    if reset:
        sock = writer.get_extra_info("socket")
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
    else:
        writer.close()
