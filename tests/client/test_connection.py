"""The worker against the real server: requests, auth refusal, heartbeat, immediate retry."""

import asyncio
import re
import time

import pytest
from websockets.asyncio.server import serve

from mfu_tui.client import Backoff, ClientError, ConnectionState, Problem, RequestError, Status
from mfu_tui.protocol import Ack, Chunk, Complete, ModelList
from tests.support.programs import free_port as closed_port
from tests.support.proxy import FaultProxy
from tests.support.server import running_server


async def test_connects_measures_rtt_and_answers_requests(tmp_path, make_client):
    async with running_server(tmp_path) as server:
        client, events = make_client(server.url, server.token())
        await client.connect()
        await client.wait_connected(timeout=30)
        await events.wait_for(lambda: client.state.rtt is not None)
        assert client.state.rtt > 0
        models = await client.list_models()
        assert isinstance(models, ModelList) and models.models
        with pytest.raises(RequestError) as refused:
            await client.get_chat("no-such-chat")
        assert refused.value.code == "not_found"
        assert events.opens == 1


async def test_an_expired_token_is_refused_once_and_not_retried(tmp_path, make_client):
    async with running_server(tmp_path) as server, FaultProxy(server.port) as proxy:
        client, events = make_client(proxy.url(), server.token(ttl=-3600))
        await client.connect()
        state = await events.wait_status(Status.DISCONNECTED)
        assert state.reason.startswith("auth refused") and state.problem is Problem.TOKEN_REFUSED
        assert not any(s.status is Status.RECONNECTING for s in events.states)
        with pytest.raises(ClientError, match="auth refused"):
            await client.wait_connected(timeout=30)
        assert proxy.accepted == 1


async def test_a_wrong_path_says_so_with_the_url_and_is_not_retried(tmp_path, make_client):
    async with running_server(tmp_path) as server, FaultProxy(server.port) as proxy:
        url = proxy.url().replace("/ws", "/wss") + "?token=secret-value"
        client, events = make_client(url, server.token())
        await client.connect()
        state = await events.wait_status(Status.DISCONNECTED)
        assert state.reason == (
            f"no WebSocket endpoint at {proxy.url().replace('/ws', '/wss')}?token=[redacted] (HTTP 404): "
            "check the path, usually /ws"
        )
        assert state.problem is Problem.NO_WEBSOCKET
        assert not any(s.status is Status.RECONNECTING for s in events.states)
        assert proxy.accepted == 1
        # The person fixed it (or wants to see again): one key tries once more, and stops again.
        again = len(events.states)
        await client.reconnect()
        await events.wait_for(lambda: len(events.states) > again and client.state.status is Status.DISCONNECTED)
        assert proxy.accepted == 2


async def test_a_web_page_that_is_not_a_websocket_endpoint_is_not_retried(tmp_path, make_client):
    async with running_server(tmp_path) as server:
        url = server.url.replace("/ws", "/healthz")  # answers HTTP 200 "ok": a page, not a WebSocket
        client, events = make_client(url, server.token())
        await client.connect()
        state = await events.wait_status(Status.DISCONNECTED)
    assert state.problem is Problem.NO_WEBSOCKET
    assert state.reason == f"no WebSocket endpoint at {url} (HTTP 200): check the port and the path, usually /ws"
    assert not any(s.status is Status.RECONNECTING for s in events.states)


async def test_a_wrong_port_says_connection_refused_at_each_retry_then_names_the_url(make_client):
    url = f"ws://127.0.0.1:{closed_port()}/ws?token=secret-value"
    client, events = make_client(url, "token", offline_after=0.2)
    await client.connect()
    retrying = await events.wait_status(Status.RECONNECTING)
    assert retrying.last_error == "connection refused" and retrying.problem is None
    state = await events.wait_status(Status.DISCONNECTED)
    assert state.problem is Problem.UNREACHABLE and state.last_error == "connection refused"
    assert state.reason == f"server unreachable at {url.replace('secret-value', '[redacted]')}: connection refused"
    assert state.retry_at is not None  # still trying


