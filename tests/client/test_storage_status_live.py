"""A client under a real PostgreSQL stopped and started: it shows the outage, its refused message goes on ``ok``."""

from __future__ import annotations

import asyncio

from mfu_tui.client import ConnectionState, Status
from mfu_tui.protocol import Ack, Complete
from mfu_tui.server.storage_status import OUT_OF_REACH
from tests.support.disk_full import fill_disk, free_disk
from tests.support.postgres import running_postgres
from tests.support.server import running_server


def acked(events, client_message_id: str) -> bool:
    return any(ack.client_message_id == client_message_id for ack in events.of_type(Ack))


async def test_a_message_refused_during_an_outage_goes_again_as_the_server_says_its_storage_is_back(
    tmp_path, make_client
):
    loop = asyncio.get_running_loop()
    with running_postgres() as postgres:
        # A short lease: the lease beat is what finds the database back on a node with nothing else to write.
        async with running_server(tmp_path, db_path=postgres.new_database(), demo_words=3, lease=1.5) as srv:
            client, events = make_client(srv.url, srv.token())
            await client.connect()
            first = await client.send_message(None, "before the outage")
            await events.wait_for(lambda: acked(events, first) and len(events.of_type(Complete)) == 1)
            chat_id = events.of_type(Ack)[0].chat_id

            postgres.stop()
            await events.wait_for(lambda: client.state.storage_unavailable is not None)
            assert (client.state.status, client.state.storage_unavailable) == (Status.CONNECTED, OUT_OF_REACH)
            during = await client.send_message(chat_id, "during the outage")
            await events.wait_for(lambda: any(error.client_message_id == during for error in events.errors))
            assert [error.code for error in events.errors] == ["unavailable"]
            assert [entry.client_message_id for entry in client.outbox.pending()] == [during]
            # When the fixed wait after a refusal would send it again.
            retry_at = client.session.wake_at
            assert retry_at is not None

            back: list[tuple[float, list[str]]] = []

            def on_state(state: ConnectionState) -> None:
                if state.storage_unavailable is None and not back:
                    back.append((loop.time(), client.session.in_flight))

            client.on_state(on_state)
            postgres.launch()
            await events.wait_for(lambda: acked(events, during) and len(events.of_type(Complete)) == 2)

            ((ok_at, in_flight),) = back
            # The ok came before the fixed wait was over, and had sent the message already.
            assert ok_at < retry_at and in_flight == [during]
            assert client.state.storage_unavailable is None and len(client.outbox) == 0
            detail = await client.get_chat(chat_id)
    assert [m.content for m in detail.messages if m.role == "user"] == ["before the outage", "during the outage"]


async def test_a_client_connecting_during_an_outage_shows_it_from_its_first_frames(tmp_path, make_client):
    with running_postgres() as postgres:
        async with running_server(tmp_path, db_path=postgres.new_database(), demo_words=3, lease=1.5) as srv:
            watcher, watched = make_client(srv.url, srv.token())
            await watcher.connect()
            postgres.stop()
            # A refused frame is what reveals an outage on an idle node with no lease beat due yet.
            await watcher.send_message(None, "during the outage")
            await watched.wait_for(lambda: watcher.state.storage_unavailable is not None)

            client, events = make_client(srv.url, srv.token(), data_dir=tmp_path / "second")
            await client.connect()
            await events.wait_for(lambda: client.state.storage_unavailable is not None)
            assert client.state.status is Status.CONNECTED
            # It sent nothing: the server told it on its own, as it connected.
            assert client.state.storage_unavailable == OUT_OF_REACH and len(client.outbox) == 0
            postgres.launch()
            await events.wait_for(lambda: client.state.storage_unavailable is None)
            await watched.wait_for(lambda: watcher.state.storage_unavailable is None and len(watcher.outbox) == 0)


async def test_a_full_sqlite_disk_is_shown_and_its_refused_message_stored_once_there_is_room(tmp_path, make_client):
    async with running_server(tmp_path, demo_words=3) as srv:
        client, events = make_client(srv.url, srv.token())
        await client.connect()
        before = await client.send_message(None, "stored before the disk filled")
        await events.wait_for(lambda: acked(events, before) and len(events.of_type(Complete)) == 1)
        chat_id = events.of_type(Ack)[0].chat_id
        await fill_disk(srv.server.store)  # SQLite's bound: SQLITE_FULL, as a full disk answers
        # Long enough to need pages of its own: refused whatever room the file's pages have left.
        during = await client.send_message(chat_id, "a long message, " * 2000)
        await events.wait_for(lambda: client.state.storage_unavailable is not None)
        assert client.state.storage_unavailable == OUT_OF_REACH
        await free_disk(srv.server.store)
        await events.wait_for(lambda: acked(events, during) and len(events.of_type(Complete)) == 2)
        await events.wait_for(lambda: client.state.storage_unavailable is None)
        assert len(client.outbox) == 0
