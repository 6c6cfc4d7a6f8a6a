"""End to end at scale: the installed ``mfu-chat`` finds one word among 100,000 messages with ``ctrl+f``.

A real ``mfu-chat serve`` runs on a store of 100,000 messages in 1,000
chats (``tests/support/search_store.py``: the store's own tables and its
real FTS5 index, filled in a few seconds), and the installed app runs in a
real terminal (tmux) against it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.search_store import RARE, USER, Needle, fill, index
from tests.support.server import ServerProcess
from tests.support.tmux import TmuxPane, fresh_home, mfu_chat, needs_tmux

MESSAGES = 100_000
#: Words of each message: fewer than the bench's 40 make the fill quicker and change nothing searched here.
WORDS = 12
#: In about a fifth of all messages (the last word of a query is a prefix: ``w1``, ``w10``...).
COMMON = "w1"
NOWHERE = "nowhere"
#: What the search screen says before a word is typed, and again once the box is emptied.
PROMPT = "Type to search every chat."
#: A word of the store's messages.
MESSAGE_WORD = re.compile(rf"w\d+|{RARE}")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ServerProcess, Needle]]:
    """The real server on a store of ``MESSAGES`` messages; the one message that holds ``RARE``."""
    server = ServerProcess(tmp_path)
    needle = fill(server.db_path, MESSAGES, words=WORDS)
    index(server.db_path)
    server.start()
    try:
        yield server, needle
    finally:
        server.kill()


def conversation_words(screen: str) -> str:
    """The words of the messages shown right of the chat list, in order, however the pane wraps them."""
    right = [line.split("▕", 1)[1] for line in screen.splitlines() if "▕" in line]
    return " ".join(word for line in right for word in line.split() if MESSAGE_WORD.fullmatch(word))


def search_for(pane: TmuxPane, words: str) -> None:
    """Empty the search box (``ctrl+u``), wait until the screen says so, and type ``words``."""
    pane.press("C-u")
    pane.wait_for(lambda screen: PROMPT in screen, "the search box emptied")
    pane.type(words)


def hit_headings(screen: str) -> list[int]:
    """The numbers of the screen's lines that head a search hit (its chat's title, who wrote it)."""
    return [n for n, line in enumerate(screen.splitlines()) if "· you ·" in line or "· answer ·" in line]


@needs_tmux
def test_ctrl_f_finds_one_word_among_100000_messages_and_opens_it(
    served: tuple[ServerProcess, Needle], tmp_path: Path
) -> None:
    server, needle = served
    # More messages after it than the pane holds: it is on screen only if its chat opens at it.
    assert needle.later > 15
    env = {**fresh_home(tmp_path), "MFU_TOKEN": server.token(USER)}
    pane = TmuxPane(tmp_path, [mfu_chat(), "--server", server.url], env)
    try:
        pane.wait_for(lambda screen: "● online" in screen, "the green status dot")
        pane.press("C-f")
        pane.wait_for(lambda screen: PROMPT in screen, "the search screen")

        pane.type(NOWHERE)
        screen = pane.wait_for(lambda screen: "No message holds these words." in screen, "the empty state")
        assert "· you ·" not in screen and "· answer ·" not in screen, screen

        search_for(pane, COMMON)
        # Waits for the hits drawn too, not only the count above them (the screen can be caught between).
        screen = pane.wait_for(
            lambda screen: "20+ messages" in screen and len(hit_headings(screen)) >= 5,
            "a full page of a common word's hits",
        )
        # Each hit: its chat's title, who wrote it, then its snippet, where the word is.
        lines = screen.splitlines()
        headings = hit_headings(screen)
        assert all("chat " in lines[n] and COMMON in lines[n + 1] for n in headings[:-1]), screen

        search_for(pane, RARE)
        screen = pane.wait_for(
            lambda screen: "1 message" in screen and len(hit_headings(screen)) == 1,
            "the one message that holds the word",
        )
        lines = screen.splitlines()
        [heading] = hit_headings(screen)
        assert f"{needle.chat_title} · " in lines[heading], screen
        assert RARE in lines[heading + 1] and needle.content.split()[-2] in lines[heading + 1], screen

        pane.press("Enter")
        screen = pane.wait_for(
            lambda screen: (
                "Search every chat" not in screen and f" {needle.content} " in f" {conversation_words(screen)} "
            ),
            "the message, opened",
        )
        assert f"mfu-chat {needle.chat_title} " in screen, screen  # its chat's title in the header
        pane.press("C-q")
        pane.wait_exit()
    finally:
        pane.close()
