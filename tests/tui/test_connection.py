"""The status dot follows the real client; long chats open a window at a time; multi-line messages."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import Static

from mfu_tui.client import ChatClient, Problem, Status
from mfu_tui.client.backoff import Backoff
from mfu_tui.protocol import Chunk, Complete
from mfu_tui.server.auth import mint_token
from mfu_tui.tui import AppChoices, ChatApp
from tests.support.programs import free_port
from tests.support.proxy import FaultProxy
from tests.support.server import RunningServer, ServerProcess, running_server
from tests.tui.helpers import (
    TIMEOUT,
    FrameWaiter,
    StateWaiter,
    frame_of,
    make_app,
    nth_frame_of,
    ready,
    settle,
    until,
)

SIZE = (100, 32)


@pytest.mark.parametrize(
    ("plain", "online", "retrying"),
    [
        (False, "● online", ("● retry in ", "● connecting")),
        (True, "[online", ("[reconnecting", "[connecting")),
    ],
    ids=["symbols", "plain"],
)
async def test_status_dot_follows_the_connection(
    tmp_path: Path, plain: bool, online: str, retrying: tuple[str, ...]
) -> None:
    async with running_server(tmp_path) as server:
        app = make_app(server.url, server.token(), tmp_path, plain=plain)
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)
            dot = app.status_dot
            assert str(dot.render()).startswith(online)
            assert dot.has_class("-ok")
            away = StateWaiter(app.client, lambda state: state.status is Status.RECONNECTING)
            await server.server.stop()
            await away.wait()
            await pilot.pause()
            assert str(dot.render()).startswith(retrying)
            assert dot.has_class("-warning")
            await app.client.close()


async def test_a_wrong_port_says_why_it_retries_and_the_header_names_the_port(tmp_path: Path) -> None:
    port = free_port()
    url, token = f"ws://127.0.0.1:{port}/ws", mint_token("s" * 64, "alice")
    # A wait of a minute: under load, a wait of a second could end, and the next attempt be said, before
    # the dot is read.
    backoff = Backoff(base=60.0, cap=60.0, random=lambda: 0.99)
    client = ChatClient(url, token, data_dir=tmp_path / "data", backoff=backoff)
    app = ChatApp(make_app(url, token, tmp_path).settings, client=client)
    async with app.run_test(size=SIZE) as pilot:
        await StateWaiter(client, lambda state: state.retry_at is not None).wait()
        await pilot.pause()
        assert str(app.status_dot.render()).startswith("● retry in ")
        assert str(app.status_dot.render()).endswith(" s: connection refused")
        assert str(app.query_one("#identity", Static).render()) == f"alice@127.0.0.1:{port}"
        await app.client.close()


async def test_a_new_attempt_is_said_before_its_wait_which_may_be_longer(tmp_path: Path) -> None:
    """``retry in 1 s`` then ``retry in 2 s`` read as a count going up: the attempt between was never drawn."""
    async with running_server(tmp_path) as server:
        # The largest delay each time: 0.99 s, then 1.98 s.
        backoff = Backoff(base=1.0, cap=8.0, random=lambda: 0.99)
        client = ChatClient(server.url, server.token(), data_dir=tmp_path / "data", backoff=backoff)
        app = ChatApp(make_app(server.url, server.token(), tmp_path).settings, client=client)
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)
            dot = app.status_dot
            # Called after the app's own listener: the dot as each state left it.
            shown: list[tuple[float | None, str]] = []
            client.on_state(lambda state: shown.append((state.retry_at, str(dot.render()))))
            second_wait = StateWaiter(client, lambda state: backoff.failures == 2 and state.retry_at is not None)
            await server.server.stop()
            await second_wait.wait()
            # The server's restart close (4012) is an attempt at once, as each retry: each said,
            # and still said as the wait after it is planned, however soon it failed.
            assert [words for retry_at, words in shown] == ["● connecting again"] * 4
            assert [retry_at is None for retry_at, words in shown] == [True, False, True, False]
            # Then the wait is counted, with why the attempt failed.
            async with asyncio.timeout(TIMEOUT):
                while not str(dot.render()).startswith("● retry in "):
                    await pilot.pause()
            assert str(dot.render()).endswith(" s: connection refused")
            await client.close()


async def test_a_wrong_path_stops_red_with_the_url_and_f9_tries_again(server: RunningServer, tmp_path: Path) -> None:
    url = server.url.replace("/ws", "/wss")
    app = make_app(url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        stopped = await StateWaiter(app.client, lambda state: state.status is Status.DISCONNECTED).wait()
        assert stopped.problem is Problem.NO_WEBSOCKET
        await pilot.pause()
        assert str(app.status_dot.render()) == "● offline: no chat server there"
        assert app.status_dot.has_class("-error")
        [note] = [n for n in app._notifications if n.title == "Wrong server address"]
        assert note.message.startswith(f"no WebSocket endpoint at {url} (HTTP 404): check the path, usually /ws. ")
        assert "press f9 to try the same address again" in note.message
        tried = StateWaiter(app.client, lambda state: state.status is Status.CONNECTING)
        await pilot.press("f9")
        await tried.wait()
        again = await StateWaiter(app.client, lambda state: state.status is Status.DISCONNECTED).wait()
        assert again.problem is Problem.NO_WEBSOCKET
        await app.client.close()


async def test_ctrl_j_writes_a_multi_line_message(server: RunningServer, tmp_path: Path) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        done = FrameWaiter(app.client, frame_of(Complete))
        await pilot.press(*"first line", "ctrl+j", *"second line", "enter")
        await done.wait()
        await settle(app, pilot)
        user = app.conversation.views[0]
        assert user.text == "first line\nsecond line"
        assert (await app.client.get_chat(app.chat_id)).messages[0].content == "first line\nsecond line"


async def test_the_new_line_key_can_be_remapped(server: RunningServer, tmp_path: Path) -> None:
    """The message box runs send and new line itself (to keep the keys' order); the keymap still counts."""
    app = make_app(server.url, server.token(), tmp_path, choices=AppChoices(keymap={"composer.newline": "ctrl+e"}))
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.press(*"one", "ctrl+e", *"two", "ctrl+j", *"three")
        assert app.composer.text == "one\ntwothree"


async def test_a_long_chat_opens_with_a_window_and_the_top_mounts_the_first(tmp_path: Path) -> None:
    async with running_server(
        tmp_path, demo_words=3, demo_delay_ms=0, messages_per_minute=60_000, message_burst=100
    ) as server:
        writer = ChatClient(server.url, server.token(), data_dir=tmp_path / "writer")
        await writer.connect()
        try:
            first = FrameWaiter(writer, frame_of(Complete))
            await writer.send_message(None, "message 0")
            chat_id = (await first.wait()).chat_id
            for n in range(1, 60):
                answered = FrameWaiter(writer, frame_of(Complete))
                await writer.send_message(chat_id, f"message {n}")
                await answered.wait()
        finally:
            await writer.close()

        app = make_app(server.url, server.token(), tmp_path, window=40)
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)
            app.load_chat(chat_id)
            await settle(app, pilot)
            conversation = app.conversation
            assert len(conversation.views) == 40 and conversation.message_count == 120
            assert conversation.mounted_range == range(80, 120)
            assert conversation.views[-2].text == "message 59"
            # The scrollbar stands for all of them: the top is the first message, mounted once reached.
            conversation.scroll_home(animate=False, immediate=True)
            await settle(app, pilot)
            assert conversation.mounted_range.start == 0 and conversation.views[0].text == "message 0"
            assert len(conversation.views) <= 3 * 40
            # home selects it; end goes back to the newest, selected.
            conversation.focus()
            await pilot.press("home")
            await settle(app, pilot)
            assert conversation.selected_view is conversation.views[0]
            await pilot.press("end")
            await settle(app, pilot)
            assert conversation.mounted_range.stop == 120
            assert conversation.selected_view is conversation.views[-1]


