"""What one user can make the server hold or do is bounded: connections, answer size, edits, listings, pongs."""

from __future__ import annotations

import asyncio
import logging
import re
import resource
import socket
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.protocol import State
from websockets.uri import parse_uri

from mfu_tui.protocol import (
    Ack,
    Cancel,
    Cancelled,
    Complete,
    DeleteChat,
    EditMessage,
    Error,
    GetChat,
    ListModels,
    Message,
    Ping,
    Pong,
    Result,
    UpdateChat,
    encode,
)
from mfu_tui.server.connection import PING_BURST
from mfu_tui.server.logs import EVENT_FIELDS
from mfu_tui.server.providers.demo import demo_answer, demo_reasoning
from tests.server.fake_openai import FakeOpenAI
from tests.server.peer import TIMEOUT, new_id, peer
from tests.server.rawclient import RawClient
from tests.server.test_generation import SLOW, get_chat, send_message
from tests.server.test_workers import log_says, until
from tests.support.limits import needs_seccomp, refuse_raising_limits
from tests.support.server import ServerProcess, running_server


async def test_one_connection_past_the_cap_gets_429_and_other_users_are_unaffected(tmp_path):
    async with running_server(tmp_path, connections_per_user=3) as srv:
        async with peer(srv.url, srv.token()), peer(srv.url, srv.token()), peer(srv.url, srv.token()):
            with pytest.raises(InvalidStatus) as refused:
                async with peer(srv.url, srv.token()):
                    pass
            async with peer(srv.url, srv.token("bob")) as bob:
                await bob.send(Ping(ts=1))
                assert await bob.expect(Pong) == Pong(ts=1)
    assert refused.value.response.status_code == 429
    assert refused.value.response.body == b"too many connections: alice has 3 open already\n"


async def test_a_connection_past_the_cap_is_logged_naming_the_user_the_client_and_the_node(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mfu_tui.server.app")
    async with running_server(tmp_path, connections_per_user=1) as srv, peer(srv.url, srv.token()):
        with pytest.raises(InvalidStatus):
            async with peer(srv.url, srv.token()):
                pass
    # Handshakes that pass the door together are closed with 1013 by the same ``_refuse_too_many``.
    [refused] = [getattr(record, EVENT_FIELDS) for record in caplog.records if record.message == "refused a connection"]
    assert refused == {
        "event": "connection_refused",
        "why": "too many connections",
        "user": "alice",
        "client": "127.0.0.1",
        "node": srv.server.node_id,
        "connections": 1,
    }


async def test_simultaneous_handshakes_cannot_pass_the_cap_together(tmp_path):
    attempts = 12
    handshakes_done: list[bool] = []
    everyone_tried = asyncio.Event()
    opened: list = []

    async def attempt() -> bool:
        """True if the connection is up and answering once every handshake has settled."""
        try:
            websocket = await connect(srv.url, additional_headers={"Authorization": f"Bearer {token}"}, proxy=None)
        except InvalidStatus:
            websocket = None
        handshakes_done.append(websocket is not None)
        if len(handshakes_done) == attempts:
            everyone_tried.set()
        if websocket is None:
            return False
        opened.append(websocket)
        await everyone_tried.wait()
        try:
            await websocket.send('{"type": "ping", "ts": 2}')
            await asyncio.wait_for(websocket.recv(), TIMEOUT)
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 1013
            return False
        return True

    async with running_server(tmp_path, connections_per_user=3) as srv:
        token = srv.token()
        results = await asyncio.gather(*(attempt() for _ in range(attempts)))
        for websocket in opened:
            await websocket.close()
    assert sum(results) == 3


async def test_an_answer_past_the_size_cap_ends_as_length_and_is_stored_cut(tmp_path):
    async with running_server(tmp_path, demo_words=400, max_answer_chars=300) as srv:
        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, "a long one please")
            chunks, end = await alice.stream(ack.reply_id)
            detail = await get_chat(alice, ack.chat_id)
    assert isinstance(end, Complete) and end.finish_reason == "length"
    assert len("".join(chunk.content for chunk in chunks)) == 300
    assert len(detail.messages[1].content) == 300 and detail.messages[1].finish_reason == "length"


