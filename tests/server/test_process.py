"""The server as a process, on SQLite and on PostgreSQL: kill -9 mid-stream, SIGTERM, and tokens never in its logs."""

from __future__ import annotations

import logging

import pytest
from websockets.exceptions import InvalidStatus

from mfu_tui.protocol import Chunk, Complete, Ping, Pong, Resume
from tests.server.peer import peer, text_of
from tests.server.test_generation import get_chat, send_message
from tests.support.server import ServerProcess, running_server


@pytest.fixture(params=["sqlite", "postgres"])
def server_process(request, tmp_path):
    """The server as a subprocess, on each store."""
    process = ServerProcess(tmp_path, "--demo-words", "600", "--demo-delay-ms", "3")
    if request.param == "postgres":
        process.db_path = request.getfixturevalue("postgres_url")  # passed as --db
    process.start()
    yield process
    process.kill()


async def test_kill_9_mid_stream_then_resume_returns_exactly_the_stored_text(server_process):
    async with peer(server_process.url, server_process.token()) as alice:
        ack = await send_message(alice, "survive a crash")
        await alice.expect(Chunk, message_id=ack.reply_id, seq=10)
        server_process.kill()  # SIGKILL while the answer streams
        await alice.close_code()
    before = [f for f in alice.received if isinstance(f, Chunk) and f.message_id == ack.reply_id]
    assert [c.seq for c in before] == list(range(1, len(before) + 1))

    server_process.start()  # same database, same port
    async with peer(server_process.url, server_process.token()) as alice:
        await alice.send(Resume(chat_id=ack.chat_id, message_id=ack.reply_id, last_seq=before[-1].seq))
        after, end = await alice.stream(ack.reply_id)
        detail = await get_chat(alice, ack.chat_id)
    reply = detail.messages[1]
    seqs = [c.seq for c in before + after]
    assert seqs == list(range(1, end.seq + 1))  # nothing lost, nothing repeated
    assert isinstance(end, Complete) and end.finish_reason == "interrupted"
    assert text_of(before + after) == reply.content
    assert (reply.status, reply.finish_reason, reply.seq) == ("error", "interrupted", end.seq)


async def test_sigterm_closes_clients_with_4012_flushes_and_exits_0(server_process):
    async with peer(server_process.url, server_process.token()) as alice:
        ack = await send_message(alice, "stop gracefully")
        await alice.expect(Chunk, message_id=ack.reply_id, seq=3)
        server_process.terminate()
        code = await alice.close_code()
    assert code == 4012  # server restarting: reconnect at once
    assert server_process.wait() == 0
    seen = [f for f in alice.received if isinstance(f, Chunk) and f.message_id == ack.reply_id]

    server_process.start()
    async with peer(server_process.url, server_process.token()) as alice:
        detail = await get_chat(alice, ack.chat_id)
    reply = detail.messages[1]
    assert (reply.status, reply.finish_reason) == ("error", "interrupted")
    assert reply.content.startswith(text_of(seen)) and reply.seq >= len(seen)


def test_sigterm_as_soon_as_it_says_it_listens_stops_it_cleanly(tmp_path):
    # The line is what a supervisor (or the app's local mode) waits for: a stop sent at once must be handled.
    process = ServerProcess(tmp_path)
    process.start()  # returns as the "listening on" line is read
    process.terminate()
    assert process.wait() == 0  # before: killed by the signal (-15) when it came before the handlers


def test_a_short_secret_refuses_to_start_with_one_line(tmp_path):
    process = ServerProcess(tmp_path)
    process.env["MFU_JWT_SECRET"] = "too-short"
    with pytest.raises(RuntimeError, match="did not start"):
        process.start(timeout=20)
    assert process.wait() == 2
    lines = [line for line in process.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "MFU_JWT_SECRET" in lines[0] and "32 bytes" in lines[0]


async def test_no_token_ever_reaches_the_log_at_debug(tmp_path):
    process = ServerProcess(tmp_path, "--log-level", "debug", "--demo-words", "5")
    process.start()
    try:
        good = process.token("alice")
        expired = process.token("alice", ttl=-3600)
        async with peer(process.url, good) as alice:  # header
            ack = await send_message(alice, "hello")
            await alice.stream(ack.reply_id)
        async with peer(process.url, good, header=False) as alice:  # ?token=
            await alice.send(Ping(ts=1))
            await alice.expect(Pong)
        for bad in (expired, good + "x", "garbage-token-value"):
            for header in (True, False):
                with pytest.raises(InvalidStatus):
                    async with peer(process.url, bad, header=header):
                        pass
        process.terminate()
        assert process.wait() == 0
    finally:
        process.kill()
    log = process.stderr
    assert "DEBUG" in log and "< GET /ws?token=[redacted]" in log  # websockets' own DEBUG lines were there
    for secret in (good, expired, good + "x", "garbage-token-value", process.secret):
        assert secret not in log
    for part in good.split("."):
        assert part not in log


async def test_a_user_name_with_escape_sequences_reaches_the_log_escaped(tmp_path):
    process = ServerProcess(tmp_path)
    process.start()
    try:
        async with peer(process.url, process.token("eve\x1b]2;log-title\x07")) as eve:
            await eve.send(Ping(ts=1))
            await eve.expect(Pong)
        process.terminate()
        assert process.wait() == 0
    finally:
        process.kill()
    assert "user=eve\\x1b]2;log-title\\x07 client=127.0.0.1" in process.stderr  # as text an operator can read
    assert "\x1b" not in process.stderr and "\x07" not in process.stderr


async def test_in_process_logs_at_debug_hold_no_token(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    quiet = logging.getLogger("tests.quiet-client")
    quiet.propagate = False  # the test client's own logs are not the server's
    async with running_server(tmp_path, demo_words=3) as srv:
        good = srv.token("alice")
        async with peer(srv.url, good, header=False, logger=quiet) as alice:
            ack = await send_message(alice, "hello")
            await alice.stream(ack.reply_id)
        with pytest.raises(InvalidStatus):
            async with peer(srv.url, good + "x", header=False, logger=quiet):
                pass
    text = "\n".join(record.getMessage() for record in caplog.records) + caplog.text
    assert any(record.name == "websockets.server" and record.levelno == logging.DEBUG for record in caplog.records)
    assert good not in text and good.split(".")[1] not in text
    assert srv.secret not in text
