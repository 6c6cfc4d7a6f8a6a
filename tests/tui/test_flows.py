"""The app's flows, driven with Pilot against the real server and real clients."""

from __future__ import annotations

import asyncio
import contextlib
import tomllib
from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.command import CommandList, CommandPalette
from textual.geometry import Region
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static, TextArea
from textual.widgets._footer import FooterKey
from textual.worker import WorkerCancelled

from mfu_tui.client import ChatClient, ClientError, MessageReloaded, Status
from mfu_tui.protocol import (
    MAX_TITLE_LENGTH,
    Ack,
    Cancelled,
    ChatParams,
    ChatSettings,
    ChatUpdated,
    Chunk,
    Complete,
    MessageEdited,
)
from mfu_tui.server.providers.demo import demo_answer
from mfu_tui.tui import AppChoices
from mfu_tui.tui.app import ChatApp
from mfu_tui.tui.screens.chat_settings import ChatSettingsScreen
from mfu_tui.tui.screens.confirm import ConfirmScreen
from mfu_tui.tui.screens.help import HelpScreen, KeyTable
from mfu_tui.tui.screens.model_picker import ModelPicker
from mfu_tui.tui.screens.prompt_search import PromptSearch
from mfu_tui.tui.screens.rename import RenameScreen
from mfu_tui.tui.screens.sign_in import SignInScreen
from mfu_tui.tui.widgets.answer_body import AnswerBody
from tests.server.fake_openai import FakeOpenAI, Reply, Script
from tests.server.peer import peer
from tests.server.test_generation import send_message
from tests.server.test_openai_provider import openai_settings
from tests.support.disk_full import fill_disk, free_disk
from tests.support.proxy import FaultProxy
from tests.support.server import RunningServer, running_server
from tests.tui.conftest import WORDS
from tests.tui.helpers import (
    GATHER,
    TIMEOUT,
    FrameWaiter,
    StateWaiter,
    burst,
    finished,
    frame_of,
    make_app,
    nth_frame_of,
    ready,
    settle,
    stopped_by_auth,
    type_text,
)

SIZE = (100, 32)


async def ask(app, pilot, text: str) -> Complete:
    """Type ``text``, press enter, and wait for the answer's ``complete``."""
    done = FrameWaiter(app.client, frame_of(Complete))
    app.composer.focus()
    await type_text(pilot, text)
    await pilot.press("enter")
    frame = await done.wait()
    await settle(app, pilot)
    return frame


def texts(app) -> list[tuple[str, str, str]]:
    """(role, text, status) of each message on screen."""
    return [(view.role, view.text, view.status) for view in app.conversation.views]


async def other_client(server: RunningServer, tmp_path: Path, user: str = "alice") -> ChatClient:
    """A second connection of the same user, as another terminal would be."""
    client = ChatClient(server.url, server.token(user), data_dir=tmp_path / "other")
    await client.connect()
    await client.wait_connected(TIMEOUT)
    return client


async def test_send_streams_the_answer_as_markdown(server: RunningServer, tmp_path: Path) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        assert app.focused is app.composer
        complete = await ask(app, pilot, "How do I print?")
        expected = demo_answer("How do I print?", WORDS)
        assert texts(app) == [("user", "How do I print?", "complete"), ("assistant", expected, "complete")]
        assert app.composer.text == ""
        assert app.chat_id == complete.chat_id
        # What is shown is what is stored, byte for byte.
        stored = await app.client.get_chat(complete.chat_id)
        assert [m.content for m in stored.messages] == ["How do I print?", expected]
        # The chat list and the header know the new chat.
        assert [chat.id for chat in app.chat_list.chats] == [complete.chat_id]
        assert app.chat_list.current_chat_id == complete.chat_id
        assert app.query_one("#chat-title").render().plain == stored.chat.title
        # The code block is rendered by Markdown (not shown as backticks).
        answer = app.conversation.views[-1]
        assert answer.code_blocks() == ["print(15)  # characters in the question\n"]
        body = answer.query_one(AnswerBody)
        drawn = [line.text.strip() for line in body.render_lines(Region(0, 0, *body.size))]
        assert "print(15)  # characters in the question" in drawn
        assert not [line for line in drawn if "```" in line]


