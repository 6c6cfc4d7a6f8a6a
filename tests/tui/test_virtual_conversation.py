"""A long chat under Pilot against the real server: home, scrolling and end with a bounded number of widgets."""

from __future__ import annotations

from pathlib import Path

from mfu_tui.tui.widgets.message_view import MessageView
from tests.support.server import running_server
from tests.tui.helpers import finished, make_app, ready, settle
from tests.tui.long_chats import long_text, store_long_chat

SIZE = (100, 32)
MESSAGES = 3000
WINDOW = 12


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
    chat_id = await store_long_chat(tmp_path / "server.sqlite3", MESSAGES)
    async with running_server(tmp_path, db_path=tmp_path / "server.sqlite3") as server:
        app = make_app(server.url, server.token(), tmp_path, window=WINDOW)
        async with app.run_test(size=SIZE) as pilot:
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
            for _ in range(40):
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
    chat_id = await store_long_chat(tmp_path / "server.sqlite3", MESSAGES)
    async with running_server(tmp_path, db_path=tmp_path / "server.sqlite3") as server:
        app = make_app(server.url, server.token(), tmp_path, window=WINDOW)
        async with app.run_test(size=SIZE) as pilot:
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