async def test_reconnect_tries_at_once_instead_of_waiting_out_the_backoff(make_client):
    # The first delay is 30 s: only reconnect() can bring the second attempt within the test.
    client, events = make_client(f"ws://127.0.0.1:{closed_port()}/ws", "token", backoff=Backoff(base=30, cap=60))
    await client.connect()
    await events.wait_for(lambda: client.state.retry_at is not None)
    failures = client.backoff.failures
    await client.reconnect()
    await events.wait_for(lambda: client.backoff.failures > failures)


@pytest.mark.parametrize(("code", "reason"), [(4401, "token expired"), (4403, "forbidden")])
async def test_close_codes_4401_and_4403_stop_the_worker(make_client, code, reason):
    accepted = 0

    async def refuse_after_open(ws):
        nonlocal accepted
        accepted += 1
        await ws.close(code, reason)

    async with serve(refuse_after_open, "127.0.0.1", 0) as peer:
        client, events = make_client(f"ws://127.0.0.1:{peer.sockets[0].getsockname()[1]}/ws", "token")
        await client.connect()
        state = await events.wait_status(Status.DISCONNECTED)
        assert state.reason == f"auth refused: {reason}" and state.problem is Problem.TOKEN_REFUSED
        assert accepted == 1
        assert not any(s.status is Status.RECONNECTING for s in events.states)


async def test_a_silent_network_is_detected_by_the_heartbeat(tmp_path, make_client):
    async with running_server(tmp_path) as server, FaultProxy(server.port) as proxy:
        client, events = make_client(proxy.url(), server.token(), ping_interval=0.2, ping_timeout=0.5)
        await client.connect()
        await events.wait_status(Status.CONNECTED)
        proxy.blackhole()
        state = await events.wait_status(Status.RECONNECTING)
        assert state.last_error == "no answer to ping within 0.5 s"
        proxy.pass_through()
        await events.wait_status(Status.CONNECTED)
        assert events.opens == 2
        assert (await client.list_models()).models


async def test_a_network_gone_silent_in_the_middle_of_an_answer_is_noticed_by_a_probe(tmp_path, make_client):
    # The heartbeat's own ping waits an hour: only a probe can notice the silence here.
    async with (
        running_server(tmp_path, demo_words=150, demo_delay_ms=20) as server,
        FaultProxy(server.port) as proxy,
    ):
        client, events = make_client(
            proxy.url(), server.token(), ping_interval=3600, ping_timeout=3600, probe_after=0.2, probe_timeout=1.5
        )
        await client.connect()
        await events.wait_status(Status.CONNECTED)
        await client.send_message(None, "a long answer, please")
        await events.wait_for(lambda: events.of_type(Chunk))
        proxy.blackhole()
        state = await events.wait_status(Status.RECONNECTING)
        assert state.last_error == "no answer to ping within 1.5 s"
        # Said while the probe was out (past CHECKING_AFTER), before the drop: the dot turned yellow at once.
        checking = next(index for index, state in enumerate(events.states) if state.checking)
        dropped = next(index for index, state in enumerate(events.states) if state.status is Status.RECONNECTING)
        assert events.states[checking].status is Status.CONNECTED and checking < dropped
        proxy.pass_through()
        await events.wait_for(lambda: events.of_type(Complete))
        assert events.opens == 2
        assert [chunk.seq for chunk in events.of_type(Chunk)] == list(range(1, events.of_type(Complete)[0].seq + 1))


