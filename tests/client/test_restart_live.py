"""A server that stops with 4012 (restarting) is connected to again at once, not after the backoff's wait."""

from __future__ import annotations

import asyncio

from mfu_tui.client import Backoff, ChatClient, ConnectionState, Status
from tests.support.proxy import FaultProxy
from tests.support.server import running_server
from tests.tui.helpers import StateWaiter


def moved(states: list[ConnectionState]) -> bool:
    """True once the client has left its first connection."""
    return any(state.status is Status.RECONNECTING for state in states)


async def test_a_restarting_node_s_clients_connect_to_the_next_one_at_once(tmp_path):
    async with running_server(tmp_path / "a") as first, running_server(tmp_path / "b", secret=first.secret) as second:
        async with FaultProxy(first.port) as balancer:  # as nginx: the next connection goes to a live node
            # A backoff of a fixed minute: any wait for it would show as a retry time in the states.
            client = ChatClient(
                balancer.url(),
                first.token(),
                data_dir=tmp_path / "data",
                backoff=Backoff(base=60.0, cap=60.0, random=lambda: 1.0),
            )
            states: list[ConnectionState] = []
            client.on_state(states.append)
            await client.connect()
            try:
                await StateWaiter(client, lambda state: state.status is Status.CONNECTED).wait()
                balancer.target_port = second.port
                async with asyncio.timeout(20):
                    await first.server.stop()  # SIGTERM's stop: the clients get 4012
                await StateWaiter(client, lambda state: state.status is Status.CONNECTED and moved(states)).wait()
            finally:
                await client.close()
    after_close = states[states.index(next(s for s in states if s.status is Status.RECONNECTING)) :]
    reconnected = next(i for i, state in enumerate(after_close) if state.status is Status.CONNECTED)
    assert (after_close[0].last_error or "").endswith("(4012)")
    assert all(state.retry_at is None for state in after_close[:reconnected])  # never waited for the backoff
    assert balancer.accepted == 2