async def test_escape_cancels_and_keeps_the_partial_answer(slow_server: RunningServer, tmp_path: Path) -> None:
    app = make_app(slow_server.url, slow_server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        assert app.check_action("cancel", ()) is False
        started = FrameWaiter(app.client, lambda f: isinstance(f, Chunk) and f.seq >= 3)
        stopped = FrameWaiter(app.client, frame_of(Cancelled))
        await type_text(pilot, "tell me a long story")
        await pilot.press("enter")
        await started.wait()
        await settle(app, pilot)
        # The binding shows in the footer only while an answer is written.
        assert app.check_action("cancel", ()) is True
        assert any(b.binding.action == "cancel" for b in app.active_bindings.values() if b.enabled)
        await pilot.press("escape")
        cancelled = await stopped.wait()
        await settle(app, pilot)
        answer = app.conversation.views[-1]
        assert answer.status == "cancelled"
        assert answer.query_one(".note").render().plain == "cancelled"
        stored = await app.client.get_chat(cancelled.chat_id)
        assert stored.messages[-1].status == "cancelled"
        assert answer.text == stored.messages[-1].content != ""
        assert app.check_action("cancel", ()) is False
        assert app.composer.text == ""


async def long_answer_started(app: ChatApp, pilot: Any) -> None:
    """Once the app is ready, ask for a long answer (``slow_server``'s) and wait until it streams."""
    await ready(app, pilot)
    started = FrameWaiter(app.client, lambda f: isinstance(f, Chunk) and f.seq >= 3)
    await pilot.press(*"a long story", "enter")
    await started.wait()


async def test_a_message_sent_while_an_answer_is_written_says_it_waits_for_it(
    slow_server: RunningServer, tmp_path: Path
) -> None:
    app = make_app(slow_server.url, slow_server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await long_answer_started(app, pilot)
        await pilot.press(*"and then?", "enter")
        await settle(app, pilot)
        waiting = app.conversation.views[-1]
        assert (waiting.text, waiting.status) == ("and then?", "waiting")  # it was "sending…", online: a hang?
        assert waiting.query_one(".note").render().plain.startswith("waits for the answer above to end")
        acked = FrameWaiter(app.client, frame_of(Ack))
        await pilot.press("escape")  # the answer ends: the message goes
        await acked.wait()
        await settle(app, pilot)
        assert waiting.status == "complete"
        await app.client.close()


async def test_a_notice_that_something_waits_for_the_answer_goes_when_it_ends(
    slow_server: RunningServer, tmp_path: Path
) -> None:
    app = make_app(slow_server.url, slow_server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await long_answer_started(app, pilot)
        await pilot.press("f5")  # answer again: not while this one is written
        assert [n.message for n in app._notifications] == ["An answer is being written: stop it first (esc)."]
        stopped = FrameWaiter(app.client, frame_of(Cancelled))
        await pilot.press("escape")
        await stopped.wait()
        await settle(app, pilot)
        assert list(app._notifications) == []  # it was true until now only


async def test_chat_list_updates_live_from_another_terminal(server: RunningServer, tmp_path: Path) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        assert app.chat_list.chats == []
        other = await other_client(server, tmp_path)
        try:
            listed = FrameWaiter(app.client, frame_of(ChatUpdated))
            ack = FrameWaiter(other, frame_of(Ack))
            await other.send_message(None, "A chat from elsewhere")
            created = await ack.wait()
            await listed.wait()
            await settle(app, pilot)
            assert [chat.id for chat in app.chat_list.chats] == [created.chat_id]
            renamed = FrameWaiter(app.client, lambda f: isinstance(f, ChatUpdated) and f.chat.title == "Renamed")
            await other.rename_chat(created.chat_id, "Renamed")
            await renamed.wait()
            await settle(app, pilot)
            assert [chat.title for chat in app.chat_list.chats] == ["Renamed"]
            assert "Renamed" in app.chat_list.get_option_at_index(0).prompt.plain
        finally:
            await other.close()


async def test_new_open_rename_and_delete_chats(server: RunningServer, tmp_path: Path) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        first = await ask(app, pilot, "first question")
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        assert app.chat_id is None and texts(app) == []
        second = await ask(app, pilot, "second question")
        assert second.chat_id != first.chat_id
        assert len(app.chat_list.chats) == 2

        # Open the first chat from the list with the keyboard.
        await pilot.press("ctrl+o")
        assert app.focused is app.chat_list
        app.chat_list.highlighted = app.chat_list.get_option_index(first.chat_id)
        # f2 in the list renames the highlighted chat, not the open one: the list's key before the app's.
        await pilot.press("f2")
        assert isinstance(app.screen, RenameScreen)
        assert app.screen.query_one(Input).value == app.chat_list.chat(first.chat_id).title
        await pilot.press("escape")
        assert app.focused is app.chat_list
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.chat_id == first.chat_id
        assert texts(app)[0] == ("user", "first question", "complete")

        # Rename it.
        await pilot.press("f2")
        assert isinstance(app.screen, RenameScreen)
        # A title over the protocol's limit, pasted: kept whole in the box, refused with the reason.
        await pilot.press("ctrl+u")
        app.screen.post_message(events.Paste("x" * (MAX_TITLE_LENGTH + 50)))
        await pilot.press("enter")
        assert isinstance(app.screen, RenameScreen)
        assert len(app.screen.query_one(Input).value) == MAX_TITLE_LENGTH + 50
        error = app.screen.query_one("#title-error", Static)
        assert error.display and str(error.render()) == "A title has at most 200 characters: this one has 250."
        await pilot.press("ctrl+u", *"My first", "enter")
        await finished(app, "rename")
        await settle(app, pilot)
        assert app.chat_list.chat(first.chat_id).title == "My first"
        assert (await app.client.get_chat(first.chat_id)).chat.title == "My first"

        # Delete asks first; "n" keeps it, "y" deletes it.
        await pilot.press("f8")
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.styles.background.a < 1  # the chat stays visible, dimmed, under the question
        await pilot.press("n")
        await settle(app, pilot)
        assert app.chat_list.chat(first.chat_id) is not None
        gone = FrameWaiter(app.client, lambda f: isinstance(f, ChatUpdated) and f.deleted)
        await pilot.press("f8")
        await pilot.press("y")
        await gone.wait()
        await finished(app, "delete")
        await settle(app, pilot)
        assert [chat.id for chat in app.chat_list.chats] == [second.chat_id]
        assert app.chat_id is None and texts(app) == []


async def test_e_on_a_selected_message_edits_it_and_regenerates(server: RunningServer, tmp_path: Path) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        first = await ask(app, pilot, "one")
        app.conversation.focus()
        await pilot.press("up", "up", "e")  # up selects the newest message (the answer), up again the question
        assert app.composer.has_focus and app.composer.text == "one"
        assert app.composer.editing_message_id is not None
        edited = FrameWaiter(app.client, frame_of(MessageEdited))
        answered = FrameWaiter(app.client, lambda f: isinstance(f, Complete) and f.message_id != first.message_id)
        await pilot.press("backspace", "backspace", "backspace", *"two", "enter")
        await edited.wait()
        await answered.wait()
        await settle(app, pilot)
        assert texts(app) == [("user", "two", "complete"), ("assistant", demo_answer("two", WORDS), "complete")]
        assert app.composer.editing_message_id is None and app.composer.text == ""


async def test_an_edit_of_an_earlier_message_asks_before_the_later_ones_go(
    server: RunningServer, tmp_path: Path
) -> None:
    """Sending it answers it again and drops what followed: as r does, the app asks first; n keeps editing."""
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        first = await ask(app, pilot, "one")
        await ask(app, pilot, "two")
        app.conversation.focus()
        await pilot.press("up", "up", "up", "up", "e")  # the last answer, "two", the first answer, "one"
        editing = app.composer.editing_message_id
        assert app.composer.text == "one" and editing is not None
        await pilot.press(*" more", "enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)  # "two" and its answer would go
        await pilot.press("n")
        await settle(app, pilot)
        assert app.composer.text == "one more" and app.composer.editing_message_id == editing
        assert [text for _, text, _ in texts(app)][2] == "two"  # nothing sent
        answered = FrameWaiter(app.client, lambda f: isinstance(f, Complete) and f.message_id != first.message_id)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await answered.wait()
        await settle(app, pilot)
        assert texts(app) == [
            ("user", "one more", "complete"),
            ("assistant", demo_answer("one more", WORDS), "complete"),
        ]
        assert app.composer.editing_message_id is None and app.composer.text == ""


async def test_a_message_taken_to_edit_with_e_stays_on_screen_above_the_box_it_fills(
    server: RunningServer, tmp_path: Path
) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        for question in ("one", "long " * 120, "three"):  # the long one fills several lines of the message box
            await ask(app, pilot, question)
        conversation = app.conversation
        conversation.focus()
        long = conversation.views[2]
        # The long question at the bottom of the view: up selects it, the lowest message on screen.
        conversation.scroll_to(y=long.virtual_region.bottom - conversation.size.height, animate=False, immediate=True)
        await settle(app, pilot)
        await pilot.press("up")
        await settle(app, pilot)
        assert conversation.selected_view is long
        await pilot.press("e")
        await settle(app, pilot)
        assert app.composer.text == long.text and app.composer.size.height > 3  # the box grew, the pane shrank
        region = long.virtual_region
        shown = conversation.scrollable_content_region.height
        assert conversation.scroll_y <= region.y and region.bottom <= conversation.scroll_y + shown


async def test_the_answer_to_an_edit_is_followed_as_it_is_written(server: RunningServer, tmp_path: Path) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        for question in ("one", "two", "three", "four"):
            last = await ask(app, pilot, question)
        app.conversation.focus()
        await pilot.press("home")  # the view at the top, let go of the bottom
        await settle(app, pilot)
        assert app.conversation.scroll_y == 0 < app.conversation.max_scroll_y
        app.action_edit_last()  # as from the palette
        answered = FrameWaiter(app.client, lambda f: isinstance(f, Complete) and f.message_id != last.message_id)
        await pilot.press(*" again", "enter")
        await answered.wait()
        await settle(app, pilot)
        assert texts(app)[-2] == ("user", "four again", "complete")
        assert app.conversation.scroll_y == app.conversation.max_scroll_y > 0  # down with the new answer


async def test_keys_typed_after_enter_in_the_same_read_stay_in_the_box(server: RunningServer, tmp_path: Path) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        answered = FrameWaiter(app.client, frame_of(Complete))
        burst(app, *"first", "enter", *"second")  # one read, as over SSH: the box was cleared after "second"
        await answered.wait()
        await settle(app, pilot)
        assert [text for role, text, _ in texts(app) if role == "user"] == ["first"]
        assert app.composer.text == "second"
        # Two messages in one read go as two, in order, and the box is empty after.
        app.composer.clear()
        both = FrameWaiter(app.client, nth_frame_of(Complete, 2))
        burst(app, *"third", "enter", *"fourth", "enter")
        await both.wait()
        await settle(app, pilot)
        assert [text for role, text, _ in texts(app) if role == "user"] == ["first", "third", "fourth"]
        assert app.composer.text == ""
        # One that does not go comes back to the box, before what was typed after it.
        too_long = "word " * 20_000  # over the protocol's 64 KiB frame limit
        app.composer.text = too_long  # as a paste would
        burst(app, "enter", *"and more")
        await settle(app, pilot)
        assert app.composer.text == f"{too_long}\nand more"
        assert [text for role, text, _ in texts(app) if role == "user"] == ["first", "third", "fourth"]


async def test_message_edited_in_another_terminal_updates_the_pane(server: RunningServer, tmp_path: Path) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        complete = await ask(app, pilot, "original words")
        user_message = app.conversation.views[0].message_id
        other = await other_client(server, tmp_path)
        try:
            edited = FrameWaiter(app.client, frame_of(MessageEdited))
            await other.edit_message(complete.chat_id, user_message, "changed elsewhere")
            await edited.wait()
            await settle(app, pilot)
            assert texts(app)[0] == ("user", "changed elsewhere", "complete")
            assert len(texts(app)) == 2
        finally:
            await other.close()


async def test_export_writes_the_chat_to_markdown(server: RunningServer, tmp_path: Path) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await ask(app, pilot, "export me")
        await pilot.press("ctrl+s")
        await finished(app, "export")
        files = list((tmp_path / "exports").glob("*.md"))
        assert len(files) == 1
        assert files[0].stat().st_mode & 0o777 == 0o600  # the chat is private
        assert (tmp_path / "exports").stat().st_mode & 0o777 == 0o700  # made by us, so ours
        await pilot.press("ctrl+s")  # again: a new file, never the first overwritten
        await finished(app, "export")
        assert sorted(path.name for path in (tmp_path / "exports").glob("*.md")) == [
            "export-me-2.md",
            "export-me.md",
        ]
        text = files[0].read_text()
        assert "**You** · " in text and "\n\nexport me\n" in text
        assert "**Assistant** · demo · " in text and "## You" not in text
        assert demo_answer("export me", WORDS).rstrip("\n") in text


async def test_model_picker_lists_the_server_models(server: RunningServer, tmp_path: Path) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        assert [m.id for m in app.models] == ["demo"]
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert isinstance(app.screen, ModelPicker)
        # The name, then in dim only what it does not say already.
        prompt = app.screen.query_one(OptionList).get_option_at_index(0).prompt
        assert str(prompt) == "● Demo (offline)  the server's default"
        await pilot.press("enter")
        await pilot.pause()
        assert app.model_id == "demo"
        assert app.composer.border_subtitle == "model: demo"


@pytest.mark.parametrize("listed", [False, True], ids=["model_list_failed", "model_list_came"])
async def test_a_failed_model_offers_another_only_when_the_model_list_came(tmp_path: Path, listed: bool) -> None:
    async with FakeOpenAI() as fake, running_server(tmp_path, **openai_settings(fake)) as srv:
        if not listed:  # the model server is out: the list fails, and every answer with it
            fake.models_reply = Reply(503, b'{"error": {"message": "loading"}}')
        fake.script = Script(status=500)
        app = make_app(srv.url, srv.token(), tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)  # its refresh asked for the models
            assert [model.id for model in app.models] == (["fake-small", "fake-large"] if listed else [])
            if not listed:
                [note] = app._notifications
                assert note.title == "No models" and note.message.startswith("cannot list models: ")
                assert "try again later (ctrl+l asks again)" in note.message and "another model" not in note.message
                app.clear_notifications()
            await ask(app, pilot, "say hello")
            [failed] = app._notifications
            if listed:
                assert failed.title == "The model failed"
                assert failed.message.endswith("Answer again with f5, or choose another model with ctrl+l.")
            else:  # another model cannot help: there is no list to choose from, they all come from that server
                assert failed.title == "No models" and "another model" not in failed.message
                assert failed.message.endswith("if it lasts, tell the server's operator.")


async def test_copy_never_quits_and_copies_the_code_block(server: RunningServer, tmp_path: Path) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await ask(app, pilot, "code please")
        await pilot.press("ctrl+c")
        assert app.is_running
        assert app.clipboard == demo_answer("code please", WORDS)
        app.conversation.focus()
        await pilot.press("up")
        assert app.conversation.selected_view is app.conversation.views[-1]
        await pilot.press("b")
        assert app.clipboard == "print(11)  # characters in the question\n"
        await pilot.press("up", "c")
        assert app.clipboard == "code please"


async def test_expired_token_shows_red_and_says_how_to_sign_in(server: RunningServer, tmp_path: Path) -> None:
    app = make_app(server.url, server.token(ttl=-120), tmp_path)
    stopped = StateWaiter(app.client, stopped_by_auth)
    async with app.run_test(size=SIZE) as pilot:
        await stopped.wait()
        await settle(app, pilot)
        dot = app.status_dot
        assert dot.has_class("-error")
        assert str(dot.render()) == "● offline: signed out"
        # The first refusal asks for a new token; once closed, the next refusal says how, with the real URL.
        assert isinstance(app.screen, SignInScreen)
        await pilot.press("escape")
        again = StateWaiter(app.client, lambda state: state.status is Status.CONNECTING)
        await pilot.press("f9")
        await again.wait()
        await StateWaiter(app.client, stopped_by_auth).wait()
        await settle(app, pilot)
        notes = [n for n in app._notifications if n.title == "Signed out"]
        assert len(notes) == 1
        assert "Press f10 to paste a new token" in notes[0].message
        assert f"mfu-chat login --server {server.url}" in notes[0].message


async def test_request_errors_are_notified_in_plain_words(server: RunningServer, tmp_path: Path) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        complete = await ask(app, pilot, "soon gone")
        deleted = FrameWaiter(app.client, lambda f: isinstance(f, ChatUpdated) and f.deleted)
        other = await other_client(server, tmp_path)
        try:
            await other.delete_chat(complete.chat_id)
        finally:
            await other.close()
        await deleted.wait()
        await settle(app, pilot)
        assert app.chat_id is None
        assert [n.title for n in app._notifications] == ["Chat deleted"]
        app.load_chat(complete.chat_id)
        await settle(app, pilot)
        notes = [n for n in app._notifications if n.title == "Not found"]
        assert len(notes) == 1 and "Pick another chat" in notes[0].message


async def test_help_screen_lists_every_binding(server: RunningServer, tmp_path: Path) -> None:
    app = make_app(server.url, server.token(), tmp_path, choices=AppChoices(keymap={"app.new_chat": "ctrl+t"}))
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        table = app.screen.query_one("DataTable")
        rows = [table.get_row_at(i) for i in range(table.row_count)]
        ids = [row[2] for row in rows]
        assert {"app.quit", "app.cancel", "app.copy", "composer.send", "composer.newline", "chat_list.delete"} <= set(
            ids
        )
        assert ["ctrl+t", "Start a new chat", "app.new_chat"] in [list(r) for r in rows]
        sections = [str(row[0]) for row in rows if row[2] == ""]
        assert sections == ["Anywhere", "Composer", "Conversation", "Chat list", "Chat settings", "Message details"]
        assert {"app.chat_settings", "app.toggle_archived", "chat_list.pin", "chat_list.archive"} <= set(ids)
        assert {"conversation.details", "details.close"} <= set(ids)
        assert len(ids) == len(set(ids)) + len(sections) - 1  # once each, though `up` has two bindings under one id
        # What it says to write in the config file is what the config file reads.
        hint = str(app.screen.query_one(".hint").render())
        example = hint[hint.index("[keys]") :]
        assert tomllib.loads(example) == {"keys": {"app.new_chat": "ctrl+t"}}
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        # The remapped key works.
        await ask(app, pilot, "a chat to leave")
        assert app.chat_id is not None
        await pilot.press("ctrl+t")
        await settle(app, pilot)
        assert app.chat_id is None and texts(app) == []


async def test_the_help_shows_every_id_whole_and_wraps_the_descriptions(server: RunningServer, tmp_path: Path) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await ready(app, pilot)
        await pilot.press("f1")
        await pilot.pause()
        for width in (120, 80, 100):  # laid out again as the terminal is resized
            await pilot.resize_terminal(width, 30)
            await pilot.pause()
            table = app.screen.query_one(KeyTable)
            rows = [(table.get_row_at(index), table.rows[key].height) for index, key in enumerate(table.rows)]
            keys, what, ids = table.ordered_columns
            # Every column in view (no scrolling sideways), keys and ids whole, only the descriptions wrapped.
            assert sum(column.get_render_width(table) for column in table.ordered_columns) <= (
                table.scrollable_content_region.width
            )
            assert keys.width >= max(len(str(row[0])) for row, _ in rows)
            assert ids.width == max(len(str(row[2])) for row, _ in rows)
            assert all(height == 1 or len(str(row[1])) > what.width for row, height in rows)
        assert any(height > 1 for _, height in rows)  # at 100 wide, the longest description wraps


async def test_command_palette_runs_app_actions(server: RunningServer, tmp_path: Path) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await ask(app, pilot, "palette")
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert {
            "New chat",
            "Rename chat",
            "Delete chat",
            "Export chat to Markdown",
            "Choose model",
            "Show keys",
        } <= set(titles)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"show keys")
        await pilot.pause()
        # The palette searches in a worker, adding hits as they come: wait for its end, then take the best.
        async with asyncio.timeout(TIMEOUT):
            while not (
                isinstance(app.screen, CommandPalette)
                and app.screen.query_one(CommandList).option_count
                and not any(worker.group == GATHER and worker.is_running for worker in app.workers)
            ):
                await pilot.pause()
        await pilot.press("down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)


async def test_queued_chunks_are_applied_in_batches_with_the_stored_text(tmp_path: Path) -> None:
    from mfu_tui.tui.widgets.message_view import MessageView
    from tests.support.server import running_server

    appends: list[tuple[str, int]] = []
    original = MessageView.append

    async def recorded_append(self: MessageView, delta: str, seq: int, thought: str = "") -> None:
        appends.append((delta, seq))
        await original(self, delta, seq, thought)

    MessageView.append = recorded_append  # type: ignore[method-assign]
    try:
        # A long answer, a word a millisecond: slower than a commit, so the words come in
        # small chunks (the server joins only what is ready together), faster than the app shows.
        async with running_server(tmp_path, demo_words=600, demo_delay_ms=1) as fast:
            app = make_app(fast.url, fast.token(), tmp_path)
            async with app.run_test(size=SIZE) as pilot:
                await ready(app, pilot)
                chunks: list[Chunk] = []
                unsubscribe = app.client.on_message(
                    lambda frame: chunks.append(frame) if isinstance(frame, Chunk) else None
                )
                complete = await ask(app, pilot, "Long, please")
                unsubscribe()
                stored = await app.client.get_chat(complete.chat_id)
                answer = app.conversation.views[-1]
                assert answer.text == stored.messages[-1].content == "".join(chunk.content for chunk in chunks)
                assert answer.status == "complete"
    finally:
        MessageView.append = original  # type: ignore[method-assign]
    # Fewer appends than chunks, in seq order, each the chunks it stands for joined.
    assert 0 < len(appends) < len(chunks)
    seqs = [seq for _, seq in appends]
    assert seqs == sorted(seqs) and seqs[-1] == chunks[-1].seq
    assert "".join(delta for delta, _ in appends) == answer.text


async def test_an_answer_missed_beyond_the_replay_window_is_reloaded_whole(tmp_path: Path) -> None:
    # replay_window=0: once an answer has ended, resume cannot replay it and the server says resync.
    settings = {"demo_words": 400, "demo_delay_ms": 5, "replay_window": 0}
    async with running_server(tmp_path, **settings) as server, FaultProxy(server.port) as proxy:
        app = make_app(proxy.url(), server.token(), tmp_path)
        observer = await other_client(server, tmp_path)
        try:
            async with app.run_test(size=SIZE) as pilot:
                await ready(app, pilot)
                acked = FrameWaiter(app.client, frame_of(Ack))
                first_chunk = FrameWaiter(app.client, frame_of(Chunk))
                app.composer.focus()
                await pilot.press(*"a long answer", "enter")
                ack = await acked.wait()
                ended = FrameWaiter(observer, lambda f: isinstance(f, Complete) and f.message_id == ack.reply_id)
                await observer.subscribe(ack.chat_id)
                await first_chunk.wait()
                proxy.blackhole()  # the rest of the answer goes by while the app hears nothing
                await ended.wait()
                reloaded = FrameWaiter(app.client, frame_of(MessageReloaded))
                proxy.reset()  # the app reconnects, resumes, is told resync, and reloads the message
                proxy.pass_through()
                await reloaded.wait()
                await settle(app, pilot)
                stored = await observer.get_chat(ack.chat_id)
                shown = texts(app)
        finally:
            await observer.close()
    assert shown == [("user", "a long answer", "complete"), ("assistant", stored.messages[-1].content, "complete")]
    assert stored.messages[-1].seq > 1  # most of it came by the reload, not by chunks


#: The server's secret across the restarts of the interrupted-answer tests.
SECRET = "s" * 48


async def interrupted_answer(tmp_path: Path) -> tuple[str, Ack]:
    """Stop a server mid-answer (stored as status error, finish_reason interrupted): its token and the ack."""
    db = tmp_path / "chat.sqlite3"
    async with running_server(tmp_path, secret=SECRET, db_path=db, demo_words=400, demo_delay_ms=30) as srv:
        token = srv.token()
        async with peer(srv.url, token) as alice:
            ack = await send_message(alice, "a long answer, please")
            await alice.expect(Chunk, message_id=ack.reply_id)
    return token, ack


async def open_chat(app: ChatApp, pilot: Any, chat_id: str) -> None:
    """Open ``chat_id`` from the chat list with the keyboard."""
    await pilot.press("ctrl+o")
    app.chat_list.highlighted = app.chat_list.get_option_index(chat_id)
    await pilot.press("enter")
    await settle(app, pilot)


async def test_an_answer_cut_by_a_server_restart_reads_interrupted_not_failed(tmp_path: Path) -> None:
    token, ack = await interrupted_answer(tmp_path)
    # Past the replay window, opening the chat tells nothing live: the stored message alone must say it.
    db = tmp_path / "chat.sqlite3"
    async with running_server(tmp_path, secret=SECRET, db_path=db, replay_window=0.001) as srv:
        app = make_app(srv.url, token, tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)
            await open_chat(app, pilot, ack.chat_id)
            answer = app.conversation.views[-1]
            assert (answer.role, answer.status) == ("assistant", "interrupted")  # its note: "interrupted: ..."


async def test_f5_answers_an_interrupted_answer_again(tmp_path: Path) -> None:
    token, ack = await interrupted_answer(tmp_path)
    db = tmp_path / "chat.sqlite3"
    async with running_server(tmp_path, secret=SECRET, db_path=db, demo_words=WORDS, demo_delay_ms=0) as srv:
        app = make_app(srv.url, token, tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)
            await open_chat(app, pilot, ack.chat_id)
            assert texts(app)[-1][2] == "interrupted"
            answered = FrameWaiter(app.client, frame_of(Complete, chat_id=ack.chat_id, finish_reason="stop"))
            await pilot.press("f5")
            end = await answered.wait()
            await settle(app, pilot)
            assert end.message_id != ack.reply_id
            assert texts(app) == [
                ("user", "a long answer, please", "complete"),
                ("assistant", demo_answer("a long answer, please", WORDS), "complete"),
            ]


async def test_a_message_sent_from_another_terminal_shows_live_in_the_open_chat(
    server: RunningServer, tmp_path: Path
) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        first = await ask(app, pilot, "asked here")
        other = await other_client(server, tmp_path)
        try:
            answered = FrameWaiter(app.client, frame_of(Complete, chat_id=first.chat_id))
            await other.send_message(first.chat_id, "asked in the other terminal")
            await answered.wait()
            await settle(app, pilot)
        finally:
            await other.close()
        assert texts(app) == [
            ("user", "asked here", "complete"),
            ("assistant", demo_answer("asked here", WORDS), "complete"),
            ("user", "asked in the other terminal", "complete"),
            ("assistant", demo_answer("asked in the other terminal", WORDS), "complete"),
        ]


async def test_r_on_an_earlier_answer_asks_then_answers_it_again(server: RunningServer, tmp_path: Path) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        first = await ask(app, pilot, "one")
        await ask(app, pilot, "two")
        app.conversation.focus()
        await pilot.press("up", "up", "up")  # the last answer, its question, the first answer
        assert app.conversation.selected_view is app.conversation.views[1]
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)  # "two" and its answer would go: ask first
        answered = FrameWaiter(app.client, lambda f: isinstance(f, Complete) and f.message_id != first.message_id)
        await pilot.press("y")
        again = await answered.wait()
        await settle(app, pilot)
        assert texts(app) == [("user", "one", "complete"), ("assistant", demo_answer("one", WORDS), "complete")]
        stored = await app.client.get_chat(first.chat_id)
        assert [m.id for m in stored.messages][-1] == again.message_id and len(stored.messages) == 2


async def test_up_and_down_walk_earlier_prompts_and_ctrl_r_finds_one(server: RunningServer, tmp_path: Path) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await ask(app, pilot, "first prompt")
        await ask(app, pilot, "second prompt")
        await pilot.press(*"draft")
        await pilot.press("up")
        assert app.composer.text == "second prompt"
        await pilot.press("up", "up")  # stays at the oldest
        assert app.composer.text == "first prompt"
        await pilot.press("down", "down")
        assert app.composer.text == "draft"  # what was being written comes back
    # Another run of the app, same data directory: the prompts are still there.
    again = make_app(server.url, server.token(), tmp_path)
    async with again.run_test(size=SIZE) as pilot:
        await ready(again, pilot)
        again.composer.focus()
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert isinstance(again.screen, PromptSearch)
        await pilot.press(*"firs", "enter")
        await pilot.pause()
        assert again.composer.text == "first prompt"


async def test_a_message_past_the_storage_quota_says_so_and_gives_the_text_back(tmp_path: Path) -> None:
    async with running_server(tmp_path, demo_words=3, demo_delay_ms=0, storage_per_user_mib=10 / (1024 * 1024)) as srv:
        app = make_app(srv.url, srv.token(), tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)
            await ask(app, pilot, "fill the quota")  # 14 bytes: the 10 allowed are used up after it
            refused: asyncio.Future[ClientError] = asyncio.get_running_loop().create_future()
            app.client.on_error(lambda error: refused.done() or refused.set_result(error))
            await pilot.press(*"one more")
            await pilot.press("enter")
            async with asyncio.timeout(TIMEOUT):
                await refused
            await settle(app, pilot)
            notes = [n for n in app._notifications if n.title == "Storage full"]
            assert len(notes) == 1 and "delete old chats" in notes[0].message
            assert texts(app)[-1] == ("user", "one more", "error")
            assert app.composer.text == "one more"
            assert len(app.client.outbox) == 0


def listed(app) -> list[str]:
    """The chat list's lines as shown."""
    lines = [app.chat_list.get_option_at_index(i).prompt.plain for i in range(app.chat_list.option_count)]
    return [" ".join(line.split()[:-1]) for line in lines]  # without the age at the end


async def test_pin_and_archive_from_the_chat_list(server: RunningServer, tmp_path: Path) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await ask(app, pilot, "older chat")
        await pilot.press("ctrl+n")
        await ask(app, pilot, "newer chat")
        assert listed(app) == ["▸ newer chat", "older chat"]
        await pilot.press("ctrl+o", "down", "p")  # the older one: pinned, so listed first
        await finished(app, "update")
        await settle(app, pilot)
        assert listed(app) == ["★ older chat", "▸ newer chat"]
        page = await app.client.list_chats()
        assert [(chat.title, chat.pinned) for chat in page.chats] == [("older chat", True), ("newer chat", False)]
        await pilot.press("a")  # still highlighted: archived, so out of the list
        await finished(app, "update")
        await settle(app, pilot)
        assert listed(app) == ["▸ newer chat"]
        assert [chat.title for chat in (await app.client.list_chats(archived=True)).chats] == ["older chat"]
        await pilot.press("f4")
        await settle(app, pilot)
        assert app.query_one("#sidebar-title").render().plain == "Archived chats"
        assert listed(app) == ["★ older chat"]
        await pilot.press("down", "a")  # back from the archive
        await finished(app, "update")
        await pilot.press("f4")
        await settle(app, pilot)
        assert app.query_one("#sidebar-title").render().plain == "Chats"
        assert listed(app) == ["★ older chat", "▸ newer chat"]


async def saved(app: ChatApp, screen: ChatSettingsScreen) -> None:
    """Wait until the settings screen's save has been answered (a saved screen closes, cancelling its worker)."""
    for worker in [worker for worker in app.workers if worker.node is screen]:
        with contextlib.suppress(WorkerCancelled):
            async with asyncio.timeout(TIMEOUT):
                await worker.wait()


async def test_chat_settings_are_checked_as_typed_and_saved_to_the_chat(server: RunningServer, tmp_path: Path) -> None:
    defaults = ChatSettings(system_prompt="Be brief.", params=ChatParams(temperature=0.4))
    app = make_app(server.url, server.token(), tmp_path, choices=AppChoices(new_chat=defaults))
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        # No chat open: each key that needs one says so, and opens nothing.
        await pilot.press("f3", "ctrl+s", "f2", "f8")
        await app.workers.wait_for_complete()  # the export's
        assert not isinstance(app.screen, ModalScreen)
        assert sorted(note.message.split(":")[0] for note in app._notifications) == [
            "Chat settings needs an open chat",
            "Delete needs an open chat",
            "Export needs an open chat",
            "Rename needs an open chat",
        ]
        app.clear_notifications()
        done = await ask(app, pilot, "a chat with defaults")
        # The app's defaults went with the first message: the chat was created with them.
        assert (await app.client.get_chat(done.chat_id)).settings == defaults
        await pilot.press("f3")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ChatSettingsScreen)
        assert screen.query_one(TextArea).text == "Be brief."
        assert screen.query_one("#temperature", Input).value == "0.4"
        screen.query_one(TextArea).text = "Answer in French."
        temperature = screen.query_one("#temperature", Input)
        temperature.value = ""
        temperature.focus()
        await pilot.press(*"2.5")
        await pilot.pause()
        error = screen.query_one("#temperature-error")
        assert error.render().plain == "Must be a number from 0 to 2." and error.display
        await pilot.press("ctrl+s")  # refused here, before anything is sent
        await pilot.pause()
        assert app.screen is screen and app.focused is temperature
        await pilot.press("backspace", "backspace", "backspace", *"1.5")
        screen.query_one("#seed", Input).value = "42"
        await pilot.pause()
        assert not error.display
        await pilot.press("ctrl+s")
        await saved(app, screen)
        await settle(app, pilot)
        assert not isinstance(app.screen, ChatSettingsScreen)
        stored = (await app.client.get_chat(done.chat_id)).settings
        assert stored == ChatSettings(system_prompt="Answer in French.", params=ChatParams(temperature=1.5, seed=42))
        # A problem only the server can find is shown in the screen, which keeps what was typed.
        await pilot.press("f3")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ChatSettingsScreen)
        other = await other_client(server, tmp_path)
        try:
            gone = FrameWaiter(app.client, lambda f: isinstance(f, ChatUpdated) and f.deleted)
            await other.delete_chat(done.chat_id)
            await gone.wait()
        finally:
            await other.close()
        await pilot.press("ctrl+s")
        await saved(app, screen)
        await pilot.pause()
        assert app.screen is screen
        assert "not found" in screen.query_one("#save-error").render().plain.lower()


async def until(pilot, condition, what: str) -> None:
    """Let the app run until ``condition()`` holds (``TIMEOUT`` at most)."""
    async with asyncio.timeout(TIMEOUT):
        while not condition():
            await pilot.pause()
    assert condition(), what


async def test_a_theme_chosen_in_the_palette_is_kept_in_the_config_file(server: RunningServer, tmp_path: Path) -> None:
    from functools import partial

    from textual.command import CommandList, CommandPalette

    from mfu_tui.config import Paths, load_settings
    from mfu_tui.config.edit import remember_choice

    paths = Paths(config_dir=tmp_path / "config", data_dir=tmp_path / "data", log_dir=tmp_path / "log")
    paths.config_dir.mkdir()
    paths.config_file.write_text('# mine\ntheme = "gruvbox"\n\n[keys]\n"app.cancel" = "escape,ctrl+g"\n')
    settings = load_settings({}, {}, paths)
    app = make_app(
        server.url, server.token(), tmp_path, choices=settings.app, remember=partial(remember_choice, settings)
    )
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        # Enter runs a command once it is the only one listed.
        listed = lambda: bool(app.screen.query(CommandList)) and app.screen.query_one(CommandList).option_count == 1  # noqa: E731
        await pilot.press("ctrl+p", *"theme")
        await until(pilot, listed, "the palette's commands")
        palette = app.screen
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette) and app.screen is not palette, "the themes")
        await pilot.press(*"nord")
        await until(pilot, listed, "the themes")
        await pilot.press("enter")
        await until(pilot, lambda: app.theme == "nord", "the theme chosen")
        await finished(app, "remember")
        assert paths.config_file.read_text() == '# mine\ntheme = "nord"\n\n[keys]\n"app.cancel" = "escape,ctrl+g"\n'
        assert load_settings({}, {}, paths).app.theme == "nord"
        assert any(n.title == "Saved" and str(paths.config_file) in n.message for n in app._notifications)