async def test_edits_spend_the_message_budget(tmp_path):
    async with running_server(tmp_path, demo_words=2, message_burst=3, messages_per_minute=0.01) as srv:
        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, "v1")
            await alice.stream(ack.reply_id)
            for version in ("v2", "v3", "v4"):
                await alice.send(EditMessage(chat_id=ack.chat_id, message_id=ack.message_id, content=version))
            error = await alice.expect(Error)
            detail = await get_chat(alice, ack.chat_id)
    assert error.code == "rate_limited"
    assert detail.messages[0].content == "v3"  # the message and two edits spent the burst of 3


async def test_a_flood_of_list_models_asks_the_model_server_once(tmp_path):
    async with FakeOpenAI() as fake:
        fake.models_open.clear()  # the model server is slow: every request would pile up behind it
        settings = {"provider": "openai", "openai_base_url": fake.base_url}
        async with running_server(tmp_path, **settings) as srv:
            async with peer(srv.url, srv.token()) as alice:
                for number in range(200):
                    await alice.send(ListModels(request_id=f"r{number}"))
                await fake.models_asked.wait()
                fake.models_open.set()
                answers = [await alice.expect(Result) for _ in range(200)]
    assert sorted(a.request_id for a in answers) == sorted(f"r{number}" for number in range(200))
    assert fake.model_lists == 1


def test_the_server_raises_its_open_files_limit_to_the_hard_one(tmp_path: Path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard <= 256:
        pytest.skip(f"the hard open-files limit is {hard} here: nothing to raise")
    server = ServerProcess(tmp_path, preexec=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)))
    server.start()
    try:
        assert server.process is not None
        limits = Path(f"/proc/{server.process.pid}/limits").read_text()
    finally:
        server.kill()
    [line] = [line for line in limits.splitlines() if line.startswith("Max open files")]
    assert line.split()[3:5] == [str(hard), str(hard)]


@needs_seccomp
@pytest.mark.parametrize("workers", ["1", "2"])
async def test_an_open_files_limit_the_system_will_not_raise_is_one_warning_whatever_the_workers(tmp_path, workers):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard <= 256:
        pytest.skip(f"the hard open-files limit is {hard} here: nothing to raise")

    def low_and_fixed() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        refuse_raising_limits()

    server = ServerProcess(tmp_path, "--workers", workers, preexec=low_and_fixed)
    server.start()
    try:
        # The workers start, and would warn, before they listen; "N workers running" follows them all.
        await until(lambda: workers == "1" or log_says(server, f"{workers} workers running"))
    finally:
        server.terminate()
        server.wait()
    [warning] = log_says(server, "could not raise the open-files limit")  # the supervisor's: the workers inherit
    assert warning.endswith(
        "WARNING mfu_tui.server.cli: could not raise the open-files limit from 256: not allowed "
        "to raise maximum limit\n"
    )


def ping_frames(count: int) -> bytes:
    """``count`` masked client pings of 125 bytes each, as one blob (what a ping flood writes)."""
    payload = b"p" * 125
    mask = b"\x00\x00\x00\x00"  # a zero mask leaves the payload as it is
    return (b"\x89" + bytes([0x80 | len(payload)]) + mask + payload) * count


def open_websocket_socket(url: str, token: str) -> socket.socket:
    """A blocking socket with the opening handshake done: the test writes raw frames on it."""
    uri = parse_uri(url)
    sock = socket.create_connection((uri.host, uri.port), timeout=TIMEOUT)
    try:
        protocol = ClientProtocol(uri)
        request = protocol.connect()
        request.headers["Authorization"] = f"Bearer {token}"
        protocol.send_request(request)
        sock.sendall(b"".join(protocol.data_to_send()))
        while protocol.state is State.CONNECTING:
            protocol.receive_data(sock.recv(65536))
    except BaseException:
        sock.close()
        raise
    return sock


