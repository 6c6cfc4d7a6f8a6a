"""Heartbeat: JSON ping/pong, and protocol keepalive that frees dead peers."""

from __future__ import annotations

import asyncio

from websockets.frames import Opcode

from mfu_tui.protocol import Ping, Pong
from tests.server.peer import TIMEOUT, peer
from tests.server.rawclient import RawClient
from tests.support.server import running_server


async def test_json_ping_gets_pong_with_the_same_ts(tmp_path):
    async with running_server(tmp_path) as srv:
        async with peer(srv.url, srv.token()) as alice:
            await alice.send(Ping(ts=12345.678))
            assert await alice.recv() == Pong(ts=12345.678)
            await alice.send(Ping())
            assert await alice.recv() == Pong(ts=None)


async def test_a_peer_that_stops_answering_pings_is_closed_and_freed(tmp_path):
    async with running_server(tmp_path, ping_interval=0.2, ping_timeout=0.2, close_timeout=0.2) as srv:
        client = await RawClient.open(srv.url, srv.token())
        client.send_text('{"type": "ping"}')
        frames = await asyncio.wait_for(client.read_frames(), TIMEOUT)  # the pong: the handler runs
        assert any(frame.opcode is Opcode.TEXT for frame in frames)
        (connection,) = srv.server.connections
        # From now on pings are read but never answered.
        frames = await asyncio.wait_for(client.read_until_eof(), TIMEOUT)
        assert any(frame.opcode is Opcode.PING for frame in frames)
        assert RawClient.close_code(frames) == 1011  # keepalive ping timeout
        await asyncio.wait_for(connection.finished.wait(), TIMEOUT)
        assert not srv.server.connections
        assert not srv.server.hub.connections("alice")
        client.close()


async def test_a_peer_that_answers_pings_stays_connected(tmp_path):
    async with running_server(tmp_path, ping_interval=0.05, ping_timeout=0.5) as srv:
        client = await RawClient.open(srv.url, srv.token())
        pings = 0
        async with asyncio.timeout(TIMEOUT):
            while pings < 5:
                frames = await client.read_frames()
                pings += sum(frame.opcode is Opcode.PING for frame in frames)
                client.flush()  # the protocol queued a pong for each ping
        client.send_text('{"type": "ping", "ts": 7}')
        async with asyncio.timeout(TIMEOUT):
            texts = []
            while not texts:
                texts = [frame for frame in await client.read_frames() if frame.opcode is Opcode.TEXT]
                client.flush()
        assert b'"pong"' in texts[0].data
        (connection,) = srv.server.connections
        assert not connection.closing.is_set()
        client.close()
