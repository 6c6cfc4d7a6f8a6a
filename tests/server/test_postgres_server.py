"""The server as a process on PostgreSQL (``--db postgresql://...``): stream, resend, a missing database.

kill -9 and SIGTERM run on both stores in ``test_process.py``.
"""

from __future__ import annotations

import asyncio

import pytest

from mfu_tui.protocol import Ack, Complete, Message
from mfu_tui.server.providers.demo import demo_answer
from tests.server.peer import new_id, peer, text_of
from tests.server.test_generation import get_chat, send_message
from tests.support.server import ServerProcess


def postgres_server_process(tmp_path, postgres_url: str, *args: str) -> ServerProcess:
    process = ServerProcess(tmp_path, *args)
    process.db_path = postgres_url  # passed as --db
    return process


async def test_an_answer_streams_and_is_stored_in_postgres(tmp_path, postgres_url):
    process = postgres_server_process(tmp_path, postgres_url, "--demo-words", "40", "--demo-delay-ms", "0")
    process.start()
    try:
        async with peer(process.url, process.token()) as alice:
            ack = await send_message(alice, "What is a monad?")
            chunks, end = await alice.stream(ack.reply_id)
        process.restart()  # what is read back comes from the database, not from memory
        async with peer(process.url, process.token()) as alice:
            detail = await get_chat(alice, ack.chat_id)
    finally:
        process.kill()
    assert [chunk.seq for chunk in chunks] == list(range(1, len(chunks) + 1))
    assert isinstance(end, Complete) and end.finish_reason == "stop" and end.seq == len(chunks)
    assert text_of(chunks) == demo_answer("What is a monad?", 40)
    user_message, reply = detail.messages
    assert (user_message.id, user_message.content) == (ack.message_id, "What is a monad?")
    assert (reply.id, reply.status, reply.seq, reply.content) == (
        ack.reply_id,
        "complete",
        len(chunks),
        text_of(chunks),
    )


async def test_a_resent_client_message_id_is_stored_once(tmp_path, postgres_url):
    process = postgres_server_process(tmp_path, postgres_url, "--demo-words", "5", "--demo-delay-ms", "0")
    process.start()
    try:
        async with peer(process.url, process.token()) as tab1, peer(process.url, process.token()) as tab2:
            frame = Message(chat_id=None, content="once", client_message_id=new_id())
            await asyncio.gather(tab1.send(frame), tab2.send(frame))  # racing on two connections
            ack1 = await tab1.expect(Ack)
            ack2 = await tab2.expect(Ack)
            await tab1.stream(ack1.reply_id)
        process.restart()
        async with peer(process.url, process.token()) as alice:  # a resend after a reconnect
            again = await send_message(alice, "once", client_message_id=frame.client_message_id)
            detail = await get_chat(alice, ack1.chat_id)
    finally:
        process.kill()
    assert ack1 == ack2 == again
    assert [(m.role, m.status) for m in detail.messages] == [("user", "complete"), ("assistant", "complete")]


def test_an_unreachable_database_refuses_to_start_with_one_line(tmp_path, postgres_server):
    process = postgres_server_process(tmp_path, postgres_server.url("no_such_database"))
    with pytest.raises(RuntimeError, match="did not start"):
        process.start(timeout=20)
    assert process.wait() == 1
    lines = [line for line in process.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mfu-chat serve: cannot use the database postgresql://")
    assert "no_such_database" in lines[0]