async def test_a_client_that_pings_and_never_reads_is_dropped_before_the_server_holds_its_pongs(tmp_path):
    async with running_server(tmp_path, send_queue_bytes=64 * 1024) as srv:
        url, token = srv.url, srv.token("mallory")

        def flood() -> int:
            """Sends pings, never reads; the megabytes sent when the server cut the connection."""
            with open_websocket_socket(url, token) as sock:
                blob = ping_frames(8192)  # 1 MiB of pings: 1 MiB of pongs to write back
                for megabytes in range(1, 257):
                    try:
                        sock.sendall(blob)
                    except OSError:  # reset: the server dropped us
                        return megabytes
                return 0

        cut_after = await asyncio.to_thread(flood)
    # Pongs beyond the send queue plus one frame are not held: without the bound, all 256 MiB went in.
    assert 0 < cut_after < 256


async def test_a_ping_flood_is_dropped_at_once_and_a_pinging_client_is_not(tmp_path):
    async with running_server(tmp_path) as srv:
        url, token = srv.url, srv.token("mallory")

        def flood() -> bytes:
            """One write of pings just past the burst; what the server sent until it dropped us."""
            with open_websocket_socket(url, token) as sock:
                sock.sendall(ping_frames(PING_BURST + 1))
                received = b""
                for _ in range(1000):  # bounded: the server closes long before
                    try:
                        data = sock.recv(65536)
                    except ConnectionResetError:
                        return received
                    if not data:
                        return received
                    received += data
                raise AssertionError("the server kept a ping flooder")

        async with peer(srv.url, srv.token("alice")) as alice:
            for _ in range(3):
                await asyncio.wait_for(await alice.ws.ping(), TIMEOUT)  # a client's pings are answered
            await asyncio.to_thread(flood)  # returns: the flooder was dropped (a timeout would raise)
            await asyncio.wait_for(await alice.ws.ping(), TIMEOUT)  # and alice is still served


async def test_replies_waiting_across_a_users_connections_are_bounded_and_others_are_served(tmp_path):
    """Each connection's own bound lets 4 x (256 KiB + a reply) wait; the user's bound holds them to 512 KiB."""
    per_user, clients, asked = 512 * 1024, 4, 100
    async with running_server(
        tmp_path, demo_words=3, send_queue_bytes=256 * 1024, reply_bytes_per_user=per_user
    ) as srv:
        async with peer(srv.url, srv.token()) as alice, peer(srv.url, srv.token("bob")) as bob:
            ack = await send_message(alice, "z" * 60_000)  # get_chat answers ~60 KB each
            await alice.stream(ack.reply_id)
            replies = srv.server.user_replies("alice")
            assert replies is not None
            ask = encode(GetChat(request_id="size", chat_id=ack.chat_id)).decode()
            slow = [await RawClient.open(srv.url, srv.token(), receive_buffer=4096) for _ in range(clients)]
            slow[0].send_text(ask)
            first: list = []
            while not first:  # one answer may take several reads
                first = await asyncio.wait_for(slow[0].read_frames(), TIMEOUT)
            reply_size = len(first[0].data)
            for client in slow:
                for _ in range(asked):
                    client.send_text(ask)
                await client.writer.drain()
            for _ in range(int(TIMEOUT / 0.01)):  # the readers are held: the user's replies are over the bound
                if replies.over:
                    break
                await asyncio.sleep(0.01)
            assert replies.over
            # Another user is served meanwhile.
            await bob.send(Ping(ts=7))
            assert await bob.expect(Pong) == Pong(ts=7)

            # The slow clients read at last: every answer comes, none is cut off.
            async def read_all(client: RawClient) -> int:
                results = 0
                while results < asked:
                    frames = await asyncio.wait_for(client.read_frames(), TIMEOUT)
                    assert RawClient.close_code(frames) is None
                    results += sum(1 for frame in frames if b'"type":"result"' in frame.data)
                return results

            assert await asyncio.gather(*(read_all(client) for client in slow)) == [asked] * clients
            # The user's other connections are served again once the bytes drained.
            await alice.send(Ping(ts=8))
            assert await alice.expect(Pong) == Pong(ts=8)
            for client in slow:
                client.close()
    assert per_user < replies.peak <= per_user + clients * reply_size