async def test_enter_in_the_chat_list_opens_a_chat_on_a_fresh_start(server: RunningServer, tmp_path: Path) -> None:
    other = await other_client(server, tmp_path)
    try:
        ack = FrameWaiter(other, frame_of(Ack))
        await other.send_message(None, "made before the app started")
        created = await ack.wait()
    finally:
        await other.close()
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        assert app.chat_id is None
        await pilot.press("ctrl+o", "enter")
        await settle(app, pilot)
        assert app.chat_id == created.chat_id
        assert app.focused is app.composer


async def test_typing_anywhere_writes_the_message_and_letters_act_only_on_a_selection(
    server: RunningServer, tmp_path: Path
) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await ask(app, pilot, "code please")
        # In the conversation with nothing selected, every key is typing: c and b too.
        app.conversation.focus()
        await pilot.press(*"cb to you")
        assert app.focused is app.composer and app.composer.text == "cb to you"
        assert app.clipboard == ""
        # ctrl+u clears the box; ctrl+z brings the text back.
        await pilot.press("ctrl+u")
        assert app.composer.text == ""
        await pilot.press("ctrl+z")
        assert app.composer.text == "cb to you"
        await pilot.press("ctrl+u")
        # With a message selected, the letters act on it.
        app.conversation.focus()
        await pilot.press("up", "up", "c")
        assert app.clipboard == "code please" and app.composer.text == ""
        # In the chat list too, a letter starts the message.
        await pilot.press("ctrl+o", *"hi")
        assert app.focused is app.composer and app.composer.text == "hi"


