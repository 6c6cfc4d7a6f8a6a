"""A long chat under Pilot against the real server: home, scrolling and end with a bounded number of widgets."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult
from textual.pilot import Pilot

from mfu_tui.protocol import Chunk, Complete, MessageEdited
from mfu_tui.tui.app import ChatApp
from mfu_tui.tui.screens.confirm import ConfirmScreen
from mfu_tui.tui.widgets.conversation import Spacer
from mfu_tui.tui.widgets.message_view import MessageView
from tests.support.server import running_server
from tests.tui.helpers import FrameWaiter, finished, frame_of, make_app, ready, settle, type_text
from tests.tui.long_chats import long_text, store_long_chat

SIZE = (100, 32)
MESSAGES = 3000
WINDOW = 12


@contextlib.asynccontextmanager
async def long_chat_app(
    tmp_path: Path, messages: int = MESSAGES, **server_options: Any
) -> AsyncIterator[tuple[ChatApp, Pilot[None], str]]:
    """The app under Pilot, on the real server, whose store holds a chat of ``messages`` messages: the app,
    its pilot and the chat's id (``open_long_chat`` opens it)."""
    chat_id = await store_long_chat(tmp_path / "server.sqlite3", messages)
    async with running_server(tmp_path, db_path=tmp_path / "server.sqlite3", **server_options) as server:
        app = make_app(server.url, server.token(), tmp_path, window=WINDOW)
        async with app.run_test(size=SIZE) as pilot:
            yield app, pilot, chat_id


def visible_texts(app) -> list[str]:
    """The texts of the messages whose widgets are at least partly on screen."""
    conversation = app.conversation
    screen = conversation.scrollable_content_region
    return [
        view.text
        for view in conversation.query_children(MessageView)
        if view.region.height and view.region.overlaps(screen)
    ]


async def test_home_shows_the_first_message_of_a_long_chat_with_few_widgets(tmp_path: Path) -> None:
    async with long_chat_app(tmp_path) as (app, pilot, chat_id):
        await ready(app, pilot)
        app.load_chat(chat_id)
        await settle(app, pilot)
        conversation = app.conversation
        assert conversation.views[-1].text == long_text(MESSAGES - 1)
        conversation.focus()
        await pilot.press("home")
        await settle(app, pilot)
        # The first messages are on screen, the first selected, and only a few windows have widgets.
        assert visible_texts(app)[0] == long_text(0)
        assert conversation.selected_view is conversation.views[0]
        assert conversation.views[0].text == long_text(0)
        await finished(app, "range")
        span = conversation.mounted_range
        assert span is not None and span.start == 0 and len(span) <= 3 * WINDOW
        assert len(conversation.views) <= 4 * WINDOW
        # The scrollbar stands for the whole chat: far more lines than the widgets mounted.
        assert conversation.virtual_size.height > MESSAGES * 3

        # Scrolling down a long way mounts what comes and unmounts what went: the widgets stay bounded.
        seen_most = 0
        for _ in range(20):  # about ten windows down
            await pilot.press("pagedown")
            await settle(app, pilot)
            await finished(app, "range")
            await settle(app, pilot)
            seen_most = max(seen_most, len(conversation.views))
        span = conversation.mounted_range
        assert span is not None and span.start > 0
        assert seen_most <= 4 * WINDOW
        shown = visible_texts(app)
        assert shown and all(text in {long_text(n) for n in span} for text in shown)
        # Texts on screen follow one another, as in the chat.
        indices = [n for n in span if long_text(n) in shown]
        assert indices == list(range(indices[0], indices[0] + len(indices)))

        # home again jumps back to the start; end to the newest, which kept its widgets.
        await pilot.press("home")
        await settle(app, pilot)
        assert visible_texts(app)[0] == long_text(0)
        await pilot.press("end")
        await settle(app, pilot)
        assert conversation.selected_view is conversation.views[-1]
        assert conversation.views[-1].text == long_text(MESSAGES - 1)
        assert long_text(MESSAGES - 1) in visible_texts(app)


async def test_a_message_far_back_is_revealed_with_one_request_and_few_widgets(tmp_path: Path) -> None:
    async with long_chat_app(tmp_path) as (app, pilot, chat_id):
        await ready(app, pilot)
        far = (await app.client.get_chat(chat_id, offset=1500, limit=1)).messages[0]
        app.open_at(chat_id, far.id)
        await settle(app, pilot)
        await finished(app, "reveal")
        await settle(app, pilot)
        conversation = app.conversation
        assert conversation.selected_view is not None and conversation.selected_view.text == long_text(1500)
        assert long_text(1500) in visible_texts(app)
        assert len(conversation.views) <= 4 * WINDOW


