"""Reading offline: the chats opened before are there to read and search with the server gone."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mfu_tui.client import ClientSettings, Problem, Status
from mfu_tui.protocol import ChatUpdated
from mfu_tui.server.providers.demo import demo_answer
from mfu_tui.tui.screens.search import SearchScreen
from mfu_tui.tui.screens.sign_in import SignInScreen
from mfu_tui.tui.widgets.header import KEPT_MARK
from tests.server.test_admin import mfu_chat
from tests.support.server import running_server
from tests.tui.conftest import WORDS
from tests.tui.helpers import FrameWaiter, StateWaiter, make_app, ready, settle
from tests.tui.test_flows import ask

SIZE = (100, 32)


async def test_a_chat_read_before_opens_and_is_searched_with_the_server_gone(tmp_path: Path) -> None:
    async with running_server(tmp_path, demo_words=WORDS, demo_delay_ms=0) as server:
        url, token = server.url, server.token()
        app = make_app(url, token, tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)
            chat_id = (await ask(app, pilot, "tell me about okapis")).chat_id
            await app.client.get_chat(chat_id)  # what opening it reads: kept
            await app.client.list_chats()
    # The server is gone; the same user starts the app again.
    # A request would wait for a connection for an hour: the kept copy is shown without one.
    patient = ClientSettings(data_dir=tmp_path / "data-alice", request_timeout=3600)
    offline = make_app(url, token, tmp_path, client=patient)
    reconnecting = StateWaiter(offline.client, lambda state: state.status is Status.RECONNECTING)
    async with offline.run_test(size=SIZE) as pilot:
        await reconnecting.wait()
        await settle(offline, pilot)
        assert [chat.id for chat in offline.chat_list.chats] == [chat_id]
        offline.load_chat(chat_id)
        await settle(offline, pilot)
        assert [(view.role, view.text) for view in offline.conversation.views] == [
            ("user", "tell me about okapis"),
            ("assistant", demo_answer("tell me about okapis", WORDS)),
        ]
        assert offline.query_one("#chat-title").render().plain.endswith(KEPT_MARK)
        await pilot.press("ctrl+f")
        screen = offline.screen
        assert isinstance(screen, SearchScreen)
        await pilot.press(*"okapi")
        await screen.settled()
        # The question, and the demo answer that quotes it: newest first.
        assert [(hit.chat_id, hit.role) for hit in screen.hits] == [(chat_id, "assistant"), (chat_id, "user")]


async def test_the_kept_chat_list_has_the_chats_made_and_renamed_since_it_was_loaded(tmp_path: Path) -> None:
    async with running_server(tmp_path, demo_words=WORDS, demo_delay_ms=0) as server:
        url, token = server.url, server.token()
        app = make_app(url, token, tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)  # the list is loaded now, empty: what follows comes as chat_updated frames
            chat_id = (await ask(app, pilot, "tell me about okapis")).chat_id
            renamed = FrameWaiter(app.client, lambda f: isinstance(f, ChatUpdated) and f.chat.title == "Okapi notes")
            await app.client.rename_chat(chat_id, "Okapi notes")
            await renamed.wait()
            await settle(app, pilot)
    patient = ClientSettings(data_dir=tmp_path / "data-alice", request_timeout=3600)
    offline = make_app(url, token, tmp_path, client=patient)
    reconnecting = StateWaiter(offline.client, lambda state: state.status is Status.RECONNECTING)
    async with offline.run_test(size=SIZE) as pilot:
        await reconnecting.wait()
        await settle(offline, pilot)
        assert [(chat.id, chat.title) for chat in offline.chat_list.chats] == [(chat_id, "Okapi notes")]


async def test_an_account_deleted_by_the_operator_leaves_no_copy_and_asks_for_no_token(tmp_path: Path) -> None:
    async with running_server(tmp_path, lease=0.6, demo_words=WORDS, demo_delay_ms=0) as server:
        app = make_app(server.url, server.token(), tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)
            chat_id = (await ask(app, pilot, "my private question")).chat_id
            await app.client.get_chat(chat_id)  # kept for reading offline
            assert await app.client.cached_chats()
            deleted = StateWaiter(app.client, lambda state: state.problem is Problem.ACCOUNT_DELETED)
            operator = await asyncio.to_thread(
                mfu_chat, "admin", "delete-user", "alice", "--yes", "--db", str(server.db_path)
            )
            assert operator.returncode == 0, operator.stderr
            await deleted.wait()
            await settle(app, pilot)
            # Not a sign-in (the token is good): what happened, and nothing of the chats left to read here.
            assert not isinstance(app.screen, SignInScreen)
            [note] = [n for n in app._notifications if n.title == "Account deleted"]
            assert "deleted this account's data" in note.message and "press f9 to start afresh" in note.message
            assert str(app.status_dot.render()) == "● offline: account deleted"
            assert app.chat_list.chats == [] and app.conversation.views == [] and app.chat_id is None
            assert await app.client.cached_chats() == [] and await app.client.cached_chat(chat_id) is None
            await app.client.close()


async def test_a_waiting_message_read_back_from_the_outbox_is_shown_without_control_characters(
    tmp_path: Path,
) -> None:
    async with running_server(tmp_path, demo_words=WORDS, demo_delay_ms=0) as server:
        url, token = server.url, server.token()
        app = make_app(url, token, tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)
            chat_id = (await ask(app, pilot, "a chat")).chat_id
            await app.client.get_chat(chat_id)  # kept for reading offline
    # The server is gone; a message waits in the outbox, its text as a file holds it (an escape sequence).
    patient = ClientSettings(data_dir=tmp_path / "data-alice", request_timeout=3600)
    offline = make_app(url, token, tmp_path, client=patient)
    async with offline.run_test(size=SIZE) as pilot:
        await offline.client.send_message(chat_id, "\x1b]0;pwned\x07\x1b[2Jstill here?")
        offline.load_chat(chat_id)
        await settle(offline, pilot)
        assert [(view.text, view.status) for view in offline.conversation.views][-1] == (
            "still here?",
            "sending",
        )


async def test_the_kept_copy_mark_stays_whole_at_80_columns_and_the_long_title_is_cut_before_it(tmp_path: Path) -> None:
    title = "Okapis, giraffes and every other relative of theirs in the forests of central Africa"
    async with running_server(tmp_path, demo_words=WORDS, demo_delay_ms=0) as server:
        url, token = server.url, server.token()
        app = make_app(url, token, tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)
            chat_id = (await ask(app, pilot, "tell me about okapis")).chat_id
            renamed = FrameWaiter(app.client, lambda f: isinstance(f, ChatUpdated) and f.chat.title == title)
            await app.client.rename_chat(chat_id, title)
            await renamed.wait()
            await app.client.get_chat(chat_id)  # what opening it reads: kept
    patient = ClientSettings(data_dir=tmp_path / "data-alice", request_timeout=3600)
    offline = make_app(url, token, tmp_path, client=patient)
    reconnecting = StateWaiter(offline.client, lambda state: state.status is Status.RECONNECTING)
    async with offline.run_test(size=(80, 24)) as pilot:
        await reconnecting.wait()
        await settle(offline, pilot)
        offline.load_chat(chat_id)
        await settle(offline, pilot)
        header = offline.screen._compositor.render_strips()[0].text
        assert f" {KEPT_MARK} " in header, header  # whole: the title, wider than the room, went first
        await pilot.resize_terminal(100, 24)
        await settle(offline, pilot)
        header = offline.screen._compositor.render_strips()[0].text
        assert f" {title[:5]}" in header and f"… · {KEPT_MARK} " in header, header  # cut before the mark