def footer_keys(app: ChatApp) -> set[str]:
    """The keys the main screen's footer shows."""
    return {key.key for key in app.screen_stack[0].query(FooterKey)}


async def test_the_footer_of_the_conversation_says_up_selects_until_a_message_is(
    server: RunningServer, tmp_path: Path
) -> None:
    # Remapped, the hint and the step move together (one id for both bindings).
    app = make_app(
        server.url, server.token(), tmp_path, choices=AppChoices(keymap={"conversation.previous": "ctrl+up"})
    )
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await ask(app, pilot, "one")
        await ask(app, pilot, "two")
        app.conversation.focus()
        await pilot.pause()
        shown = {key.key: key.description for key in app.screen.query(FooterKey)}
        assert shown.get("ctrl+up") == "Select" and "c" not in shown and "up" not in shown
        await pilot.press("ctrl+up")
        await settle(app, pilot)
        assert app.conversation.selected == 3  # the newest, the answer to "two"
        shown = {key.key: key.description for key in app.screen.query(FooterKey)}
        assert "ctrl+up" not in shown and shown.get("c") == "Copy"
        await pilot.press("ctrl+up", "ctrl+up")
        await settle(app, pilot)
        assert app.conversation.selected == 1


async def test_a_burst_of_typing_in_the_conversation_all_goes_to_the_message_box(
    server: RunningServer, tmp_path: Path
) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await ask(app, pilot, "code please")
        main = app.screen
        app.conversation.focus()
        await pilot.press("up")
        assert app.conversation.selected is not None
        # q means nothing here and takes the focus to the box; the e and i after it were read with it.
        burst(app, *"queued while offline")
        await settle(app, pilot)
        assert app.composer.text == "queued while offline"
        assert app.screen is main and app.focused is app.composer and not app.composer.editing_message_id
        # The rest of a burst goes on as typed, enter included: it sends.
        app.composer.clear()
        app.conversation.focus()
        await pilot.press("escape")
        sent = FrameWaiter(app.client, frame_of(Complete))
        burst(app, *"sent in one go", "enter")
        await sent.wait()
        await settle(app, pilot)
        assert [text for role, text, _ in texts(app) if role == "user"][-1] == "sent in one go"


