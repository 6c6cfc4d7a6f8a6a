"""Against a peer that misbehaves: the reconnect loop does not spin."""

import asyncio

from websockets.asyncio.server import serve

from mfu_tui.client import Backoff, Status


async def test_a_server_that_accepts_and_closes_at_once_does_not_cause_a_tight_loop(make_client):
    accepted = 0
    fifth = asyncio.Event()

    async def close_at_once(ws):
        nonlocal accepted
        accepted += 1
        if accepted == 5:
            fifth.set()
        await ws.close(1011, "boom")

    async with serve(close_at_once, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        backoff = Backoff(base=0.01, cap=0.08, healthy_after=10.0, random=lambda: 1.0)
        client, events = make_client(f"ws://127.0.0.1:{port}/ws", "token", backoff=backoff)
        await client.connect()
        await asyncio.wait_for(fifth.wait(), 30)
        # Four connections opened and closed: four growing delays, none reset by the handshakes.
        assert backoff.failures >= 4
        assert backoff.ceiling() == 0.08
        retrying = [state for state in events.states if state.status is Status.RECONNECTING and state.retry_at]
        assert retrying and all(state.last_error == "boom (1011)" for state in retrying)
