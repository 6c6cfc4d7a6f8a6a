"""``server_status``: the store's outages told to the clients, as they start and end, and bounded."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from mfu_tui.protocol import Complete, Error, Message, Ping, Pong, ServerStatus, decode_server, encode
from mfu_tui.server.storage_status import BACK, OUT_OF_REACH
from mfu_tui.server.store.outage import OutageLog
from mfu_tui.server.wire import text_frame
from tests.server.peer import TIMEOUT, peer
from tests.server.test_generation import send_message
from tests.support.postgres import running_postgres
from tests.support.server import running_server

OUT = ServerStatus(storage="unavailable", message=OUT_OF_REACH)
OK = ServerStatus(storage="ok", message=BACK)


async def test_a_listener_is_told_on_its_loop_as_an_outage_starts_and_ends_whatever_thread_saw_it():
    outages = OutageLog()
    told: list[tuple[bool, int]] = []
    changed = asyncio.Event()

    def record(out: bool) -> None:
        told.append((out, threading.get_ident()))
        changed.set()

    outages.listen(record, asyncio.get_running_loop())
    await asyncio.to_thread(outages.failed, "commits failed", ConnectionResetError("reset"))  # a writer thread
    await asyncio.wait_for(changed.wait(), TIMEOUT)
    changed.clear()
    await asyncio.to_thread(outages.worked)
    await asyncio.wait_for(changed.wait(), TIMEOUT)
    assert told == [(True, threading.get_ident()), (False, threading.get_ident())]


class RecordingLoop:
    """Where a listener's calls wait: asyncio's ``call_soon_threadsafe``, kept to be run when the test says."""

    def __init__(self) -> None:
        self.waiting: list[Callable[..., object]] = []

    def call_soon_threadsafe(self, callback: Callable[..., object], *args: object) -> None:
        self.waiting.append(lambda: callback(*args))

    def run(self) -> None:
        waiting, self.waiting = self.waiting, []
        for call in waiting:
            call()


def test_a_flapping_database_is_told_as_its_latest_state_with_one_call_waiting_at_most():
    outages, loop = OutageLog(), RecordingLoop()
    told: list[bool] = []
    unlisten = outages.listen(told.append, loop)  # type: ignore[arg-type]
    for _ in range(1000):
        outages.failed("frames refused", TimeoutError())
        outages.worked()
    outages.failed("frames refused", TimeoutError())
    assert len(loop.waiting) == 1  # 2,001 changes, one look on its way
    loop.run()
    assert told == [True]  # the state as it is when the loop looks
    for _ in range(1000):
        outages.worked()
        outages.failed("frames refused", TimeoutError())
    assert len(loop.waiting) == 1
    loop.run()
    assert told == [True]  # out again, as it was last told: nothing to say
    outages.worked()
    unlisten()
    loop.run()  # the look on its way finds no listener
    assert told == [True] and loop.waiting == []


def test_a_listener_that_comes_during_an_outage_is_told_at_once():
    outages, loop = OutageLog(), RecordingLoop()
    outages.failed("commits failed", TimeoutError())
    told: list[bool] = []
    outages.listen(told.append, loop)  # type: ignore[arg-type]
    loop.run()
    assert told == [True]


async def test_a_status_not_yet_written_is_replaced_by_the_next_one_which_goes_last(tmp_path):
    refused = encode(Error(code="unavailable", message="refused", client_message_id="c9"))
    async with running_server(tmp_path) as srv, peer(srv.url, srv.token()) as alice:
        await alice.send(Ping(ts=1.0))
        await alice.expect(Pong)  # its connection is served
        (connection,) = srv.server.connections
        # In one turn of the loop, nothing is written between them: the queue holds the last only.
        connection.deliver_status(text_frame(encode(OUT)))
        connection.reply(refused)
        connection.deliver_status(text_frame(encode(OK)))
        assert connection.queued_bytes == len(text_frame(refused)) + len(text_frame(encode(OK)))
        assert [await alice.recv(), await alice.recv()] == [decode_server(refused), OK]


async def test_postgresql_out_of_reach_is_told_to_the_connected_and_the_connecting_and_its_return_too(tmp_path):
    with running_postgres() as postgres:
        # A short lease: the lease beat is what finds the database back on a node with nothing else to write.
        async with running_server(tmp_path, db_path=postgres.new_database(), lease=1.5) as srv:
            async with peer(srv.url, srv.token()) as alice:
                first = await send_message(alice, "before the outage")
                await alice.expect(Complete, message_id=first.reply_id)
                postgres.stop()
                await alice.send(Message(chat_id=first.chat_id, content="during", client_message_id="c2"))
                assert (await alice.expect(Error, client_message_id="c2")).code == "unavailable"
                assert await alice.expect(ServerStatus) == OUT
                async with peer(srv.url, srv.token()) as bob:  # connects during the outage
                    assert await bob.recv() == OUT  # its first frame
                    postgres.launch()
                    assert await alice.expect(ServerStatus) == OK
                    assert await bob.recv() == OK
            async with peer(srv.url, srv.token()) as carol:  # all is well: no status at all
                await carol.send(Message(chat_id=first.chat_id, content="after", client_message_id="c3"))
                assert not isinstance(await carol.recv(), ServerStatus)