async def test_a_key_after_one_that_moves_the_focus_goes_where_the_focus_went(
    server: RunningServer, tmp_path: Path
) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        complete = await ask(app, pilot, "first chat")
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        assert app.chat_id is None
        # In one read, as over SSH: ctrl+o then enter opens the chat the list lands on.
        burst(app, "ctrl+o", "enter")
        await settle(app, pilot)
        assert app.chat_id == complete.chat_id and app.focused is app.composer
        # In a dialog they are not the app's: ctrl+n there starts no chat, nor shows under it.
        await pilot.press("f2", "ctrl+n")
        assert isinstance(app.screen, RenameScreen) and app.chat_id == complete.chat_id
        assert "ctrl+n" not in footer_keys(app)
        await pilot.press("escape")
        await settle(app, pilot)
        assert {"ctrl+n", "ctrl+o"} <= footer_keys(app)
        # ctrl+n then enter in the list: enter goes to the new chat's empty box, not to the list.
        app.chat_list.focus()
        await settle(app, pilot)
        burst(app, "ctrl+n", "enter")
        await settle(app, pilot)
        assert app.chat_id is None and app.focused is app.composer


async def test_a_key_of_the_message_box_read_before_one_that_moves_the_focus_acts_in_the_box(
    server: RunningServer, tmp_path: Path
) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await ask(app, pilot, "an earlier prompt")
        await type_text(pilot, "a draft to clear")
        # ctrl+o acts at once (a priority key); the ctrl+u read before it is the box's all the same.
        burst(app, "ctrl+u", "ctrl+o")
        await settle(app, pilot)
        assert app.composer.text == "" and app.focused is app.chat_list
        app.focus_now(app.composer)
        burst(app, "up", "ctrl+o")  # the previous prompt, then the list
        await settle(app, pilot)
        assert app.composer.text == "an earlier prompt" and app.focused is app.chat_list
        # A key read after it is the list's: enter opens the chat there (and goes to the box), nothing is sent.
        app.focus_now(app.composer)
        burst(app, "ctrl+u", "ctrl+o", "enter")
        await settle(app, pilot)
        assert app.composer.text == "" and app.focused is app.composer
        assert [text for role, text, _ in texts(app) if role == "user"] == ["an earlier prompt"]