async def test_answers_past_the_users_bound_are_refused_as_rate_limited_until_one_ends(tmp_path):
    async with running_server(tmp_path, answers_per_user=1, **SLOW) as srv:
        async with peer(srv.url, srv.token()) as alice, peer(srv.url, srv.token("bob")) as bob:
            first = await send_message(alice, "first")
            await alice.send(Cancel(chat_id=first.chat_id))
            await alice.expect(Cancelled, message_id=first.reply_id)
            running = await send_message(alice, "second")
            again = EditMessage(
                chat_id=first.chat_id,
                message_id=first.message_id,
                content="again",
                regenerate=True,
                client_edit_id="e1",
            )
            await alice.send(again)
            edit_refused = await alice.expect(Error)
            third = Message(chat_id=None, content="third", client_message_id=new_id())
            await alice.send(third)
            message_refused = await alice.expect(Error)
            other_user = await send_message(bob, "bob's own")  # per user: Bob's answer starts
            await alice.send(Cancel(chat_id=running.chat_id))
            await alice.expect(Cancelled, message_id=running.reply_id)
            await alice.send(third)  # what the client does: the same message, once an answer ended
            await alice.expect(Ack, client_message_id=third.client_message_id)
    assert (edit_refused.code, edit_refused.client_edit_id) == ("rate_limited", "e1")
    assert edit_refused.message == "you have 1 answer running: try again when one of them ends"
    assert (message_refused.code, message_refused.client_message_id) == ("rate_limited", third.client_message_id)
    assert message_refused.message == "you have 1 answer running: this one starts when one of them ends"
    assert other_user.reply_id


async def test_past_the_storage_quota_messages_and_edits_are_refused_until_chats_are_deleted(tmp_path):
    quota = 2000
    async with running_server(tmp_path, demo_words=3, storage_per_user_mib=quota / (1024 * 1024)) as srv:
        async with peer(srv.url, srv.token()) as alice, peer(srv.url, srv.token("bob")) as bob:
            first = await send_message(alice, "x" * 2100)  # under the quota when it starts: accepted
            await alice.stream(first.reply_id)
            stored = await srv.server.store.stored_bytes("alice")
            second = Message(chat_id=first.chat_id, content="one more", client_message_id=new_id())
            await alice.send(second)
            message_refused = await alice.expect(Error)
            edit = EditMessage(chat_id=first.chat_id, message_id=first.message_id, content="y", client_edit_id="e1")
            await alice.send(edit)
            edit_refused = await alice.expect(Error)
            again = await send_message(alice, "x" * 2100, client_message_id=first.client_message_id)  # a retry
            await send_message(bob, "bob has room")
            await alice.send(DeleteChat(request_id="r1", chat_id=first.chat_id))
            await alice.expect(Result, request_id="r1")
            after_delete = await send_message(alice, "room again")
    assert stored >= quota
    assert (message_refused.code, message_refused.client_message_id) == ("quota_exceeded", second.client_message_id)
    assert message_refused.message == (
        f"storage quota reached: your chats hold {stored / 1024:.1f} KiB of the 2.0 KiB allowed; "
        "delete old chats to make room"
    )
    assert (edit_refused.code, edit_refused.client_edit_id) == ("quota_exceeded", "e1")
    assert again == first and after_delete.chat_id != first.chat_id


async def test_past_the_storage_quota_a_system_prompt_is_refused_and_other_changes_are_not(tmp_path):
    quota = 2000
    async with running_server(tmp_path, demo_words=3, storage_per_user_mib=quota / (1024 * 1024)) as srv:
        async with peer(srv.url, srv.token()) as alice:
            first = await send_message(alice, "x" * 1900)
            await alice.stream(first.reply_id)
            prompt = UpdateChat(request_id="r1", chat_id=first.chat_id, system_prompt="p" * 200)
            await alice.send(prompt)  # under the quota when asked: stored, and now counted
            await alice.expect(Result, request_id="r1")
            await alice.send(UpdateChat(request_id="r2", chat_id=first.chat_id, system_prompt="a longer one"))
            refused = await alice.expect(Error)
            await alice.send(UpdateChat(request_id="r3", chat_id=first.chat_id, title="still mine", system_prompt=""))
            renamed = await alice.expect(Result, request_id="r3")
        stored = await srv.server.store.stored_bytes("alice")
    assert (refused.code, refused.request_id) == ("quota_exceeded", "r2")
    assert renamed.data["chat"]["title"] == "still mine"
    assert stored < quota  # the prompt removed: its bytes with it


