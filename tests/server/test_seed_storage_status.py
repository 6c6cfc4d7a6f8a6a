"""The seed's browser page keeps working through ``server_status`` frames, a type it does not know."""

from __future__ import annotations

from tests.server.test_seed_client import stream_until_end
from tests.support.postgres import running_postgres
from tests.support.seed_client import seed_client
from tests.support.server import running_server


async def test_the_seeds_page_takes_server_status_frames_in_its_stride_and_chats_on(tmp_path):
    with running_postgres() as postgres:
        # A short lease: its beat is what meets the outage, and its end, while the page sends nothing.
        async with running_server(tmp_path, db_path=postgres.new_database(), demo_words=5, lease=1.5) as srv:
            async with seed_client(srv.url, srv.token("alice")) as seed:
                await seed.connect()
                assert (await seed.next_event(lambda event: event["event"] in ("open", "close")))["event"] == "open"
                await seed.send_message("", content="before the outage", model_id="demo")
                _, before, _ = await stream_until_end(seed)

                postgres.stop()
                out = await seed.next_frame("server_status")
                postgres.launch()
                back = await seed.next_frame("server_status")

                # The page goes on: the same socket, the same list, and a new chat streams.
                await seed.send_message("", content="after the outage", model_id="demo")
                _, after, end = await stream_until_end(seed)
                history = await seed.history()
                troubles = [event for event in seed.events if event["event"] in ("error", "close", "reconnecting")]
    assert (out["storage"], back["storage"]) == ("unavailable", "ok")
    assert end["type"] == "complete" and end["finishReason"] == "stop" and after
    assert troubles == []
    assert [(m["role"], m["content"]) for m in history] == [
        ("user", "before the outage"),
        ("assistant", before),
        ("user", "after the outage"),
        ("assistant", after),
    ]