async def test_a_network_lost_while_the_client_was_paused_is_noticed_by_a_probe_on_waking(tmp_path, make_client):
    # Nothing is owed and the next heartbeat is an hour away: only the pause itself can send a probe.
    async with running_server(tmp_path) as server, FaultProxy(server.port) as proxy:
        client, events = make_client(
            proxy.url(), server.token(), ping_interval=3600, ping_timeout=3600, probe_after=0.2, probe_timeout=1.5
        )
        await client.connect()
        await events.wait_for(lambda: client.state.rtt is not None)
        proxy.blackhole()
        time.sleep(1.0)  # the whole process stops, as under SIGSTOP or a closed lid: not a wait on anything
        state = await events.wait_status(Status.RECONNECTING)
        assert state.last_error == "no answer to ping within 1.5 s"
        assert any(state.checking for state in events.states)
        proxy.pass_through()
        await events.wait_status(Status.CONNECTED)


async def test_a_model_silent_for_longer_than_a_probe_is_not_taken_for_a_silent_network(tmp_path, make_client):
    async with running_server(tmp_path, demo_words=4, demo_delay_ms=400) as server:
        client, events = make_client(server.url, server.token(), ping_interval=3600, probe_after=0.1, probe_timeout=5)
        await client.connect()
        await events.wait_status(Status.CONNECTED)
        await events.wait_for(lambda: client.state.rtt is not None)
        pongs_before = len(events.states)
        await client.send_message(None, "take your time")
        await events.wait_for(lambda: events.of_type(Complete))
        # Each probe's pong is a new round trip in the state: the silences between words were probed...
        assert len(events.states) - pongs_before >= 2
        # ...and answered: one connection throughout.
        assert events.opens == 1
        assert all(state.status is Status.CONNECTED and not state.checking for state in events.states[pongs_before:])


async def test_a_request_in_flight_fails_at_once_when_the_connection_drops(tmp_path, make_client):
    async with running_server(tmp_path) as server, FaultProxy(server.port) as proxy:
        client, events = make_client(proxy.url(), server.token(), ping_interval=0.2, ping_timeout=0.5)
        await client.connect()
        await events.wait_status(Status.CONNECTED)
        proxy.blackhole()
        with pytest.raises(ClientError, match="connection lost before the answer to ListChats"):
            await client.list_chats()
        assert client.state.status is Status.RECONNECTING


async def test_events_yields_states_and_frames_and_ends_after_close(tmp_path, make_client):
    async with running_server(tmp_path, demo_words=3) as server:
        client, _ = make_client(server.url, server.token())
        seen = []

        async def consume():
            async for event in client.events():
                seen.append(event)
                if isinstance(event, Complete):
                    await client.close()

        consumer = asyncio.create_task(consume())
        await client.connect()
        await client.send_message(None, "hi")
        await asyncio.wait_for(consumer, 30)
        statuses = [e.status for e in seen if isinstance(e, ConnectionState)]
        assert statuses[0] is Status.CONNECTED and statuses[-1] is Status.DISCONNECTED
        assert any(isinstance(e, Ack) for e in seen)


async def test_a_send_while_reconnecting_tries_at_once(tmp_path, make_client):
    # A 1000 s backoff: only the send can bring the connection back within the test.
    slow = Backoff(base=1000.0, cap=1000.0, random=lambda: 1.0)
    async with running_server(tmp_path) as server, FaultProxy(server.port) as proxy:
        client, events = make_client(proxy.url(), server.token(), backoff=slow)
        await client.connect()
        await events.wait_status(Status.CONNECTED)
        proxy.reset()
        await events.wait_for(lambda: client.state.status is Status.RECONNECTING and client.state.retry_at)
        proxy.pass_through()
        client_message_id = await client.send_message(None, "are you there?")
        await events.wait_for(lambda: any(a.client_message_id == client_message_id for a in events.of_type(Ack)))
        assert client.state.status is Status.CONNECTED
        assert len(client.outbox) == 0


async def test_a_request_fails_fast_when_the_worker_is_stopped(tmp_path, make_client):
    async with running_server(tmp_path) as server:
        client, _ = make_client(server.url, server.token())
        await client.connect()
        await client.wait_connected(timeout=30)
        await client.close()
        with pytest.raises(ClientError, match="closed by user"):
            await client.list_chats()
        assert client.state.reason == "closed by user" and client.state.problem is Problem.CLOSED