async def test_an_answers_reasoning_fills_the_storage_quota_like_its_text(tmp_path):
    question = "think: is reasoning stored text?"
    thought, answer = demo_reasoning(question), demo_answer(question, 3)
    quota = len(question) + len(answer) + 100  # room for the exchange's text, not for its reasoning too
    assert len(thought) > 100
    async with running_server(tmp_path, demo_words=3, storage_per_user_mib=quota / (1024 * 1024)) as srv:
        async with peer(srv.url, srv.token()) as alice:
            first = await send_message(alice, question)
            chunks, _ = await alice.stream(first.reply_id)
            stored = await srv.server.store.stored_bytes("alice")
            second = Message(chat_id=first.chat_id, content="one more", client_message_id=new_id())
            await alice.send(second)
            refused = await alice.expect(Error)
    assert "".join(chunk.content for chunk in chunks if chunk.kind == "reasoning") == thought
    assert stored == len((question + answer + thought).encode())
    assert (refused.code, refused.client_message_id) == ("quota_exceeded", second.client_message_id)


async def dropped(reader: asyncio.StreamReader) -> bool:
    """Wait until the server drops the connection (having sent nothing); True."""
    try:
        return await reader.read() == b""
    except ConnectionResetError:  # dropped with our request unread
        return True


async def test_half_sent_upgrades_cannot_keep_new_users_out_and_are_dropped_after_the_timeout(tmp_path):
    bound, opened = 20, 60
    async with running_server(tmp_path, max_handshakes=bound, handshake_timeout=1.0) as srv:
        pending = srv.server.pending_handshakes
        slowloris = []
        for _ in range(opened):  # a request line and one header, never the end of the request
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            writer.write(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            slowloris.append((reader, writer))
        for _ in range(int(TIMEOUT / 0.01)):  # until the server accepted them all
            if pending.dropped + len(pending) == opened:
                break
            await asyncio.sleep(0.01)
        held = len(pending)
        async with peer(srv.url, srv.token()) as alice:  # a real user still gets in, and an answer
            await alice.send(Ping(ts=1))
            assert await alice.expect(Pong) == Pong(ts=1)
        # Every half-sent upgrade ends: the oldest at once, the others after the timeout.
        ends = await asyncio.gather(*(asyncio.wait_for(dropped(reader), TIMEOUT) for reader, _ in slowloris))
        for _, writer in slowloris:
            writer.close()
    assert held == bound and pending.dropped == opened - bound + 1  # the user's connection made room too
    assert ends == [True] * opened and len(pending) == 0


async def test_accept_failures_out_of_open_files_are_logged_once_a_second_with_a_count(tmp_path: Path):
    # asyncio's loop: uvloop (libuv) accepts and closes what it has no descriptor for, and logs nothing.
    limit = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))  # noqa: E731
    server = ServerProcess(tmp_path, "--loop", "asyncio", preexec=limit)
    server.start()
    try:
        # More connections than the server has descriptors for: accept() fails until some close.
        flood = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(100)]
        for _ in range(int(TIMEOUT / 0.05)):  # two lines: the second says how many failures it held back
            if server.stderr.count("cannot accept connections") >= 2:
                break
            await asyncio.sleep(0.05)
        for sock in flood:
            sock.close()
        async with peer(server.url, server.token()) as alice:  # descriptors free again: accepted as before
            await alice.send(Ping(ts=1))
            assert await alice.expect(Pong) == Pong(ts=1)
    finally:
        server.kill()
    lines = [line for line in server.stderr.splitlines() if "cannot accept connections" in line]
    held_back = [int(re.search(r"\((\d+) more such failures", line)[1]) for line in lines]  # type: ignore[index]
    assert len(lines) >= 2 and "[Errno 24] Too many open files" in lines[0]
    assert sum(held_back) > 0  # the failures asyncio would have logged one by one, with a traceback each
    assert "Traceback" not in server.stderr and "out of system resource" not in server.stderr
