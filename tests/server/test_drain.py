"""A stopping node moves its clients at once and lets its running answers end, up to --drain-timeout."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mfu_tui.protocol import Chunk, CloseCode, reconnect_at_once
from tests.server.peer import peer
from tests.server.test_generation import get_chat, send_message
from tests.support.server import running_server

#: A demo answer of 40 words at 25 ms each: about a second.
ANSWER = {"demo_words": 40, "demo_delay_ms": 25}


async def stopped_while_answering(tmp_path: Path, drain_timeout: float) -> tuple[int | None, str, str | None]:
    """Stop the server (drain_timeout) while an answer streams: the close code, the stored answer's end."""
    async with running_server(tmp_path, drain_timeout=drain_timeout, **ANSWER) as srv:
        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, "tell me something long")
            await alice.expect(Chunk, message_id=ack.reply_id, seq=2)
            stopping = asyncio.create_task(srv.server.stop())
            code = await alice.close_code()
        await stopping
        db_path = srv.db_path
    async with running_server(tmp_path, db_path=db_path, secret=srv.secret) as again:
        async with peer(again.url, again.token()) as alice:
            reply = (await get_chat(alice, ack.chat_id)).messages[1]
    return code, reply.status, reply.finish_reason


async def test_the_clients_are_moved_at_once_and_an_answer_within_the_drain_timeout_ends_complete(tmp_path):
    code, status, finish = await stopped_while_answering(tmp_path, drain_timeout=30)
    assert code == CloseCode.RESTARTING and reconnect_at_once(code)
    assert (status, finish) == ("complete", "stop")


async def test_without_a_drain_timeout_the_running_answer_is_stored_as_interrupted(tmp_path):
    code, status, finish = await stopped_while_answering(tmp_path, drain_timeout=0)
    assert code == CloseCode.RESTARTING
    assert (status, finish) == ("error", "interrupted")
