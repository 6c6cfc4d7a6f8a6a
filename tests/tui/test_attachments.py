"""Attaching files in the app, driven with Pilot against the real server."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import Input, Static

from mfu_tui.protocol import AttachmentInfo, Complete
from mfu_tui.tui.screens.attach import AttachScreen
from mfu_tui.tui.widgets.attachment_chips import AttachmentChips, Chip
from tests.support.server import RunningServer, running_server
from tests.tui.helpers import TIMEOUT, FrameWaiter, finished, frame_of, make_app, ready, settle, type_text
from tests.tui.test_flows import SIZE, texts


async def send_and_wait(app, pilot, text: str) -> Complete:
    done = FrameWaiter(app.client, frame_of(Complete))
    app.composer.focus()
    await type_text(pilot, text)
    await pilot.press("enter")
    frame = await done.wait()
    await settle(app, pilot)
    return frame


def chips(widget) -> list[str]:
    return [str(chip.render()) for chip in widget.query(Chip)]


async def test_a_file_chosen_with_completion_goes_with_the_message_and_shows_as_a_chip(
    server: RunningServer, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("the plan: ship it\n")
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.press("alt+a")
        assert isinstance(app.screen, AttachScreen)
        await type_text(pilot, f"{tmp_path}/no")
        box = app.screen.query_one(Input)
        await pilot.pause()
        assert box._suggestion == f"{tmp_path}/notes.txt"  # completed from the directory
        await pilot.press("right", "enter")  # take the completion, attach
        await pilot.pause()
        assert not isinstance(app.screen, AttachScreen)
        assert chips(app.pending_files) == ["notes.txt · 18 bytes"]
        complete = await send_and_wait(app, pilot, "what is the plan?")
        user, answer = app.conversation.views
        assert chips(user) == ["notes.txt · 18 bytes"]
        assert "Attached: notes.txt (text/plain, 18 bytes)" in answer.text
        assert chips(app.pending_files) == [] and not app.pending_files.display
        stored = await app.client.get_chat(complete.chat_id)
        assert stored.messages[0].attachments == [AttachmentInfo(name="notes.txt", media_type="text/plain", size=18)]
        # The chat opened again shows the chip from the server.
        app.load_chat(complete.chat_id)
        await settle(app, pilot)
        assert chips(app.conversation.views[0].query_one(AttachmentChips)) == ["notes.txt · 18 bytes"]


async def test_a_file_that_cannot_go_is_said_why_in_the_prompt_and_nothing_is_attached(
    server: RunningServer, tmp_path: Path
) -> None:
    binary = tmp_path / "tool.bin"
    binary.write_bytes(b"\x7fELF\x00\x01")
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await type_text(pilot, "draft")
        await pilot.press("alt+a")
        await type_text(pilot, str(binary))
        await pilot.press("enter")
        await pilot.pause()
        problem = app.screen.query_one(".problem", Static)
        assert str(problem.render()) == (
            "tool.bin is a binary file: attach text (UTF-8) or an image (png, jpeg, gif, webp)"
        )
        assert app.screen.query_one(Input).value == str(binary)  # what was typed is kept
        await pilot.press("ctrl+u", *str(tmp_path / "missing.txt"), "enter")
        await pilot.pause()
        assert str(problem.render()) == f"no such file: {tmp_path / 'missing.txt'}"
        await pilot.press("escape")
        await pilot.pause()
        assert app.pending_files.attached == [] and app.composer.text == "draft"


async def test_at_path_attaches_an_existing_file_and_leaves_other_at_words_as_text(
    server: RunningServer, tmp_path: Path
) -> None:
    image = tmp_path / "cat.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    binary = tmp_path / "blob.dat"
    binary.write_bytes(b"\x00\x01")
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        # A binary file named with @ stops the send: the text stays to fix.
        app.composer.focus()
        await type_text(pilot, f"see @{binary}")
        await pilot.press("enter")
        await pilot.pause()
        assert app.composer.text == f"see @{binary}" and app.conversation.views == []
        assert any("blob.dat is a binary file" in note.message for note in app._notifications)
        await pilot.press("ctrl+u")
        text = f"ask @alice about @{image}"
        await send_and_wait(app, pilot, text)
        user, answer = app.conversation.views
        assert user.text == text  # sent as typed
        assert chips(user) == ["image cat.png · 108 bytes"]
        assert "Attached: cat.png (image/png, 108 bytes)" in answer.text


async def test_files_the_server_refuses_come_back_above_the_box_with_the_text(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("x" * 3000)
    async with running_server(tmp_path, max_attachment_bytes=1000, demo_delay_ms=0) as server:
        app = make_app(server.url, server.token(), tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)
            await pilot.press("alt+a", *str(big), "enter")
            await pilot.pause()
            refused: asyncio.Future[object] = asyncio.get_running_loop().create_future()

            def note_refusal(error) -> None:
                # Called after the app's own listener: its give-back has started by then.
                if error.client_message_id is not None and not refused.done():
                    refused.set_result(error)

            app.client.on_error(note_refusal)
            app.composer.focus()
            await pilot.press(*"too much", "enter")
            async with asyncio.timeout(TIMEOUT):
                await refused
            await finished(app, "give-back")
            await settle(app, pilot)
            assert texts(app) == [("user", "too much", "error")]
            assert app.composer.text == "too much"
            assert chips(app.pending_files) == ["big.txt · 2.9 KiB"]
            assert any(note.title == "Message too long" for note in app._notifications)
