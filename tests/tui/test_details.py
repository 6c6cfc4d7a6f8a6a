"""The message details screen (i on a selected message), against the real server and its demo model."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from textual.command import CommandList
from textual.screen import Screen
from textual.widgets import Static

from mfu_tui.client import ClientError
from mfu_tui.protocol import StoredMessage, Usage
from mfu_tui.tui.app import ChatApp
from mfu_tui.tui.screens.details import UNKNOWN, DetailsScreen, detail_rows, failure_words
from tests.support.server import RunningServer
from tests.tui.conftest import WORDS
from tests.tui.helpers import burst, make_app, ready, settle
from tests.tui.test_flows import SIZE, ask, until


def shown(app: ChatApp) -> dict[str, str]:
    """The details screen's lines, label to value, as drawn."""
    assert isinstance(app.screen, DetailsScreen)
    rows = [[str(cell.render()) for cell in row.query(Static)] for row in app.screen.query(".row")]
    return {label.removesuffix(":"): value for label, value in rows}


def status_of(screen: Screen[object]) -> list[str]:
    """The line a details screen shows instead of the details (loading them, or why they are not)."""
    return [str(line.render()) for line in screen.query("#status")]


def details_shown(app: ChatApp) -> bool:
    """Whether the details screen is open with the message's details."""
    return isinstance(app.screen, DetailsScreen) and app.screen.message is not None and bool(app.screen.query(".row"))


async def open_details(app: ChatApp, pilot, *keys: str) -> dict[str, str]:
    """Press ``keys``, wait for the details to be fetched and shown, and read them."""
    await pilot.press(*keys)
    await until(pilot, lambda: details_shown(app), "the details screen")
    return shown(app)


async def test_i_on_a_streamed_answer_shows_its_model_time_tokens_and_speed(
    server: RunningServer, tmp_path: Path
) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        complete = await ask(app, pilot, "How do I print?")
        answer = app.conversation.views[-1]
        assert answer.record is None  # seen streaming: the app has no record of it yet
        app.conversation.focus()
        details = await open_details(app, pilot, "up", "i")
        kept = answer.record
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, DetailsScreen), "the details closed")
        # Up once more: the question.
        question = await open_details(app, pilot, "up", "i")
        hint = app.screen.query_one(".hint", Static).render()
    assert details["Message"] == "an answer"
    assert details["Model"] == "the server's default (demo)"
    assert details["Ended"] == "the model finished"
    # The demo model counts words: the question's four, the answer's pieces.
    assert (details["Prompt tokens"], details["Completion tokens"]) == ("4", str(WORDS))
    assert details["Time to first token"] == f"{complete.first_token_ms} ms"
    assert details["Tokens per second"] == f"{complete.tokens_per_second:,.1f} tokens/s"
    assert kept is not None and kept.usage == complete.usage  # asked of the server once, then kept
    assert question["Message"] == "yours" and "Prompt tokens" not in question
    assert "measured for answers" in str(hint)


async def test_keys_read_with_i_go_to_the_details_which_say_loading_until_they_come(
    server: RunningServer, tmp_path: Path
) -> None:
    # An answer seen streaming has no record yet: its details are asked of the server. The dialog opened only
    # when they came, and the keys read with i acted in the pane meanwhile (c copied the message, b its code).
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await ask(app, pilot, "How do I print?")
        app.conversation.focus()
        await pilot.press("up")
        assert app.conversation.selected_view is not None and app.conversation.selected_view.record is None
        first_drawn: list[list[str]] = []

        def opened(screen: Screen[object]) -> None:
            if isinstance(screen, DetailsScreen):  # once composed, before anything came back from the server
                screen.call_later(lambda: first_drawn.append(status_of(screen)))

        app.screen_change_signal.subscribe(app, opened)
        burst(app, "i", "c", "b")
        await until(pilot, lambda: details_shown(app) or bool(app.clipboard), "the details or a copy")
        assert app.clipboard == ""
        await until(pilot, lambda: details_shown(app), "the details")
        details = shown(app)
        assert first_drawn == [["Loading the details from the server…"]]
        burst(app, "escape")
        await until(pilot, lambda: not isinstance(app.screen, DetailsScreen), "the details closed")
    assert details["Message"] == "an answer" and details["Completion tokens"] == str(WORDS)


