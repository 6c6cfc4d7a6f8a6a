"""The Node stand-in for the seed's browser client reaches the real server: a smoke test of the harness itself."""

from __future__ import annotations

from tests.support.seed_client import seed_client
from tests.support.server import running_server


async def test_the_seed_client_connects_with_a_query_token_pings_and_cancels(tmp_path):
    async with running_server(tmp_path) as srv:
        # A short heartbeat, so the seed's own ping goes out within the test.
        async with seed_client(srv.url, srv.token("alice"), heartbeat_ms=50) as seed:
            await seed.connect()
            opened = await seed.next_event(lambda event: event["event"] in ("open", "close", "error"))
            assert opened["event"] == "open", opened

            ping = await seed.next_event(lambda event: event["event"] == "sent")
            assert ping == {"event": "sent", "ok": True, "frame": {"type": "ping"}}
            assert (await seed.next_frame("pong"))["type"] == "pong"

            await seed.cancel("no-such-chat")
            sent = await seed.next_event(lambda event: event["event"] == "sent" and event["frame"]["type"] != "ping")
            assert sent["frame"] == {"type": "cancel", "chatId": "no-such-chat"}
            error = await seed.next_frame("error")
            assert error["code"] == "not_found" and error["chatId"] == "no-such-chat", error

            await seed.close()
            closed = await seed.next_event(lambda event: event["event"] == "close")
            assert closed["code"] == 1000
    assert not [event for event in seed.events if event["event"] == "reconnecting"]