async def test_the_keys_read_after_tab_in_a_dialog_go_to_the_next_field(server: RunningServer, tmp_path: Path) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await ask(app, pilot, "a chat to set up")
        await pilot.press("f3")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ChatSettingsScreen) and isinstance(app.focused, TextArea)
        # In one read, as over a slow SSH link: before, all of it went to the system prompt.
        burst(app, *"Be terse.", "tab", *"0.5", "tab", *"0.9", "shift+tab")
        await settle(app, pilot)
        assert screen.query_one(TextArea).text == "Be terse."
        assert screen.query_one("#temperature", Input).value == "0.5"
        assert screen.query_one("#top_p", Input).value == "0.9"
        assert app.focused is screen.query_one("#temperature", Input)


async def test_a_paste_in_the_conversation_or_the_chat_list_goes_to_the_message_box(
    server: RunningServer, tmp_path: Path
) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await ask(app, pilot, "code please")
        for pane, pasted in [(app.conversation, "what does this do? "), (app.chat_list, "print(2*3)")]:
            pane.focus()
            await pilot.press("up")  # a message (a chat) selected: the paste still writes the message
            app.post_message(events.Paste(pasted))  # as the driver posts a bracketed paste
            await settle(app, pilot)
            assert app.focused is app.composer
        assert app.composer.text == "what does this do? print(2*3)"


