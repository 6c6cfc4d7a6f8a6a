"""A message the database stored although the server never saw it stored gets its answer when it is sent again.

A connection to PostgreSQL that drops during the COMMIT of a message leaves
it stored, with its empty reply streaming, while the server refused the
message as ``unavailable``: the client sends it again, and the server, which
finds it stored, must start the answer that never started, not only ack it.
"""

from __future__ import annotations

import pytest

from mfu_tui.protocol import Complete
from tests.server.peer import peer
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