async def test_details_that_cannot_be_fetched_say_why_in_one_line(server: RunningServer, tmp_path: Path) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await ask(app, pilot, "How do I print?")
        await app.client.close()  # the answer seen streaming has no record, and none can be asked for now
        app.conversation.focus()
        await pilot.press("up", "i")
        failed = lambda: isinstance(app.screen, DetailsScreen) and app.screen.failure is not None  # noqa: E731
        await until(pilot, failed, "the failure said")
        [line] = status_of(app.screen)
        assert line.startswith("Could not get the details: not connected") and not app.screen.query(".row")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, DetailsScreen), "the details closed")


def test_why_details_are_missing_is_one_line_without_controls() -> None:
    hostile = ClientError("no such chat\x1b]2;owned\x07\r\n\tsee\x9b2J the log")
    assert failure_words(hostile) == "Could not get the details: no such chat see the log"
    assert failure_words(TimeoutError()) == "Could not get the details: the server did not answer in time."
    assert failure_words(None) == "Could not get the details: this message is no longer on the server."


async def test_a_loaded_chat_shows_details_from_its_page_even_with_the_server_gone(
    server: RunningServer, tmp_path: Path
) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        complete = await ask(app, pilot, "What is a monad?")
        app.load_chat(complete.chat_id)  # the chat again, from the server's page
        await settle(app, pilot)
        assert all(view.record is not None for view in app.conversation.views)
        await app.client.close()
        app.conversation.focus()
        details = await open_details(app, pilot, "up", "i")
    assert details["Prompt tokens"] == "4" and details["Ended"] == "the model finished"


async def test_the_palette_shows_the_last_answers_details(server: RunningServer, tmp_path: Path) -> None:
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await ask(app, pilot, "Hello there")
        listed = lambda: bool(app.screen.query(CommandList)) and app.screen.query_one(CommandList).option_count == 1  # noqa: E731
        await pilot.press("ctrl+p", *"message details")
        await until(pilot, listed, "the palette's command")
        details = await open_details(app, pilot, "enter")
    assert details["Message"] == "an answer" and details["Completion tokens"] == str(WORDS)


def test_what_is_not_known_is_said_so_and_each_ending_in_words() -> None:
    when = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
    old = StoredMessage(id="m", role="assistant", content="hi", created_at=when, finish_reason="stop")
    rows = dict(detail_rows(old, None))
    assert [rows[label] for label in ("Prompt tokens", "Completion tokens", "Time to first token")] == [UNKNOWN] * 3
    assert rows["Tokens per second"] == UNKNOWN and rows["Model"] == "the server's default"
    measured = StoredMessage(
        id="m",
        role="assistant",
        content="hi",
        created_at=when,
        model_id="gpt-4o-mini",
        usage=Usage(prompt_tokens=12345, completion_tokens=None),
        first_token_ms=1250,
        tokens_per_second=0.25,
    )
    rows = dict(detail_rows(measured, "demo"))
    assert (rows["Model"], rows["Prompt tokens"], rows["Completion tokens"]) == ("gpt-4o-mini", "12,345", UNKNOWN)
    assert (rows["Time to first token"], rows["Tokens per second"]) == ("1.25 s", "0.2 tokens/s")
    endings = {
        reason: dict(
            detail_rows(
                StoredMessage(id="m", role="assistant", content="", created_at=when, finish_reason=reason), None
            )
        )["Ended"]
        for reason in ("cancelled", "length", "interrupted", "error", "store_failed", "content_filter", "tool_calls")
    }
    assert endings == {
        "cancelled": "stopped by you",
        "length": "length limit: cut off",
        "interrupted": "interrupted: the server stopped while it was written",
        "error": "failed: the model server gave no whole answer",
        "store_failed": "failed: the server could not store it (its database failed)",
        "content_filter": "stopped by the model server's content filter",
        "tool_calls": "the model asked to call a tool (this app offers none)",
    }
