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

from mfu_tui.protocol import Complete
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