async def test_a_pasted_escape_sequence_goes_whole_and_a_pasted_line_break_stays(
    server: RunningServer, tmp_path: Path
) -> None:
    """A paste is cleaned as text from the server is: nothing of a sequence is left in the box to send."""
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        for pasted, kept in [
            ("\x1b[31mred\x1b[0m", "red"),
            ("\x1b]0;pwned\x07", ""),
            ("a\x1b[2Jb", "ab"),
            ("one\r\ntwo\rthree\tfour\x00\x9b2J", "one\ntwo\nthree\tfour"),  # as a terminal pastes lines
        ]:
            app.composer.clear()
            app.post_message(events.Paste(pasted))  # as the driver posts a bracketed paste
            await settle(app, pilot)
            assert app.composer.text == kept


async def test_a_burst_of_typing_in_the_chat_list_neither_pins_nor_archives(
    server: RunningServer, tmp_path: Path
) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await ask(app, pilot, "a chat")
        await pilot.press("ctrl+o")
        assert app.focused is app.chat_list
        burst(app, *"hello apple pie")  # a and p archive and pin, in the list
        await settle(app, pilot)
        assert app.composer.text == "hello apple pie"
        # Enter opens the chat in the message box; a message typed at once goes there too.
        app.composer.clear()
        await pilot.press("ctrl+n", "ctrl+o")
        burst(app, "enter", *"please add an example")
        await settle(app, pilot)
        assert app.chat_id is not None and app.composer.text == "please add an example"
        page = await app.client.list_chats()  # after whatever the keys asked of the server
        assert [(chat.pinned, chat.archived) for chat in page.chats] == [(False, False)]


