"""The message being written is kept until it is sent: across a quit, a crash, a dropped connection."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.pilot import Pilot

from mfu_tui.tui import ChatApp
from mfu_tui.tui.draft_file import FILE_NAME, MAX_BYTES, DraftFile
from tests.support.server import RunningServer
from tests.tui.helpers import TIMEOUT, make_app, ready

SIZE = (100, 30)


def test_the_text_is_kept_in_a_private_file_until_cleared(tmp_path: Path) -> None:
    draft = DraftFile(tmp_path / "data" / FILE_NAME)
    assert draft.load() == ""
    draft.save("a question\non two lines")
    assert draft.load() == "a question\non two lines"
    assert (tmp_path / "data" / FILE_NAME).stat().st_mode & 0o777 == 0o600
    assert [path.name for path in (tmp_path / "data").iterdir()] == [FILE_NAME]  # no temporary file left
    draft.save("   \n")  # only spaces: nothing to keep
    assert not (tmp_path / "data" / FILE_NAME).exists()
    draft.save("again")
    draft.clear()
    assert draft.load() == "" and not (tmp_path / "data" / FILE_NAME).exists()


def test_hostile_or_oversized_text_does_not_come_back_raw(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    path.write_bytes(b"before\x1b]2;title\x07after \xff")
    assert DraftFile(path).load() == "beforeafter \ufffd"
    path.write_bytes(b"x" * (MAX_BYTES + 1))  # not ours
    assert DraftFile(path).load() == ""
    DraftFile(path).save("y" * (MAX_BYTES + 1))  # too big a paste to keep: the file is left as it was
    assert path.stat().st_size == MAX_BYTES + 1


async def type_and_keep(app: ChatApp, pilot: Pilot[None], text: str) -> Path:
    """Type ``text`` in the message box, and wait until it is kept; the draft file's path."""
    await pilot.press(*text)
    path = app.composer.draft.path
    assert path is not None
    await wait_for_file(path, text)
    return path


async def wait_for_file(path: Path, text: str | None) -> None:
    """Until ``path`` holds ``text`` (None: until it is gone); the composer writes it a moment after a key."""
    async with asyncio.timeout(TIMEOUT):
        while (path.read_text() if path.exists() else None) != text:
            await asyncio.sleep(0.02)


async def test_what_was_being_written_is_back_in_the_box_at_the_next_start(
    server: RunningServer, tmp_path: Path
) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        path = await type_and_keep(app, pilot, "half a thought")  # kept without quitting: a kill now loses nothing
        await pilot.press(*" and more")
    # Quit within a moment of the last key: kept as it quits.
    assert path.read_text() == "half a thought and more"
    again = make_app(server.url, server.token(), tmp_path)
    async with again.run_test(size=SIZE) as pilot:
        await ready(again, pilot)
        assert again.composer.text == "half a thought and more"
        assert again.composer.cursor_location == again.composer.document.end  # to go on typing


async def test_a_message_sent_is_not_kept_and_does_not_come_back(server: RunningServer, tmp_path: Path) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        path = await type_and_keep(app, pilot, "a question")
        await pilot.press("enter")
        async with asyncio.timeout(TIMEOUT):
            while app.composer.text:  # taken by the client (queued in the outbox)
                await pilot.pause()
        assert not path.exists()  # at once, not a moment later: a kill now would bring it back to be sent twice
        await pilot.press(*"next")
        await pilot.press("ctrl+u")  # the box emptied: nothing kept
        await wait_for_file(path, None)
    again = make_app(server.url, server.token(), tmp_path)
    async with again.run_test(size=SIZE) as pilot:
        await ready(again, pilot)
        assert again.composer.text == ""
