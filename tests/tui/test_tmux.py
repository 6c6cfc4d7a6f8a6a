"""End to end: the installed ``mfu-chat`` in a real terminal (tmux) against a server process.

The test types a question with ``tmux send-keys`` and reads the streamed
answer off the screen with ``tmux capture-pane`` (see ``tests/support/tmux.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mfu_tui.server.providers.demo import demo_answer
from tests.support.server import ServerProcess
from tests.support.tmux import TmuxPane, fresh_home, mfu_chat, needs_tmux

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
        pane.press("C-q")
        pane.wait_exit()
    finally:
        pane.close()