async def test_undo_in_the_message_box_never_brings_back_a_sent_message(server: RunningServer, tmp_path: Path) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await ask(app, pilot, "sent once")
        await pilot.press("ctrl+z")  # (enter would send it a second time)
        assert app.composer.text == ""
        assert not app.composer.check_action("undo", ())  # so ctrl+z goes on to the app: suspend
        await pilot.press(*"typed")
        assert app.composer.check_action("undo", ())
        await pilot.press("ctrl+z")
        assert app.composer.text == "" and not app.composer.check_action("undo", ())


async def test_after_deleting_the_open_chat_the_next_words_go_to_the_message_box(
    server: RunningServer, tmp_path: Path
) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await ask(app, pilot, "soon deleted")
        app.conversation.focus()
        gone = FrameWaiter(app.client, lambda f: isinstance(f, ChatUpdated) and f.deleted)
        await pilot.press("f8", "y")
        await gone.wait()
        await finished(app, "delete")
        await settle(app, pilot)
        assert app.chat_id is None and app.focused is app.composer


async def test_sidebar_titles_end_with_an_ellipsis_and_an_age_and_the_list_widens(
    server: RunningServer, tmp_path: Path
) -> None:
    from functools import partial

    from rich.cells import cell_len

    from mfu_tui.config import Paths, load_settings
    from mfu_tui.config.edit import remember_choice

    paths = Paths(config_dir=tmp_path / "config", data_dir=tmp_path / "data", log_dir=tmp_path / "log")
    settings = load_settings({}, {}, paths)
    app = make_app(server.url, server.token(), tmp_path, remember=partial(remember_choice, settings))
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await ask(app, pilot, "How do I sort a list of dictionaries by a key in Python")
        listed = app.chat_list
        width = listed.scrollable_content_region.width - 2
        line = str(listed.get_option_at_index(0).prompt)
        assert cell_len(line) == width and line.endswith(" now")
        assert "…" in line  # cut, and seen to be cut
        await pilot.press("alt+right", "alt+right")
        await finished(app, "remember")
        assert app.query_one("#sidebar").outer_size.width == 32
        assert load_settings({}, {}, paths).app.sidebar_width == 32  # kept for the next run
        wider = str(listed.get_option_at_index(0).prompt)
        assert cell_len(wider) == width + 8 and len(wider.rstrip(" now…")) > len(line.rstrip(" now…"))
        await pilot.press("alt+left")
        assert app.query_one("#sidebar").outer_size.width == 28


async def test_a_narrow_terminal_collapses_the_list_and_keeps_the_status_dot(
    server: RunningServer, tmp_path: Path
) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=(40, 12)) as pilot:
        await ready(app, pilot)
        first = await ask(app, pilot, "one")
        await pilot.press("ctrl+n")
        await ask(app, pilot, "two")
        sidebar = app.query_one("#sidebar")
        assert not sidebar.display and app.conversation.size.width >= 36
        # ctrl+o shows the list while it has the focus; opening a chat collapses it again.
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert sidebar.display and sidebar.region.width > 0
        app.chat_list.highlighted = app.chat_list.get_option_index(first.chat_id)
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.chat_id == first.chat_id and not sidebar.display
        # At 30 columns the dot and its words are whole, inside the screen.
        await pilot.resize_terminal(30, 12)
        await pilot.pause()
        dot = app.status_dot
        assert dot.region.right <= 30 and str(dot.render()).startswith("● online")
        assert dot.region.width == len(str(dot.render()))
        assert not app.query_one("#too-small").display
        # Smaller than that: one sentence says so.
        await pilot.resize_terminal(24, 8)
        await pilot.pause()
        assert app.query_one("#too-small").display and not app.query_one("#main").display


async def test_an_answer_the_servers_storage_failed_says_so_and_does_not_blame_the_model(tmp_path: Path) -> None:
    async with running_server(tmp_path, demo_words=20000, demo_delay_ms=1) as srv:
        app = make_app(srv.url, srv.token(), tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await ready(app, pilot)
            streaming = FrameWaiter(app.client, frame_of(Chunk))
            ended = FrameWaiter(app.client, frame_of(Complete))
            errors: list[ClientError] = []
            app.client.on_error(errors.append)
            await pilot.press(*"a long answer", "enter")
            await streaming.wait()
            await fill_disk(srv.server.store)  # the next page of chunks does not fit
            end = await ended.wait()
            await settle(app, pilot)
            answer = app.conversation.views[-1]
            shown = (answer.role, answer.status, str(answer.query_one(".note", Static).render()))
            notes = [n for n in app._notifications if n.title == "Answer not stored"]
            await free_disk(srv.server.store)
    assert end.finish_reason == "store_failed"
    assert [error.code for error in errors] == ["unavailable"]
    assert shown == ("assistant", "unstored", "failed: the server could not store the answer")
    assert len(notes) == 1 and "storage failed, not the model" in notes[0].message and "f5" in notes[0].message
