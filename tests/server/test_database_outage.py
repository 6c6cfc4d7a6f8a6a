"""The database out of reach: frames are refused as `unavailable`, naming them, and work once it is back."""

from __future__ import annotations

import asyncio
import logging
import sqlite3

import aiohttp
import asyncpg
import pytest

from mfu_tui.protocol import Ack, Chunk, Complete, Error, Message
from mfu_tui.server import generation
from mfu_tui.server.store.outage import OutageLog, is_outage
from tests.server.peer import TIMEOUT, peer
from tests.server.test_generation import get_chat, send_message
from tests.server.test_rest import rest
from tests.support.postgres import running_postgres
from tests.support.server import running_server


async def test_a_message_sent_while_postgresql_is_down_is_refused_by_its_id_and_stored_once_it_is_back(tmp_path):
    with running_postgres() as postgres:
        async with running_server(tmp_path, db_path=postgres.new_database(), demo_words=3, demo_delay_ms=0) as srv:
            async with peer(srv.url, srv.token()) as alice:
                first = await send_message(alice, "before the outage")
                await alice.expect(Complete, message_id=first.reply_id)
                postgres.stop()
                await alice.send(Message(chat_id=first.chat_id, content="during the outage", client_message_id="c2"))
                refused = await alice.expect(Error, client_message_id="c2")
                assert (refused.code, refused.chat_id) == ("unavailable", first.chat_id)
                postgres.launch()
                # What the client does with an unavailable message: send it again, later.
                again = await send_message(alice, "during the outage", first.chat_id, client_message_id="c2")
                await alice.expect(Complete, message_id=again.reply_id)
                detail = await get_chat(alice, first.chat_id)
    assert [message.content for message in detail.messages if message.role == "user"] == [
        "before the outage",
        "during the outage",
    ]


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (sqlite3.OperationalError("database or disk is full"), 13),
        (sqlite3.OperationalError("database is locked"), 5),
        (sqlite3.OperationalError("disk I/O error"), 10 | (3 << 8)),
        (sqlite3.OperationalError("no such column: x"), 1),
    ],
)
def test_sqlite_errors_of_a_database_out_of_use_are_outages_and_a_wrong_statement_is_not(error, outage):
    error.sqlite_errorcode = outage  # as sqlite3 sets it
    assert is_outage(error) is (outage != 1)


def test_an_outage_is_logged_as_it_starts_and_as_it_ends_with_what_failed_meanwhile(caplog):
    outages = OutageLog()
    caplog.set_level(logging.INFO, logger="mfu_tui.server.store.outage")
    assert not outages.failed("frames refused", KeyError("a bug"))  # the caller logs a bug
    assert not outages.out and caplog.records == []
    assert outages.failed("frames refused", ConnectionResetError("reset by peer"))
    assert outages.failed("frames refused", TimeoutError())
    assert outages.failed("commits failed", ConnectionResetError("reset by peer"))
    assert outages.out
    outages.worked()
    outages.worked()  # nothing was out any more: nothing to say
    assert [(record.levelname, record.getMessage()) for record in caplog.records] == [
        (
            "ERROR",
            "the database is out of reach (ConnectionResetError: reset by peer);"
            " what needs it is refused as unavailable until it answers",
        ),
        ("WARNING", caplog.records[1].getMessage()),
    ]
    assert caplog.records[1].getMessage().startswith("the database answers again after 0.")
    assert caplog.records[1].getMessage().endswith("(meanwhile commits failed: 1, frames refused: 2)")
    assert not outages.out