def selection_on_screen(app) -> bool:
    """The selected message has a widget and is at least partly on screen."""
    view = app.conversation.selected_view
    return view is not None and view.region.height > 0 and view.region.overlaps(app.conversation.region)


async def open_long_chat(app, pilot, chat_id: str) -> None:
    await ready(app, pilot)
    app.load_chat(chat_id)
    await settle(app, pilot)
    app.conversation.focus()


async def test_page_up_from_the_end_mounts_what_comes_and_unmounts_what_went(tmp_path: Path) -> None:
    async with long_chat_app(tmp_path) as (app, pilot, chat_id):
        await open_long_chat(app, pilot, chat_id)
        conversation = app.conversation
        # Opened at the end with one window mounted; the scrollbar stands for the whole chat.
        assert conversation.mounted_range == range(MESSAGES - WINDOW, MESSAGES)
        assert conversation.virtual_size.height > MESSAGES * 3
        assert visible_texts(app)[-1] == long_text(MESSAGES - 1)
        previous_first = MESSAGES
        positions: list[float] = []

        def moved(y: float) -> None:
            positions.append(y)

        app.watch(conversation, "scroll_y", moved, init=False)
        for _ in range(15):  # about seven windows up
            positions.clear()
            await pilot.press("pageup")
            await settle(app, pilot)
            # One step at once, as a pager's (and one more to keep the view in place as a window is
            # mounted above it), not the frames of an animation.
            assert 1 <= len(positions) <= 2
            span = conversation.mounted_range
            shown = visible_texts(app)
            assert len(conversation.views) <= 4 * WINDOW
            # What is on screen follows on, as in the chat, and moved up.
            indices = [n for n in span if long_text(n) in shown]
            assert indices == list(range(indices[0], indices[0] + len(indices)))
            assert indices[0] < previous_first
            previous_first = indices[0]
        assert conversation.mounted_range.stop < MESSAGES  # the newest went back into the spacer


async def test_page_keys_in_the_message_box_scroll_the_conversation_and_keep_what_is_written(
    tmp_path: Path,
) -> None:
    async with long_chat_app(tmp_path) as (app, pilot, chat_id):
        await open_long_chat(app, pilot, chat_id)
        conversation = app.conversation
        app.composer.focus()
        await type_text(pilot, "half a question")
        bottom = conversation.scroll_y
        for _ in range(3):
            await pilot.press("pageup")
            await settle(app, pilot)
        assert conversation.scroll_y < bottom - 2 * conversation.size.height
        assert long_text(MESSAGES - 1) not in visible_texts(app)  # the newest scrolled away
        await pilot.press("pagedown")
        await settle(app, pilot)
        # The box kept the focus, its cursor and what was written.
        assert app.focused is app.composer
        assert app.composer.text == "half a question"
        assert app.composer.cursor_location == (0, len("half a question"))
        await pilot.press("end")  # in the box: the end of its line, not of the chat
        assert conversation.scroll_y < bottom


async def test_up_and_down_select_across_the_whole_chat_and_the_view_follows(tmp_path: Path) -> None:
    async with long_chat_app(tmp_path) as (app, pilot, chat_id):
        await open_long_chat(app, pilot, chat_id)
        conversation = app.conversation
        steps = 4 * WINDOW  # past the window mounted at open and the margin
        for n in range(1, steps + 1):
            await pilot.press("up")
            await settle(app, pilot)
            assert conversation.selected == MESSAGES - n
            assert conversation.selected_view is not None
            assert conversation.selected_view.text == long_text(MESSAGES - n)
            assert selection_on_screen(app)
            assert len(conversation.views) <= 4 * WINDOW
        assert conversation.mounted_range.stop < MESSAGES
        # And down again, from the top of the chat.
        await pilot.press("home")
        await settle(app, pilot)
        for n in range(1, 2 * WINDOW):
            await pilot.press("down")
            await settle(app, pilot)
            assert conversation.selected_view is not None
            assert conversation.selected_view.text == long_text(n)
            assert selection_on_screen(app)
            assert len(conversation.views) <= 4 * WINDOW