async def test_the_token_never_reaches_the_logs(tmp_path, make_client, caplog):
    caplog.set_level("DEBUG")
    async with running_server(tmp_path) as server:
        token = server.token()
        client, _ = make_client(server.url, token)
        await client.connect()
        await client.wait_connected(timeout=30)
        await client.list_models()
        await client.close()
    client_records = [r for r in caplog.records if r.name.startswith("mfu_tui.client")]
    assert any("connected to" in r.getMessage() for r in client_records)
    assert any("Authorization: Bearer [redacted]" in r.getMessage() for r in client_records)
    assert all(token not in r.getMessage() for r in caplog.records)


async def test_the_debug_log_shows_frames_without_their_text(tmp_path, make_client, caplog):
    caplog.set_level("DEBUG")
    async with running_server(tmp_path) as server:
        client, events = make_client(server.url, server.token())
        await client.connect()
        await client.wait_connected(timeout=30)
        await client.send_message(None, "my diagnosis xyzzy")
        await events.wait_for(lambda: events.of_type(Complete))
        found = await client.search("xyzzy")
        await client.close()
    wire = [record.getMessage() for record in caplog.records if record.name == "mfu_tui.client.wire"]
    assert found.hits  # the words went both ways: in the message, the search, the answer and the hits
    assert not any("xyzzy" in record.getMessage() or "diagnosis" in record.getMessage() for record in caplog.records)
    sent = [line for line in wire if re.fullmatch(r"> TEXT \[\d+ bytes\]", line)]
    received = [line for line in wire if re.fullmatch(r"< TEXT \[\d+ bytes\]", line)]
    assert len(sent) >= 2 and len(received) >= 2  # the message and the search; the ack, the chunks, the hits


async def test_frames_of_a_newer_server_that_this_client_does_not_know_are_ignored(make_client):
    async def newer_server(ws):
        await ws.send('{"type": "from_the_future", "chatId": "c1"}')
        await ws.send('{"type": "chunk", "chatId": 5}')  # malformed, not new: that one is an error
        async for message in ws:
            if '"ping"' in message:
                await ws.send(message.replace('"ping"', '"pong"'))

    async with serve(newer_server, "127.0.0.1", 0) as server:
        client, events = make_client(f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws", "token")
        await client.connect()
        await events.wait_for(lambda: events.errors)
    assert [str(error) for error in events.errors] == [
        "the server sent an invalid frame: 'chatId' must be a string, got int"
    ]


async def test_an_http_address_says_to_use_ws_and_is_not_retried(tmp_path, make_client):
    async with running_server(tmp_path) as server:
        url = server.url.replace("ws://", "http://")
        client, events = make_client(url, server.token())
        await client.connect()
        state = await events.wait_status(Status.DISCONNECTED)
    assert state.reason == f"invalid server address {url}: use ws:// instead of http://"
    assert state.problem is Problem.BAD_ADDRESS
    assert not any(s.status is Status.RECONNECTING for s in events.states)


async def test_wss_to_a_server_without_tls_says_to_try_ws_and_is_not_retried(tmp_path, make_client):
    async with running_server(tmp_path) as server:
        url = server.url.replace("ws://", "wss://")
        client, events = make_client(url, server.token())
        await client.connect()
        state = await events.wait_status(Status.DISCONNECTED)
    assert state.problem is Problem.TLS_MISMATCH
    assert state.reason is not None and state.reason.startswith(f"TLS handshake with {url} failed (")
    assert state.reason.endswith("): if the server has no TLS, use ws:// instead of wss://")
    assert "Error" not in state.reason  # words, not an exception's class name
    assert not any(s.status is Status.RECONNECTING for s in events.states)