async def test_a_postgresql_outage_under_clients_logs_two_lines_and_no_traceback(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mfu_tui")
    with running_postgres() as postgres:
        async with running_server(tmp_path, db_path=postgres.new_database(), demo_words=3, api_port=0) as srv:
            async with peer(srv.url, srv.token()) as alice, rest(srv) as api:
                first = await send_message(alice, "before the outage")
                await alice.expect(Complete, message_id=first.reply_id)
                postgres.stop()
                for n in range(4):
                    await alice.send(Message(chat_id=first.chat_id, content="during", client_message_id=f"c{n}"))
                    assert (await alice.expect(Error, client_message_id=f"c{n}")).code == "unavailable"
                listed = await api.call("GET", "/api/chat/chats")
                async with aiohttp.ClientSession() as session:
                    ready = await session.get(f"http://127.0.0.1:{srv.port}/readyz")
                postgres.launch()
                again = await send_message(alice, "after the outage", first.chat_id)
                await alice.expect(Complete, message_id=again.reply_id)
    assert (listed.status, listed.headers["Retry-After"]) == (503, "5")
    assert listed.body == {"error": "the server cannot reach its database; try again in a moment"}
    assert ready.status == 503
    assert [record for record in caplog.records if record.exc_info] == []
    outage = [record.getMessage() for record in caplog.records if record.name == "mfu_tui.server.store.outage"]
    assert len(outage) == 2, outage
    assert outage[0].startswith("the database is out of reach (")
    assert outage[1].startswith("the database answers again after ")
    assert "frames refused: 4" in outage[1] and "REST requests refused: 1" in outage[1]
    assert "readiness checks failed: 1" in outage[1]


def test_a_lost_connection_is_an_outage_and_a_bug_is_not():
    assert is_outage(ConnectionResetError()) and is_outage(TimeoutError())
    assert not is_outage(KeyError("a bug"))


async def test_a_postgresql_connection_closed_under_its_user_is_an_outage_and_bad_input_is_not(postgres_url):
    connection = await asyncpg.connect(postgres_url)
    with pytest.raises(asyncpg.DataError) as bad_input:
        await connection.fetchval("SELECT $1::int", "not a number")
    await connection.close()
    with pytest.raises(asyncpg.InterfaceError) as closed:  # what a pool's connection raises after an outage
        await connection.fetchval("SELECT 1")
    assert is_outage(closed.value)
    assert not is_outage(bad_input.value)


async def test_an_answer_whose_database_goes_away_ends_as_the_servers_storage_failing_and_frees_its_chat(
    tmp_path, monkeypatch
):
    # No retry on a timer: the end is stored because the node sees the database answer again.
    monkeypatch.setattr(generation, "END_RETRY_FIRST", 3600)
    monkeypatch.setattr(generation, "END_RETRY_MOST", 3600)
    with running_postgres() as postgres:
        async with running_server(tmp_path, db_path=postgres.new_database(), demo_words=2000, demo_delay_ms=5) as srv:
            async with peer(srv.url, srv.token()) as alice:
                first = await send_message(alice, "a long answer")
                chunks = [await alice.expect(Chunk, message_id=first.reply_id)]
                postgres.stop()
                while not isinstance(frame := await alice.recv(), Error):
                    if isinstance(frame, Chunk):  # not the server_status that may come first
                        chunks.append(frame)
                refused = frame
                after, end = await alice.stream(first.reply_id)
                chunks += after
                postgres.launch()
                # Its end is stored once the database is back, which frees the chat: a message
                # sent meanwhile is refused for now (conflict, unavailable), as clients send it again.
                async with asyncio.timeout(TIMEOUT):
                    while True:
                        await alice.send(Message(chat_id=first.chat_id, content="after", client_message_id="c2"))
                        answer = await alice.expect((Ack, Error), client_message_id="c2")
                        if isinstance(answer, Ack):
                            break
                        assert answer.code in ("conflict", "unavailable")
                        await asyncio.sleep(0.2)  # a client's wait before sending again, shortened
                await alice.expect(Complete, message_id=answer.reply_id)
                detail = await get_chat(alice, first.chat_id)
    assert (refused.code, refused.chat_id) == ("unavailable", first.chat_id)
    assert refused.message == "the server could not store the answer: its database is out of reach for now"
    assert isinstance(end, Complete) and (end.finish_reason, end.seq) == ("store_failed", len(chunks))
    stored = detail.messages[1]
    assert (stored.status, stored.finish_reason, stored.seq) == ("error", "store_failed", len(chunks))
    assert stored.content == "".join(chunk.content for chunk in chunks)
