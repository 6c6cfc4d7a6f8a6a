"""The fault proxy of tests/support, checked against a plain echo server."""

import asyncio

import pytest

from tests.support.proxy import FaultProxy


@pytest.fixture
async def echo_port():
    async def echo(reader, writer):
        try:
            while data := await reader.read(1024):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def round_trip(reader, writer, data: bytes) -> bytes:
    writer.write(data)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(data)), 10)


async def test_pass_through_forwards_both_ways(echo_port):
    async with FaultProxy(echo_port) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await round_trip(reader, writer, b"hello") == b"hello"
        assert proxy.accepted == 1
        writer.close()


async def test_delay_keeps_the_order(echo_port):
    async with FaultProxy(echo_port) as proxy:
        proxy.delay(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        for piece in (b"one ", b"two ", b"three"):
            writer.write(piece)
            await writer.drain()
        assert await asyncio.wait_for(reader.readexactly(13), 10) == b"one two three"
        writer.close()


async def test_blackhole_holds_traffic_on_an_open_socket_until_passed_again(echo_port):
    async with FaultProxy(echo_port) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await round_trip(reader, writer, b"before") == b"before"
        proxy.blackhole()
        writer.write(b"during")
        await writer.drain()
        assert proxy.open_connections == 1
        proxy.pass_through()
        assert await asyncio.wait_for(reader.readexactly(6), 10) == b"during"
        writer.close()


async def test_reset_sends_rst_to_open_and_new_connections(echo_port):
    async with FaultProxy(echo_port) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await round_trip(reader, writer, b"x") == b"x"
        proxy.reset()
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(1), 10)
        writer.close()
        # New connections are reset too, until the network is back.
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        with pytest.raises(ConnectionResetError):
            await round_trip(reader, writer, b"z")
        writer.close()
        proxy.pass_through()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await round_trip(reader, writer, b"y") == b"y"
        writer.close()


async def test_connections_beyond_the_limit_are_closed(echo_port):
    async with FaultProxy(echo_port, max_connections=1) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await round_trip(reader, writer, b"x") == b"x"
        extra_reader, extra_writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await asyncio.wait_for(extra_reader.read(1), 10) == b""
        assert proxy.accepted == 1
        writer.close()
        extra_writer.close()


def test_only_loopback_targets_are_accepted():
    with pytest.raises(ValueError):
        FaultProxy(80, "10.0.0.1")