async def test_the_scrollbar_dragged_to_the_middle_shows_the_messages_there(tmp_path: Path) -> None:
    async with long_chat_app(tmp_path) as (app, pilot, chat_id):
        await open_long_chat(app, pilot, chat_id)
        conversation = app.conversation
        conversation.scroll_to(y=conversation.virtual_size.height // 2, animate=False, immediate=True)
        await settle(app, pilot)
        span = conversation.mounted_range
        shown = visible_texts(app)
        assert 0 < span.start and span.stop < MESSAGES and len(conversation.views) <= 4 * WINDOW
        indices = [n for n in span if long_text(n) in shown]
        assert shown and indices == list(range(indices[0], indices[0] + len(indices)))
        assert len(indices) == len(shown)
        # The scrollbar's middle is the chat's middle, give or take what the estimates missed.
        assert MESSAGES // 4 < indices[0] < 3 * MESSAGES // 4


async def test_an_answer_streaming_while_the_view_is_far_up_is_whole_when_shown(tmp_path: Path) -> None:
    async with long_chat_app(tmp_path, 400, demo_words=60, demo_delay_ms=25) as (app, pilot, chat_id):
        await open_long_chat(app, pilot, chat_id)
        conversation = app.conversation
        started = FrameWaiter(app.client, lambda f: isinstance(f, Chunk) and f.seq >= 2)
        done = FrameWaiter(app.client, frame_of(Complete))
        app.composer.focus()
        await pilot.press(*"one more", "enter")
        await started.wait()
        conversation.focus()
        await pilot.press("home")
        await settle(app, pilot)
        assert visible_texts(app)[0] == long_text(0)
        await done.wait()
        await settle(app, pilot)
        # The answer has no widget: its chunks went to its entry.
        assert conversation.message_count == 402 and 401 not in conversation.mounted_range
        stored = (await app.client.get_chat(chat_id)).messages[-1]
        assert stored.status == "complete" and stored.content
        await pilot.press("end")
        await settle(app, pilot)
        answer = conversation.views[-1]
        assert answer.message_id == stored.id and answer.text == stored.content
        assert answer.status == "complete" and stored.content.split()[-1] in visible_texts(app)[-1]


async def test_an_edit_far_back_changes_it_where_it_is(tmp_path: Path) -> None:
    async with long_chat_app(tmp_path, demo_words=5, demo_delay_ms=0) as (app, pilot, chat_id):
        await open_long_chat(app, pilot, chat_id)
        conversation = app.conversation
        await pilot.press("home")
        await settle(app, pilot)
        first_page = (await app.client.get_chat(chat_id, offset=0, limit=10)).messages
        # Edited elsewhere (no regenerate): changed in place, the view stays at the top.
        edited = FrameWaiter(app.client, frame_of(MessageEdited))
        await app.client.edit_message(chat_id, first_page[2].id, "question two, edited")
        await edited.wait()
        await settle(app, pilot)
        assert conversation.views[2].text == "question two, edited"
        assert visible_texts(app)[0] == long_text(0) and conversation.message_count == MESSAGES
        # Answered again from message 4: what followed it goes, and the new answer comes after it.
        done = FrameWaiter(app.client, frame_of(Complete))
        conversation.selected = 4
        await pilot.press("e")
        await settle(app, pilot)
        app.composer.text = "question four, again"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)  # what followed it would go: asked first
        await pilot.press("y")
        await done.wait()
        await settle(app, pilot)
        assert conversation.message_count == 6
        assert [view.text for view in conversation.views][:5] == [
            long_text(0),
            long_text(1),
            "question two, edited",
            long_text(3),
            "question four, again",
        ]
        answer = conversation.views[5]
        stored = (await app.client.get_chat(chat_id)).messages
        assert len(stored) == 6 and answer.text == stored[5].content and answer.status == "complete"
        assert visible_texts(app)[0] == long_text(0)


async def test_a_spacer_on_screen_shows_blank_lines_not_its_name():
    """What scrolls into view before its messages are mounted (the scrollbar dragged) is blank."""

    class OneSpacer(App[None]):
        def compose(self) -> ComposeResult:
            yield Spacer(id="above")

    app = OneSpacer()
    async with app.run_test(size=(40, 6)) as pilot:
        spacer = app.query_one(Spacer)
        spacer.resize(4)
        await pilot.pause()
        shown = app.export_screenshot(title="screen")
        height = spacer.size.height
    assert height == 4
    assert "Spacer" not in shown and "above" not in shown


async def test_the_empty_chat_hint_goes_when_a_chat_with_messages_opens_and_comes_back_with_an_empty_one(
    tmp_path: Path,
) -> None:
    chat_id = await store_long_chat(tmp_path / "server.sqlite3", 4)
    async with running_server(tmp_path, db_path=tmp_path / "server.sqlite3") as server:
        app = make_app(server.url, server.token(), tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)
            hinted_at_start = bool(app.conversation.query("#empty-hint"))
            app.load_chat(chat_id)
            await settle(app, pilot)
            hinted_with_messages = bool(app.conversation.query("#empty-hint"))
            await app.conversation.clear()
            hinted_when_empty_again = bool(app.conversation.query("#empty-hint"))
    assert hinted_at_start and hinted_when_empty_again
    assert not hinted_with_messages
