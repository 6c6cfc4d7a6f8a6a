"""A message too long for one frame, under Pilot against the real server: shown whole, to its last line."""

from __future__ import annotations

from pathlib import Path

from mfu_tui.client import MessageTextLoaded
from mfu_tui.protocol import SENT_MESSAGE_CHARS
from mfu_tui.tui import ChatApp
from tests.support.long_messages import store_answer_body
from tests.support.server import running_server
from tests.tui.helpers import FrameWaiter, frame_of, make_app, ready, settle

SIZE = (100, 32)


def on_screen(app: ChatApp, words: str) -> bool:
    """Whether the terminal shows ``words`` now."""
    return words.replace(" ", "&#160;") in app.export_screenshot()


async def test_a_message_too_long_for_one_frame_is_shown_whole_copied_and_ends_on_its_last_line(
    tmp_path: Path,
) -> None:
    # Blank up to the cut, so drawing it costs little; the lines after it make it taller than the screen.
    text = (
        "the first line\n"
        + " " * SENT_MESSAGE_CHARS
        + "\nthe line after the cut"
        + "".join(f"\n\nline {n} of the end" for n in range(40))
        + "\n\nthe last line"
    )
    chat_id, answer_id = await store_answer_body(tmp_path / "server.sqlite3", text)
    async with running_server(tmp_path) as server:
        app = make_app(server.url, server.token(), tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)
            loaded = FrameWaiter(app.client, frame_of(MessageTextLoaded, message_id=answer_id))
            app.load_chat(chat_id)
            await loaded.wait()
            await settle(app, pilot)
            conversation = app.conversation
            view = conversation.views[-1]
            assert view.message_id == answer_id and view.text == text
            # No longer marked shown in part; its record (the details) is whole too.
            assert view.status == "complete" and view.record is not None and not view.record.truncated
            conversation.focus()
            await pilot.press("home")
            await settle(app, pilot)
            assert on_screen(app, "the first line") and not on_screen(app, "the last line")
            await pilot.press("end")
            await settle(app, pilot)
            assert on_screen(app, "the last line") and on_screen(app, "line 39 of the end")
            assert conversation.selected_view is view
            await pilot.press("ctrl+c")
            assert app.clipboard == text
