"""Search every chat from the app: ctrl+f and the command palette, against the real server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mfu_tui.tui import AppChoices
from mfu_tui.tui.app import ChatApp
from mfu_tui.tui.commands import ChatsProvider
from mfu_tui.tui.screens.search import MATCH_STYLE, SearchScreen
from tests.server.peer import peer
from tests.server.test_generation import send_message
from tests.support.server import RunningServer, running_server
from tests.tui.conftest import WORDS
from tests.tui.helpers import TIMEOUT, make_app, ready, settle

SIZE = (100, 32)
#: A word in one message only, the second of a chat of many.
RARE = "capybaras"
#: Exchanges after it: more than a page of ``get_chat`` (50 messages), so opening it pages back.
LATER = 25


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    """The real server, with room for the questions ``fill`` asks at once (the rate limit's burst)."""
    async with running_server(tmp_path, demo_words=WORDS, demo_delay_ms=0, message_burst=LATER + 10) as running:
        yield running


async def fill(server: RunningServer) -> tuple[str, str, str]:
    """A chat whose early question holds ``RARE``, with many after it, and another chat.

    Returns:
        The chat, the question and its answer (the demo model quotes the question).
    """
    async with peer(server.url, server.token()) as raw:
        first = await send_message(raw, "Tell me about rodents")
        await raw.stream(first.reply_id)
        needle = await send_message(raw, f"Where do {RARE} sleep at night?", first.chat_id)
        await raw.stream(needle.reply_id)
        for n in range(LATER):
            ack = await send_message(raw, f"follow-up question {n}", first.chat_id)
            await raw.stream(ack.reply_id)
        other = await send_message(raw, "A chat about something else")
        await raw.stream(other.reply_id)
    return needle.chat_id, needle.message_id, needle.reply_id


def shown(app: ChatApp, message_id: str) -> bool:
    """The message is selected and inside the conversation's visible part."""
    conversation = app.conversation
    view = conversation.selected_view
    if view is None or view.message_id != message_id:
        return False
    top = view.virtual_region.y
    return conversation.scroll_y <= top < conversation.scroll_y + conversation.scrollable_content_region.height


async def test_ctrl_f_finds_one_word_and_opens_its_chat_at_the_message(server: RunningServer, tmp_path: Path) -> None:
    chat_id, message_id, reply_id = await fill(server)
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        assert app.chat_id is None
        await pilot.press("ctrl+f")
        screen = app.screen
        assert isinstance(screen, SearchScreen)
        await pilot.press(*'"capy')  # an operator and a word cut short, as typed
        async with asyncio.timeout(TIMEOUT):
            await screen.settled()
        await pilot.pause()
        assert [(hit.chat_id, hit.message_id) for hit in screen.hits] == [(chat_id, reply_id), (chat_id, message_id)]
        hit = screen.hits[1]
        assert [hit.snippet[start:end] for start, end in hit.highlights] == [RARE]
        prompt = screen.query_one("OptionList").get_option_at_index(1).prompt
        assert (prompt.plain.split("\n")[1], str(prompt.spans[-1].style)) == (hit.snippet, MATCH_STYLE)

        await pilot.press("down", "enter")  # the question: 52 messages back, before the first page
        await settle(app, pilot)
        assert not isinstance(app.screen, SearchScreen)
        assert app.chat_id == chat_id
        assert shown(app, message_id)


async def test_a_search_with_no_words_or_no_match_says_so(server: RunningServer, tmp_path: Path) -> None:
    app = make_app(server.url, server.token(), tmp_path, choices=AppChoices(keymap={"app.search": "ctrl+t"}))
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        await pilot.press("ctrl+t")  # remapped by its id
        screen = app.screen
        assert isinstance(screen, SearchScreen)
        status = screen.query_one("#status")
        for typed, said in [('" * -', "Type a word: letters or digits."), ("a", "No message holds these words.")]:
            await pilot.press(*typed)
            async with asyncio.timeout(TIMEOUT):
                await screen.settled()
            await pilot.pause()
            assert (str(status.render()), screen.hits) == (said, [])
            screen.query_one("Input").value = ""
        await pilot.press("escape")
        assert not isinstance(app.screen, SearchScreen) and app.chat_id is None


async def test_the_palette_finds_messages_by_their_words_and_opens_them(server: RunningServer, tmp_path: Path) -> None:
    chat_id, message_id, _ = await fill(server)
    app = make_app(server.url, server.token(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(app, pilot)
        provider = ChatsProvider(app.screen)
        hits = [hit async for hit in provider.search(f"where {RARE}")]
        # The answer (the demo model quotes the question), then the question; below title matches.
        assert [hit.text.startswith("Demo answer · ") for hit in hits] == [True, False]  # as text, not Markdown
        assert hits[-1].text == f"Where do {RARE} sleep at night?" and hits[0].score > hits[1].score
        hits[-1].command()
        await settle(app, pilot)
        assert app.chat_id == chat_id
        assert shown(app, message_id)
