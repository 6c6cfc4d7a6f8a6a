"""The status dot while the server's storage is out of reach: yellow with the server's (cleaned) words, then green."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mfu_tui.protocol import Complete, ServerStatus, encode
from mfu_tui.server.storage_status import OUT_OF_REACH
from mfu_tui.server.wire import text_frame
from mfu_tui.tui.app import ChatApp
from tests.support.postgres import running_postgres
from tests.support.server import running_server
from tests.tui.helpers import TIMEOUT, FrameWaiter, StateWaiter, frame_of, make_app, ready

SIZE = (100, 32)


def storage_notices(app: ChatApp) -> int:
    """How many "Server storage unavailable" notices the app shows."""
    return sum(note.title == "Server storage unavailable" for note in app._notifications)


async def test_the_dot_turns_yellow_while_postgresql_is_out_of_reach_and_green_when_it_is_back(tmp_path: Path) -> None:
    with running_postgres() as postgres:
        # A short lease: its beat is what meets the outage, and its end, on a node nobody writes to.
        async with running_server(tmp_path, db_path=postgres.new_database(), lease=1.5) as server:
            app = make_app(server.url, server.token(), tmp_path)
            async with app.run_test(size=SIZE) as pilot:
                await ready(app, pilot)
                dot = app.status_dot
                assert str(dot.render()).startswith("● online") and dot.has_class("-ok")

                out = StateWaiter(app.client, lambda state: state.storage_unavailable is not None)
                postgres.stop()
                await out.wait()
                await pilot.pause()
                assert str(dot.render()) == "● server storage unavailable"
                assert dot.has_class("-warning") and not dot.has_class("-ok")
                assert str(dot.tooltip) == OUT_OF_REACH

                refused = asyncio.Event()
                app.client.on_error(lambda error: error.code == "unavailable" and refused.set())
                await pilot.press(*"sent meanwhile", "enter")
                await asyncio.wait_for(refused.wait(), TIMEOUT)
                await pilot.pause()
                assert storage_notices(app) == 1

                back = StateWaiter(app.client, lambda state: state.storage_unavailable is None)
                acked = FrameWaiter(app.client, frame_of(Complete))
                postgres.launch()
                await back.wait()
                await pilot.pause()
                assert str(dot.render()).startswith("● online") and dot.has_class("-ok")
                assert dot.tooltip is None
                assert storage_notices(app) == 0  # not true any more: withdrawn
                await acked.wait()  # and the message sent meanwhile is answered
                await app.client.close()


async def test_the_servers_words_are_shown_without_their_control_characters(tmp_path: Path) -> None:
    async with running_server(tmp_path) as server:
        app = make_app(server.url, server.token(), tmp_path, plain=True)
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)
            told = StateWaiter(app.client, lambda state: state.storage_unavailable is not None)
            hostile = ServerStatus(storage="unavailable", message="disk \x1b]2;pwned\x07full\x9b2J [b]bold[/b]")
            for connection in server.server.connections:  # the server's own send path, with words of our choosing
                connection.deliver_status(text_frame(encode(hostile)))
            await told.wait()
            await pilot.pause()
            assert str(app.status_dot.render()) == "[server storage unavailable]"
            assert str(app.status_dot.tooltip) == "disk full [b]bold[/b]"
            await app.client.close()
