"""A message the database stored although the server never saw it stored gets its answer when it is sent again.

A connection to PostgreSQL that drops during the COMMIT of a message leaves
it stored, with its empty reply streaming, while the server refused the
message as ``unavailable``: the client sends it again, and the server, which
finds it stored, must start the answer that never started, not only ack it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from mfu_tui.protocol import Chunk, Complete
from mfu_tui.server.providers.demo import demo_answer
from mfu_tui.server.store.base import Exchange
from tests.server.peer import peer, text_of
from tests.server.test_generation import get_chat, send_message
from tests.support.server import running_server


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_message_stored_unseen_gets_its_answer_when_sent_again(tmp_path, backend, request):
    db_path = request.getfixturevalue("postgres_url") if backend == "postgres" else tmp_path / "server.sqlite3"
    async with running_server(tmp_path, db_path=db_path, demo_words=3, demo_delay_ms=0) as srv:
        # What a COMMIT applied but unseen leaves: the message and its streaming reply, no answer running.
        stored = await srv.server.store.record_message("alice", None, "sent during the outage", "c1", None)
        assert stored is not None
        async with peer(srv.url, srv.token()) as alice:
            again = await send_message(alice, "sent during the outage", client_message_id="c1")
            end = await alice.expect(Complete, message_id=again.reply_id)
            # A second resend (the first ack lost too) is acked again, and starts nothing more.
            twice = await send_message(alice, "sent during the outage", client_message_id="c1")
            detail = await get_chat(alice, stored.chat.id)
    assert (again.chat_id, again.reply_id) == (stored.chat.id, stored.reply_id)
    assert twice.reply_id == stored.reply_id
    assert end.finish_reason == "stop" and end.seq > 0
    assert [(message.role, message.status) for message in detail.messages] == [
        ("user", "complete"),
        ("assistant", "complete"),
    ]


async def test_a_message_sent_again_while_its_first_copy_is_stored_gets_one_answer(tmp_path, caplog):
    # The first copy's ack was lost and the client, on a new connection, sends the message again while the
    # server is still storing the first copy. Stored but not started yet, the answer looked orphaned to the
    # second copy, which started it; the first copy then started it too, and the two answers wrote the same
    # reply: one was stopped on a duplicate seq, the reply ended in error.
    async with running_server(tmp_path, demo_words=30, demo_delay_ms=0) as srv:
        store = srv.server.store
        record_message = store.record_message
        first_stored, first_goes_on = asyncio.Event(), asyncio.Event()

        async def record_and_hold_the_first(*args: Any, **kwargs: Any) -> Exchange | None:
            exchange = await record_message(*args, **kwargs)
            if not first_stored.is_set():  # the first copy: stored, its answer not started until released
                first_stored.set()
                await first_goes_on.wait()
            return exchange

        store.record_message = record_and_hold_the_first  # type: ignore[method-assign]
        async with peer(srv.url, srv.token()) as first, peer(srv.url, srv.token()) as second:
            first_ack = asyncio.create_task(send_message(first, "sent twice", client_message_id="c1"))
            await first_stored.wait()
            second_ack = asyncio.create_task(send_message(second, "sent twice", client_message_id="c1"))
            # The second copy is answered once the first is started, not before: released after a second
            # at most (or as soon as it is acked, which it was at once before the fix).
            await asyncio.wait([second_ack], timeout=1.0)
            first_goes_on.set()
            acks = [await first_ack, await second_ack]
            chunks, end = await first.stream(acks[0].reply_id)
            detail = await get_chat(first, acks[0].chat_id)
    assert acks[0].reply_id == acks[1].reply_id
    # One answer, whole, each chunk once: no second answer writing the same reply.
    assert [chunk.seq for chunk in chunks] == list(range(1, len(chunks) + 1))
    assert text_of(chunks) == demo_answer("sent twice", 30) and end.finish_reason == "stop"
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []
    assert [(message.role, message.status) for message in detail.messages] == [
        ("user", "complete"),
        ("assistant", "complete"),
    ]
    assert detail.messages[1].content == demo_answer("sent twice", 30)


async def test_a_message_sent_again_as_its_answer_ends_does_not_start_it_again(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mfu_tui.server")
    # Sent again while its answer streams, the message is found with its answer streaming, which looks
    # orphaned until the server sees the answer runs here. If the answer ends in between (its end stored,
    # the chat let go), the second copy took the chat and started the finished answer again.
    async with running_server(tmp_path, demo_words=30, demo_delay_ms=10) as srv:
        store = srv.server.store
        find_exchange = store.find_exchange
        first_answer_ended = asyncio.Event()

        async def find_and_hold_while_streaming(user: str, client_message_id: str) -> Exchange | None:
            exchange = await find_exchange(user, client_message_id)
            if exchange is not None and exchange.orphaned and not first_answer_ended.is_set():
                await first_answer_ended.wait()  # read while the answer streamed, acted on after its end
            return exchange

        store.find_exchange = find_and_hold_while_streaming  # type: ignore[method-assign]
        async with peer(srv.url, srv.token()) as first, peer(srv.url, srv.token()) as second:
            ack = await send_message(first, "sent twice", client_message_id="c1")
            await first.expect(Chunk, message_id=ack.reply_id)  # streaming
            second_ack = asyncio.create_task(send_message(second, "sent twice", client_message_id="c1"))
            chunks, end = await first.stream(ack.reply_id)
            first_answer_ended.set()
            again = await second_ack
            detail = await get_chat(first, ack.chat_id)
    assert again.reply_id == ack.reply_id
    assert end.finish_reason == "stop"
    assert [(message.status, message.content) for message in detail.messages[1:]] == [
        ("complete", demo_answer("sent twice", 30))
    ]
    # One answer ran: the second copy started none (a second call to the model, for nothing).
    assert [record.getMessage() for record in caplog.records].count("answer ended") == 1