async def test_a_refused_message_stays_in_the_box(server: RunningServer, tmp_path: Path) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        too_long = "word " * 20_000  # over the protocol's 64 KiB frame limit
        app.composer.text = too_long  # as a paste would
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.composer.text == too_long
        assert app.conversation.views == [] and app.chat_id is None
        notes = [n for n in app._notifications if n.title == "Message too long"]
        assert len(notes) == 1 and "Shorten it" in notes[0].message


async def test_the_view_follows_the_stream_until_the_user_scrolls_up(
    slow_server: RunningServer, tmp_path: Path
) -> None:
    app = make_app(slow_server.url, slow_server.token(), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(app, pilot)
        conversation = app.conversation
        long_enough = FrameWaiter(app.client, lambda f: isinstance(f, Chunk) and f.seq >= 50)
        await pilot.press(*"a long one", "enter")
        await long_enough.wait()
        await settle(app, pilot)
        assert conversation.max_scroll_y > 0
        assert conversation.scroll_y == conversation.max_scroll_y  # following the bottom
        conversation.focus()
        await pilot.press("pageup")
        await pilot.pause()
        held = conversation.scroll_y
        assert held < conversation.max_scroll_y
        more = FrameWaiter(app.client, lambda f: isinstance(f, Chunk) and f.seq >= 80)
        await more.wait()
        await settle(app, pilot)
        assert conversation.scroll_y == held < conversation.max_scroll_y  # left where the user put it
        await pilot.press("end")
        await pilot.pause()
        again = FrameWaiter(app.client, lambda f: isinstance(f, Chunk) and f.seq >= 110)
        await again.wait()
        await settle(app, pilot)
        assert conversation.scroll_y == conversation.max_scroll_y  # following again
        await app.client.cancel(app.chat_id)


async def test_connection_notices_go_away_when_the_connection_is_back(tmp_path: Path) -> None:
    """A red 'Server unreachable' stayed up to 30 s after the dot turned green; other notices stay."""
    server = ServerProcess(tmp_path)
    server.port = free_port()  # nothing listens there yet
    client = ChatClient(
        server.url,
        server.token(),
        data_dir=tmp_path / "data",
        offline_after=0.5,
        backoff=Backoff(base=0.05, cap=0.5, random=lambda: 1.0),
    )
    app = ChatApp(make_app(server.url, server.token(), tmp_path).settings, client=client)
    async with app.run_test(size=SIZE) as pilot:
        await StateWaiter(client, lambda state: state.status is Status.DISCONNECTED).wait()
        await pilot.pause()
        app.notify("Not about the connection", title="Other")
        await pilot.pause()
        assert {"Server unreachable", "Other"} <= {note.title for note in app._notifications}
        await pilot.press("f9")  # "Connecting to ...": true for a moment only
        assert "Reconnect" in {note.title for note in app._notifications}
        server.start()
        try:
            await StateWaiter(client, lambda state: state.status is Status.CONNECTED).wait()
            await pilot.pause()
            assert [note.title for note in app._notifications] == ["Other"]
        finally:
            await client.close()
            server.kill()


async def test_messages_queued_in_an_earlier_run_show_in_their_chat_each_before_its_answer(tmp_path: Path) -> None:
    # Answers slow enough that the chat opens while the first waiting message is answered.
    async with running_server(tmp_path, demo_words=30, demo_delay_ms=20) as server, FaultProxy(server.port) as proxy:
        app = make_app(proxy.url(), server.token(), tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)
            answered = FrameWaiter(app.client, frame_of(Complete))
            await pilot.press(*"first", "enter")
            await answered.wait()
            proxy.reset()  # the server out of reach: the next two wait in the outbox, and the app quits
            await StateWaiter(app.client, lambda state: state.status is not Status.CONNECTED).wait()
            await pilot.press(*"offline one", "enter", *"offline two", "enter")
            await settle(app, pilot)
            assert len(app.client.outbox) == 2
        app = make_app(proxy.url(), server.token(), tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            both = FrameWaiter(app.client, nth_frame_of(Complete, 2))
            proxy.pass_through()
            await StateWaiter(app.client, lambda state: state.status is Status.CONNECTED).wait()
            await until(pilot, lambda: bool(app.chat_list.chats))
            app.chat_list.focus()
            await pilot.press("enter")  # opened while the first is answered, the second still waiting
            await both.wait()
            await settle(app, pilot)
            shown = [
                (view.role, view.text.split("\n\n")[0 if view.role == "user" else 1]) for view in app.conversation.views
            ]
            assert shown == [
                ("user", "first"),
                ("assistant", "> first"),
                ("user", "offline one"),
                ("assistant", "> offline one"),
                ("user", "offline two"),  # before: below its answer, once the server sent it back
                ("assistant", "> offline two"),
            ]
            await app.client.close()
