"""End to end: the installed ``mfu-chat`` in a real terminal (tmux) against a server process.

The test types a question with ``tmux send-keys`` and reads the streamed
answer off the screen with ``tmux capture-pane`` (see ``tests/support/tmux.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mfu_tui.server.providers.demo import demo_answer
from tests.server.fake_openai import FakeOpenAI, Script
from tests.support.programs import free_port
from tests.support.server import ServerProcess
from tests.support.tmux import TIMEOUT, TmuxPane, fresh_home, mfu_chat, needs_tmux

WORDS = 45
QUESTION = "What is tmux?"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path, "--demo-words", str(WORDS), "--demo-delay-ms", "5")
    process.start()
    try:
        yield process
    finally:
        process.kill()


@needs_tmux
def test_installed_app_streams_an_answer_in_tmux(server: ServerProcess, tmp_path: Path) -> None:
    env = {**fresh_home(tmp_path), "MFU_TOKEN": server.token("alice")}
    pane = TmuxPane(tmp_path, [mfu_chat(), "--server", server.url], env)
    try:
        # tmux's own clipboard, as its manual says to turn it on (allow-passthrough stays off, the default):
        # the copy must reach it as well as a tmux that passes the sequence through.
        pane.tmux("set-option", "-g", "set-clipboard", "on")
        pane.wait_for(lambda screen: "● online" in screen, "the green status dot")
        pane.type(QUESTION)
        pane.press("Enter")
        answer = demo_answer(QUESTION, WORDS)
        last_words = answer.split()[-3:]
        screen = pane.wait_for(
            lambda screen: " ".join(last_words) in screen and "generating…" not in screen,
            f"the end of the answer ({' '.join(last_words)!r})",
        )
        assert "Demo answer" in screen
        assert f"print({len(QUESTION)})  # characters in the question" in screen
        assert "alice@127.0.0.1" in screen
        pane.press("C-c")  # copies, never quits
        pane.wait_for(lambda screen: "Copied" in screen, "the copy notification")
        assert [buffer.split()[-3:] for buffer in pane.buffers()] == [last_words]
        pane.press("C-q")
        pane.wait_exit()
    finally:
        pane.close()


@needs_tmux
def test_a_word_typed_with_a_message_selected_lands_whole_in_the_message_box(
    server: ServerProcess, tmp_path: Path
) -> None:
    """tmux delivers the word in one read: its e and i, after the q that took the focus, are letters too.

    A paste there goes to the box as well."""
    env = {**fresh_home(tmp_path), "MFU_TOKEN": server.token("alice")}
    pane = TmuxPane(tmp_path, [mfu_chat(), "--server", server.url], env)
    try:
        pane.wait_for(lambda screen: "● online" in screen, "the green status dot")
        pane.type(QUESTION)
        pane.press("Enter")
        pane.wait_for(lambda screen: "Demo answer" in screen and "generating…" not in screen, "the answer")
        pane.press("BTab")  # shift+tab: from the message box to the conversation
        pane.press("Up")
        pane.wait_for(lambda screen: "e Edit" in screen, "a message selected (its keys in the footer)")
        pane.type("queued while offline xq7")
        screen = pane.wait_for(lambda screen: "xq7" in screen, "the typing in the message box")
        assert "│ queued while offline xq7" in screen and "Only your own messages" not in screen, screen
        # A paste (bracketed, as a terminal sends it) in the conversation lands there too.
        pane.press("BTab")
        pane.wait_for(lambda screen: "⏎ Send" not in screen, "the conversation focused")
        pane.tmux("set-buffer", " and pasted zq8")
        pane.tmux("paste-buffer", "-p", "-t", pane.target)
        screen = pane.wait_for(lambda screen: "zq8" in screen, "the paste in the message box")
        assert "│ queued while offline xq7 and pasted zq8" in screen, screen
        pane.press("C-q")
        pane.wait_exit()
    finally:
        pane.close()


ESC = "\x1b"
#: A hostile model's answer: a window title split across chunks, a clipboard write, a C1 clear
#: screen, hidden text, the end of a bracketed paste with a command, a bidi override.
HOSTILE_PIECES = [
    "Look: ", ESC, "]2;pwned-title\x07", f"{ESC}]52;c;cm0gLXJmIH4K\x07", "\x9b2J", f"{ESC}[8mhidden{ESC}[0m ",
    f"{ESC}[201~\x15ls\r", "\u202eend-of-answer",
]  # fmt: skip


@contextlib.contextmanager
def upstream_in_a_thread(**script: Any) -> Iterator[FakeOpenAI]:
    """A fake OpenAI-compatible model server on its own event loop, for a test that blocks on tmux."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    fake = FakeOpenAI()
    asyncio.run_coroutine_threadsafe(fake.__aenter__(), loop).result(TIMEOUT)
    fake.script = Script(**script)
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.__aexit__(None, None, None), loop).result(TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(TIMEOUT)
        loop.close()


@needs_tmux
def test_a_hostile_model_title_user_and_error_never_reach_the_terminal_raw(tmp_path: Path) -> None:
    with upstream_in_a_thread(pieces=HOSTILE_PIECES) as fake:
        fake.models = ["fake-small", f"evil{ESC}]2;model-title\x07"]
        server = ServerProcess(tmp_path, "--provider", "openai", env={"MFU_OPENAI_BASE_URL": fake.base_url})
        server.start()
        # The token's user is shown in the header: a hostile ``sub`` is cleaned too.
        env = {**fresh_home(tmp_path), "MFU_TOKEN": server.token(f"eve{ESC}]2;sub-title\x07")}
        pane = TmuxPane(tmp_path, [mfu_chat(), "--server", server.url], env)
        try:
            pane.tmux("set-option", "-g", "set-clipboard", "on")  # an OSC 52 the app writes becomes a buffer
            pane.wait_for(lambda screen: "● online" in screen, "the green status dot")
            title = pane.pane_title()
            pane.type("Say something nasty")
            pane.press("Enter")
            screen = pane.wait_for(lambda screen: "end-of-answer" in screen, "the end of the hostile answer")
            assert "Look: hidden" in screen and "<U+202E>" in screen  # the sequences dropped whole, not run
            assert "]2;" not in screen and "eve@" in screen
            assert pane.pane_title() == title, "the answer or the token retitled the terminal"
            assert pane.buffers() == [], "the answer wrote the clipboard"

            # The model server fails with a hostile error text: it changes nothing either.
            fake.script = Script(status=500, error_message=f"boom{ESC}]2;error-title\x07")
            pane.type("Again")
            pane.press("Enter")
            pane.wait_for(lambda screen: "failed:" in screen, "the failed answer")
            assert pane.pane_title() == title and pane.buffers() == []

            pane.press("C-c")  # copies the last answer: the one OSC 52 the app writes itself
            pane.wait_for(lambda screen: "Copied" in screen, "the copy notification")
            [copied] = pane.buffers()
            assert ESC not in copied and "\x9b" not in copied and "\x15" not in copied
            assert "Look: hidden" in copied and "end-of-answer" in copied

            pane.press("C-s")
            pane.wait_for(lambda screen: "Exported" in screen, "the export notification")
            [exported] = list(tmp_path.glob("*.md"))
            text = exported.read_text()
            assert ESC not in text and "\x9b" not in text and "end-of-answer" in text
            pane.press("C-q")
            pane.wait_exit()
        finally:
            pane.close()
            server.kill()


@needs_tmux
def test_keys_that_arrive_together_keep_their_order(server: ServerProcess, tmp_path: Path) -> None:
    """Over a laggy link the keys come in one read: a ``ctrl+j`` stays between the letters around it."""
    env = {**fresh_home(tmp_path), "MFU_TOKEN": server.token("alice")}
    pane = TmuxPane(tmp_path, [mfu_chat(), "--server", server.url], env)
    try:
        pane.wait_for(lambda screen: "● online" in screen, "the green status dot")
        pane.type("abc\ndef\nghi")  # one write: tmux sends each "\n" as ctrl+j
        screen = pane.wait_for(lambda screen: "ghi" in screen, "the typed lines")
        box = message_box_lines(screen)
        assert "abc" in box, screen
        start = box.index("abc")
        assert box[start : start + 3] == ["abc", "def", "ghi"], screen
        pane.press("C-q")
        pane.wait_exit()
    finally:
        pane.close()


def message_box_lines(screen: str) -> list[str]:
    """The lines of the message box on ``screen`` (the text between the last two ``│`` of a row), stripped."""
    return [line.rsplit("│", 2)[1].strip() for line in screen.splitlines() if line.count("│") >= 2]


@needs_tmux
def test_a_pasted_escape_sequence_and_line_break_are_cleaned_not_typed_or_sent(
    server: ServerProcess, tmp_path: Path
) -> None:
    """A file with ``ESC [ 2 J`` and a line break, pasted (bracketed): one paste, cleaned in the box, nothing sent."""
    env = {**fresh_home(tmp_path), "MFU_TOKEN": server.token("alice")}
    pane = TmuxPane(tmp_path, [mfu_chat(), "--server", server.url], env)
    try:
        pane.wait_for(lambda screen: "● online" in screen, "the green status dot")
        pasted = tmp_path / "pasted.txt"
        pasted.write_text(f"{ESC}[2J\nsecond line")
        pane.tmux("load-buffer", str(pasted))
        pane.tmux("paste-buffer", "-p", "-t", pane.target)  # -p: bracketed, as the app asked of the terminal
        screen = pane.wait_for(lambda screen: "second line" in screen, "the paste in the message box")
        box = message_box_lines(screen)
        assert "[2J" not in screen and "second line" in box, screen
        assert box[box.index("second line") - 1] == "", screen  # the line break stayed, in the box
        pane.press("Enter")  # sends the paste: the one message, if the paste sent none before
        pane.wait_for(lambda screen: "print(" in screen and "generating…" not in screen, "the answer")
        with contextlib.closing(sqlite3.connect(server.db_path)) as database:
            sent = [content for (content,) in database.execute("SELECT content FROM messages WHERE role = 'user'")]
        assert sent == ["\nsecond line"]
        pane.press("C-q")
        pane.wait_exit()
    finally:
        pane.close()


@needs_tmux
def test_suspend_and_fg_redraw_the_app_and_quit_cleanly(server: ServerProcess, tmp_path: Path) -> None:
    """ctrl+z with nothing to undo suspends to the shell, from the message box too; fg brings the app back whole."""
    env = {**fresh_home(tmp_path), "MFU_TOKEN": server.token("alice"), "PS1": "shell$ "}
    pane = TmuxPane(tmp_path, ["bash", "--norc", "--noprofile", "-i"], env)
    try:
        pane.wait_for(lambda screen: "shell$" in screen, "the shell's prompt")
        pane.type(shlex.join([mfu_chat(), "--server", server.url]))
        pane.press("Enter")
        pane.wait_for(lambda screen: "● online" in screen, "the green status dot")
        pane.press("C-z")  # in the message box, empty: nothing to undo
        pane.wait_for(lambda screen: "Stopped" in screen and "● online" not in screen, "the shell after ctrl+z")
        pane.type("fg")
        pane.press("Enter")
        screen = pane.wait_for(
            lambda screen: "● online" in screen and "Message" in screen and "Chats" in screen, "the app drawn again"
        )
        assert "shell$" not in screen and "Stopped" not in screen, screen
        pane.press("C-q")
        pane.wait_for(lambda screen: "● online" not in screen, "the shell after quitting")
        pane.type("echo exited-$?")
        pane.press("Enter")
        screen = pane.wait_for(lambda screen: "exited-" in screen.replace("echo exited-", ""), "the exit status")
        assert "exited-0" in screen and "RuntimeWarning" not in screen and "Traceback" not in screen, screen
    finally:
        pane.close()


@needs_tmux
def test_a_dropped_terminal_keeps_what_was_being_written(server: ServerProcess, tmp_path: Path) -> None:
    """The terminal goes (an SSH connection dropped: the app gets SIGHUP); the next start has the text back."""
    env = {**fresh_home(tmp_path), "MFU_TOKEN": server.token("alice")}
    pane = TmuxPane(tmp_path, [mfu_chat(), "--server", server.url], env)
    try:
        pane.wait_for(lambda screen: "● online" in screen, "the green status dot")
        pane.type("a long question I was still writing")
        pane.wait_for(lambda screen: "still writing" in screen, "the typed text")
        drafts = tmp_path / ".local" / "share"
        deadline = time.monotonic() + TIMEOUT
        while not any(path.read_text() == "a long question I was still writing" for path in drafts.rglob("draft.txt")):
            assert time.monotonic() < deadline, "the text was never kept"
            time.sleep(0.05)  # the app keeps it a moment after the last key
    finally:
        pane.close()  # tmux kills the pane: SIGHUP, as a dropped SSH connection does
    again_dir = tmp_path / "again"
    again_dir.mkdir()
    again = TmuxPane(again_dir, [mfu_chat(), "--server", server.url], env)
    try:
        screen = again.wait_for(lambda screen: "still writing" in screen, "the text back in the message box")
        assert "│ a long question I was still writing" in screen, screen
        again.press("C-q")
        again.wait_exit()
    finally:
        again.close()


def colour_codes(screen: str) -> list[str]:
    """The SGR parameters in ``screen`` that set a colour (30-38, 40-48, 90-97, 100-107)."""
    found = []
    for parameters in re.findall(r"\x1b\[([0-9;:]*)m", screen):
        for code in parameters.replace(":", ";").split(";"):
            if code.isdigit() and (30 <= int(code) <= 38 or 40 <= int(code) <= 48 or 90 <= int(code) <= 107):
                found.append(code)
    return found


@needs_tmux
@pytest.mark.parametrize(
    ("term", "lang"),
    [("dumb", "C.UTF-8"), ("xterm-256color", "C"), ("linux", "C.UTF-8")],
    ids=["TERM=dumb", "LANG=C", "TERM=linux"],
)
def test_a_terminal_that_shows_only_ascii_gets_only_ascii(
    server: ServerProcess, tmp_path: Path, term: str, lang: str
) -> None:
    env = {**fresh_home(tmp_path), "MFU_TOKEN": server.token("alice"), "TERM": term, "LANG": lang}
    pane = TmuxPane(tmp_path, [mfu_chat(), "--server", server.url], env)
    try:
        pane.wait_for(lambda screen: "[online" in screen, "the status in words")
        pane.type(QUESTION)
        pane.press("Enter")
        screen = pane.wait_for(
            lambda screen: f"print({len(QUESTION)})" in screen and "generating" not in screen, "the whole answer"
        )
        assert screen.isascii(), sorted({character for character in screen if not character.isascii()})
        # Borders, Markdown's bullets, the footer's keys: ASCII that reads as what it stands for.
        assert "+- Message ---" in screen and "* it needs no network" in screen and "enter Send" in screen
        assert "| How do I" not in screen and f"| {QUESTION}" in screen  # the user message's marker
        written = bytes(pane.written)
        assert written and written.isascii(), sorted({byte for byte in written if byte > 127})
        colours = colour_codes(pane.screen_with_escapes())
        if term == "dumb":
            assert colours == [], "colour escapes for TERM=dumb"
        else:
            assert colours, "the check finds colours where the terminal has them"
        pane.press("C-q")
        pane.wait_exit()
    finally:
        pane.close()


@needs_tmux
def test_quitting_with_messages_not_sent_yet_says_they_go_at_the_next_start(
    server: ServerProcess, tmp_path: Path
) -> None:
    env = {**fresh_home(tmp_path), "MFU_TOKEN": server.token("alice")}
    nowhere = f"ws://127.0.0.1:{free_port()}/ws"  # nothing listens: the message waits in the outbox
    pane = TmuxPane(tmp_path, [mfu_chat(), "--server", nowhere], env)
    try:
        pane.wait_for(lambda screen: "retry in" in screen or "offline" in screen, "the dot saying why it waits")
        pane.type("sent while offline")
        pane.press("Enter")
        pane.wait_for(lambda screen: "sending…" in screen, "the message marked sending")
        pane.press("C-q")
        pane.wait_exit()
        assert b"mfu-chat: 1 message(s) not sent yet: they go at the next start of mfu-chat." in pane.written
    finally:
        pane.close()
