"""A server that stays unreachable turns the dot red, with the reason; it turns
green again by itself when the server comes back."""

import socket

from mfu_tui.client import Status
from tests.support.server import ServerProcess


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_a_long_outage_is_offline_with_the_reason_and_recovers_on_its_own(tmp_path, make_client):
    server = ServerProcess(tmp_path)
    server.port = free_port()  # nothing listens there yet
    client, recorder = make_client(server.url, server.token(), offline_after=0.5)
    await client.connect()
    reconnecting = await recorder.wait_status(Status.RECONNECTING)
    assert reconnecting.last_error == "connection refused" and reconnecting.reason is None
    offline = await recorder.wait_status(Status.DISCONNECTED)
    assert offline.reason == f"server unreachable at {server.url}: connection refused"  # what was tried
    # Still trying: the next attempt is planned.
    await recorder.wait_for(lambda: client.state.retry_at is not None)
    server.start()
    try:
        online = await recorder.wait_status(Status.CONNECTED)
        assert online.reason is None and online.last_error is None
    finally:
        server.kill()
    # Yellow again at the next outage: the clock restarted with the connection.
    await recorder.wait_status(Status.RECONNECTING)
