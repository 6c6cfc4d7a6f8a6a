"""CI-sized slow consumers: 2 of 20 clients stop reading mid-answer; they get 4000 and resume, the others go on."""

import asyncio

from tests.reliability.slow_clients import run
from tests.support.proxy import FaultProxy


async def test_stalled_clients_are_closed_with_4000_and_resume_while_the_others_go_on(tmp_path):
    report = await run(clients=20, workdir=tmp_path)
    assert report.stalled == 2
    assert report.stalled_closed_4000 == 2
    assert report.normal_closed == 0
    assert report.recovered == 2
    assert (report.lost, report.repeated, report.reordered, report.text_mismatches) == (0, 0, 0, 0)
    assert report.normal_gaps_during_ms["count"] > 0


async def test_stall_reader_holds_only_what_the_server_sends():
    received: list[bytes] = []
    got = asyncio.Event()

    async def server(reader, writer):
        while data := await reader.read(1024):
            received.append(data)
            got.set()
            writer.write(b"answer:" + data)
            await writer.drain()
        writer.close()

    upstream = await asyncio.start_server(server, "127.0.0.1", 0)
    try:
        async with FaultProxy(upstream.sockets[0].getsockname()[1]) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            proxy.stall_reader()
            writer.write(b"hello")
            await writer.drain()
            await asyncio.wait_for(got.wait(), 10)  # the client's bytes went through
            assert received == [b"hello"]
            read = asyncio.ensure_future(reader.read(1024))
            done, _ = await asyncio.wait({read}, timeout=0.3)  # safety bound: nothing may arrive while stalled
            assert not done
            proxy.pass_through()
            assert await asyncio.wait_for(read, 10) == b"answer:hello"
            writer.close()
    finally:
        upstream.close()
        await upstream.wait_closed()
