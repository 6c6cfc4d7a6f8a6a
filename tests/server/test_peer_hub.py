"""The fan-out between workers on SQLite (``PeerHub``): real hubs on real Unix sockets, in one event loop.

Two hubs link to each other as two workers do; a sibling that misbehaves (it
stops reading, or says frames were lost) is played by a raw socket speaking
the links' own messages (``peer_hub.message``).
"""

from __future__ import annotations

import asyncio

from mfu_tui.protocol import Chunk, decode_server
from mfu_tui.server import peer_hub
from mfu_tui.server.config import Siblings
from mfu_tui.server.peer_hub import FRAME, HELLO, LOST, PING, PONG, SUBSCRIBE, PeerHub, message, read_message
from tests.server.test_hub import Inbox, chunk

WAIT = 10.0


async def test_a_worker_gets_what_it_follows_from_its_sibling_in_order_and_nothing_else(tmp_path):
    first, second = (PeerHub(Siblings(tmp_path, index, 2)) for index in (0, 1))
    await asyncio.gather(first.start(), second.start())
    try:
        inbox, other = Inbox(), Inbox(user="bob")
        second.join(inbox)
        second.subscribe(inbox, "c1")
        second.join(other)
        await second.sync()  # the subscriptions reached the first worker
        for seq in range(1, 101):
            first.publish_chat("c1", chunk(seq))
        first.publish_chat("c2", chunk(1, "elsewhere"))  # nobody follows c2 on the second worker
        first.publish_user("bob", chunk(7, "for-bob"))
        await second.sync()  # its PONG comes after every frame the first worker sent before
        assert inbox.seqs() == list(range(1, 101))
        assert [decode_server(frame) for frame in other.frames] == [decode_server(chunk(7, "for-bob"))]
        second.leave(inbox)
        await second.sync()
        first.publish_chat("c1", chunk(101))
        await second.sync()
        assert inbox.seqs() == list(range(1, 101))  # it left: no more
    finally:
        await asyncio.gather(first.stop(), second.stop())


async def test_a_sibling_that_does_not_read_is_cut_off_then_told_before_any_later_frame(tmp_path, monkeypatch):
    monkeypatch.setattr(peer_hub, "MAX_LINK_BYTES", 64 * 1024)
    hub = PeerHub(Siblings(tmp_path, 0, 1))  # alone: it waits for no sibling
    await hub.start()
    try:
        reader, writer = await asyncio.open_unix_connection(str(tmp_path / "0.sock"))
        writer.write(message(HELLO, "1") + message(SUBSCRIBE, "mfu:chat:c1") + message(PING, "0"))
        assert (await asyncio.wait_for(read_message(reader), WAIT))[:2] == (PONG, "0")
        for seq in range(1, 3001):  # 3 MB: more than the socket and the 64 KiB allowed hold
            hub.publish_chat("c1", chunk(seq) + b" " * 1000)
        received, kinds = [], []
        while LOST not in kinds:  # now read: what was queued, then the word that the rest was dropped
            kind, _, data = await asyncio.wait_for(read_message(reader), WAIT)
            kinds.append(kind)
            if kind == FRAME:
                received.append(decode_server(data.rstrip()))
        hub.publish_chat("c1", chunk(5000))
        kind, _, data = await asyncio.wait_for(read_message(reader), WAIT)
        writer.close()
    finally:
        await hub.stop()
    seqs = [frame.seq for frame in received if isinstance(frame, Chunk)]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) < 3000  # a prefix, in order, then the cut
    assert kinds[-1] == LOST and kinds.count(LOST) == 1
    assert (kind, decode_server(data)) == (FRAME, decode_server(chunk(5000)))  # sent again after telling


async def test_a_worker_told_its_frames_were_dropped_closes_its_clients(tmp_path):
    hub = PeerHub(Siblings(tmp_path, 0, 2))
    told = asyncio.Event()
    hub.on_link_lost = told.set
    back: list[asyncio.StreamWriter] = []

    async def sibling(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert (await read_message(reader))[:2] == (HELLO, "0")  # the hub listens already: link back to it
        _, link = await asyncio.open_unix_connection(str(tmp_path / "0.sock"))
        link.write(message(HELLO, "1"))
        back.append(link)
        writer.write(message(LOST, ""))
        await writer.drain()

    server = await asyncio.start_unix_server(sibling, str(tmp_path / "1.sock"))
    try:
        await asyncio.wait_for(hub.start(), WAIT)
        await asyncio.wait_for(told.wait(), WAIT)
    finally:
        for link in back:
            link.close()
        server.close()
        await hub.stop()
