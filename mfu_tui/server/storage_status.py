"""Telling the clients whether the server can store anything: ``server_status`` frames.

While the store is out of reach every message is refused with
``unavailable``; without a word of why, a client would keep showing a green
dot, and would send its refused messages again only after a fixed wait. So
each connection of the node is told as an outage starts and as it ends
(``ok``: the moment to send them again), and a client that connects during
one is told among its first frames.

The changes come from the store's ``OutageLog`` (which sees every failure
and every commit that works, in any thread), delivered on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection

from mfu_tui.protocol import ServerStatus, encode
from mfu_tui.server.connection import Connection
from mfu_tui.server.store.outage import OutageLog
from mfu_tui.server.wire import WireFrame, text_frame

#: What each state says to people.
OUT_OF_REACH = (
    "the server cannot store anything now (its database is out of reach or full):"
    " messages wait and go as soon as it can"
)
BACK = "the server can store again"


class StorageStatus:
    """Pushes a ``server_status`` to every connection of the node as the store's state changes.

    Args:
        outages: The store's outages, which say when the state changes.
        connections: The node's live connections (the server's own set, read at each change).
    """

    def __init__(self, outages: OutageLog, connections: Collection[Connection]) -> None:
        self._outages = outages
        self._connections = connections
        #: The frame of the state the connections were last told; ``None`` while all was well all along.
        self._frame: WireFrame | None = None
        self._out = False
        self._unlisten: Callable[[], None] | None = None

    def start(self) -> None:
        """Follow the store's outages, on the running loop."""
        self._unlisten = self._outages.listen(self._changed, asyncio.get_running_loop())

    def stop(self) -> None:
        """Stop following them."""
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None

    def greet(self, connection: Connection) -> None:
        """Tell a new connection of an outage going on (nothing while all is well: no news)."""
        if self._out and self._frame is not None:
            connection.deliver_status(self._frame)

    def _changed(self, out: bool) -> None:
        self._out = out
        status = ServerStatus(storage="unavailable" if out else "ok", message=OUT_OF_REACH if out else BACK)
        self._frame = text_frame(encode(status))  # encoded once, for every connection
        for connection in list(self._connections):
            connection.deliver_status(self._frame)
