"""Keys that come all at once (a frozen app, a slow SSH link) never crash the app; a crash keeps the draft."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path

import pytest
from textual.widgets import Input, OptionList, TextArea

from mfu_tui.launch import log_crash
from mfu_tui.tui.draft_file import DraftFile
from mfu_tui.tui.screens.dialog import Dialog
from tests.support.server import RunningServer
from tests.tui.helpers import GATHER, TIMEOUT, burst, make_app, ready, settle, until
from tests.tui.scenes import ask, ask_answered

SIZE = (100, 32)


@pytest.mark.parametrize(
    "keys",
    [
        ("escape", "ctrl+p", "h"),
        ("escape", "ctrl+p", "escape", "ctrl+p", "h"),
        ("ctrl+p", "ctrl+p", "escape", "ctrl+p", "escape"),
        ("ctrl+p", "h", "escape", "ctrl+p", "enter", "escape"),
    ],
)
async def test_palette_keys_in_one_burst_never_crash_the_app(
    server: RunningServer, tmp_path: Path, keys: tuple[str, ...]
) -> None:
    # An escape typed before ctrl+p reaches the palette's binding only as it bubbles up, after
    # ctrl+p (a priority binding) opened the palette: the palette closes before its mount and the
    # "h" typed into it ran, and those started gathering commands into a list already gone.
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        burst(app, *keys, "escape")
        await pilot.pause()
        async with asyncio.timeout(TIMEOUT):
            while app.is_running and (
                len(app.screen_stack) > 1 or any(worker.group == GATHER and worker.is_running for worker in app.workers)
            ):
                await pilot.pause()
        await pilot.pause()
        assert app.is_running and app.return_code is None


async def test_an_unexpected_error_keeps_the_draft_and_says_where_the_log_is(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_file = tmp_path / "logs" / "mfu-chat.log"
    app = make_app(server.url, server.token(), tmp_path, report_crash=partial(log_crash, log_file))

    def a_bug() -> None:
        raise RuntimeError("a bug nobody caught")

    with pytest.raises(RuntimeError, match="a bug nobody caught"):
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)
            await pilot.press(*"half a thought")
            draft = app.composer.draft.path
            app.call_later(a_bug)
            await pilot.pause()
    assert app.return_code == 1
    said = "".join(capsys.readouterr().err.split())  # one line, which Rich wraps to the terminal's width
    expected = (
        f"mfu-chat stopped on an unexpected error (RuntimeError); the details are in {log_file}. "
        "What you were writing is kept: it is back in the message box at the next start."
    )
    assert said == "".join(expected.split())
    logged = log_file.read_text()
    assert "the app stopped on an unexpected error" in logged and "RuntimeError: a bug nobody caught" in logged
    assert log_file.stat().st_mode & 0o777 == 0o600
    assert DraftFile(draft).load() == "half a thought"


@pytest.mark.parametrize(
    ("opener", "typed", "keys"),
    [
        ("ctrl+f", "hello", ("enter", "enter")),  # search: the hit opened, the second enter came after
        ("ctrl+f", "hello", ("enter", "escape")),
        ("ctrl+l", "", ("enter", "enter")),  # model picker
        ("ctrl+r", "", ("enter", "enter")),  # earlier prompts
    ],
)
async def test_keys_queued_for_a_dialog_after_its_answer_never_crash_the_app(
    server: RunningServer, tmp_path: Path, opener: str, typed: str, keys: tuple[str, ...]
) -> None:
    # Each key of one read is queued for the dialog before the first closes it: a second
    # dismiss popped the screen under the dialog ("Can't pop screen") and the app stopped.
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await ask(app, pilot, "hello there")
        await app.settled()
        await pilot.press(opener, *typed)
        async with asyncio.timeout(TIMEOUT):
            while not (isinstance(app.screen, Dialog) and app.screen.query_one(OptionList).highlighted is not None):
                await pilot.pause()
        burst(app, *keys)
        async with asyncio.timeout(TIMEOUT):
            while app.is_running and isinstance(app.screen, Dialog):
                await pilot.pause()
        await pilot.pause()
        assert app.is_running and app.return_code is None
        assert len(app.screen_stack) == 1


def typed_in(widget: object) -> str:
    """What is written in an input or a text area (``""`` for anything else)."""
    return widget.value if isinstance(widget, Input) else widget.text if isinstance(widget, TextArea) else ""


@pytest.mark.parametrize("opener", ["f2", "ctrl+f", "f3", "ctrl+r"])  # rename, search, chat settings, earlier prompts
async def test_keys_read_with_the_key_that_opens_a_dialog_go_to_the_dialog(
    server: RunningServer, tmp_path: Path, opener: str
) -> None:
    # Textual sends every key of one read to the widget focused when it came: the keys after f2 were typed
    # into the message box behind the dialog, which opened only once f2 had bubbled up to the app's binding.
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await ask_answered(app, pilot, "hello there")
        await app.settled()
        await pilot.pause()
        assert app.composer.has_focus and app.composer.text == ""
        burst(app, opener, *"xyz")
        await until(pilot, lambda: "xyz" in app.composer.text + typed_in(app.screen.focused))
        assert isinstance(app.screen, Dialog)
        assert typed_in(app.screen.focused).endswith("xyz")
        assert app.composer.text == ""


async def test_keys_read_with_e_go_into_the_message_taken_to_edit(server: RunningServer, tmp_path: Path) -> None:
    # e asks the app to put the message in the box: the keys read with it (c copies, b copies code, in the
    # pane) are typing, and go where e sends the focus, after the message's text.
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await ask_answered(app, pilot, "two")
        await app.settled()
        app.conversation.focus()
        await pilot.press("up", "up")  # the question
        assert app.conversation.selected_view is not None and app.conversation.selected_view.role == "user"
        burst(app, "e", *" cb")
        await until(pilot, lambda: app.composer.text.endswith("cb"))
        assert app.composer.text == "two cb" and app.focused is app.composer


@pytest.mark.parametrize(
    ("pane", "opener", "keys"),
    [
        ("chat_list", "f2", "xyz"),  # rename the highlighted chat: the title goes on
        ("chat_list", "f8", "n"),  # delete it: no
        ("conversation", "r", "n"),  # answer the first message again, the later ones going: no
        ("conversation", "i", "escape"),  # the details of the selected message: closed
    ],
)
async def test_keys_read_with_a_pane_key_that_opens_a_dialog_go_to_the_dialog(
    server: RunningServer, tmp_path: Path, pane: str, opener: str, keys: str
) -> None:
    # The pane asks the app for the dialog with a message, which came after the keys read with its key:
    # they acted in the pane (or were typed into the message box) before the dialog opened.
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await ask_answered(app, pilot, "one")
        await ask_answered(app, pilot, "two")
        await app.settled()
        if pane == "chat_list":
            await pilot.press("ctrl+o")
            assert app.focused is app.chat_list and app.chat_list.highlighted_chat_id == app.chat_id
        else:
            # Opened again: each message with its record, so the details need nothing from the server.
            await pilot.press("ctrl+o", "enter")
            await settle(app, pilot)
            app.conversation.focus()
            await pilot.press("up", "up", "up")  # the answer to "one"
            assert app.conversation.selected == 1 and app.conversation.selected_view.record is not None
        dialogs: list[Dialog[object]] = []
        app.screen_change_signal.subscribe(app, lambda screen: dialogs.extend([screen] * isinstance(screen, Dialog)))
        typed = keys if len(keys) > 1 and keys != "escape" else ""
        burst(app, opener, *([keys] if keys == "escape" else keys))
        await until(
            pilot,
            lambda: (
                bool(app.composer.text)
                or any(dialog.answered for dialog in dialogs)
                or bool(typed)
                and typed_in(app.screen.focused).endswith(typed)
            ),
        )
        assert app.composer.text == ""
        [dialog] = dialogs
        assert dialog.answered != bool(typed)  # answered by the keys, or holding what they wrote
        assert len(app.screen_stack) == 1 + bool(typed)
