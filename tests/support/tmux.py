"""Run the installed ``mfu-chat`` in a real terminal (a private tmux server) and read its screen.

The helper re-reads the screen each time the app writes to the terminal
(tmux's ``pipe-pane`` copies the pane's output into a FIFO it blocks on), so
tests wait on output, not on time.
"""

from __future__ import annotations

import os
import select
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

#: A safety net only: a wait ends as soon as the screen shows what it waits for.
TIMEOUT = 30.0

needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def fresh_home(tmp_path: Path) -> dict[str, str]:
    """The environment of a user on a fresh machine: every platformdirs path under ``tmp_path``."""
    return {
        "LANG": "C.UTF-8",
        "TERM": "xterm-256color",
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / ".local" / "share"),
        "XDG_CONFIG_HOME": str(tmp_path / ".config"),
        "XDG_STATE_HOME": str(tmp_path / ".local" / "state"),
        "XDG_CACHE_HOME": str(tmp_path / ".cache"),
        "XDG_RUNTIME_DIR": str(tmp_path / "run"),
    }


def mfu_chat() -> str:
    """The ``mfu-chat`` script of this virtualenv."""
    found = shutil.which("mfu-chat", path=str(Path(sys.executable).parent)) or shutil.which("mfu-chat")
    assert found, "mfu-chat is not installed in this environment (pip install -e .)"
    return found


class TmuxPane:
    """A command running in a detached tmux session on a private tmux server."""

    def __init__(self, tmp_path: Path, command: list[str], env: dict[str, str]) -> None:
        self.socket = f"mfu-chat-test-{os.getpid()}-{tmp_path.name}"
        self.target = "app"
        fifo = tmp_path / "pane.fifo"
        os.mkfifo(fifo)
        # Open the reading end first so tmux's writer never blocks.
        self._fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self.written = bytearray()
        """Every byte the program wrote to the terminal that a wait has read so far."""
        exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items())
        self.tmux(
            "new-session", "-d", "-s", self.target, "-x", "100", "-y", "30", "-c", str(tmp_path),
            f"env {exports} {shlex.join(command)}",
        )  # fmt: skip
        self.tmux("pipe-pane", "-t", self.target, "-o", f"cat > {shlex.quote(str(fifo))}")

    def tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], check=True, capture_output=True, text=True, timeout=TIMEOUT
        ).stdout

    def screen(self) -> str:
        """The text on the pane now."""
        return self.tmux("capture-pane", "-p", "-t", self.target)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", self.target, "-l", text)

    def press(self, key: str) -> None:
        self.tmux("send-keys", "-t", self.target, key)

    def wait_for(self, predicate: Callable[[str], bool], what: str) -> str:
        """The screen once ``predicate`` holds, re-checked whenever the app writes output."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            screen = self.screen()
            if predicate(screen):
                return screen
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self._fd], [], [], max(remaining, 0))
            if not ready:
                pytest.fail(f"the screen never showed {what}:\n{screen}")
            if not self._read():
                pytest.fail(f"the app exited before showing {what}:\n{screen}")

    def wait_exit(self) -> None:
        """Wait until the pane's program ended (its output pipe closes)."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self._fd], [], [], deadline - time.monotonic())
            if ready and not self._read():
                return
        pytest.fail("the app did not exit")

    def _read(self) -> bytes:
        """What the program wrote since the last read (kept in ``written``); b"" once it closed."""
        chunk = os.read(self._fd, 1 << 16)
        self.written += chunk
        return chunk

    def screen_with_escapes(self) -> str:
        """The pane's text with the escape sequences of its colours and attributes (``capture-pane -e``)."""
        return self.tmux("capture-pane", "-p", "-e", "-t", self.target)

    def pane_title(self) -> str:
        """The pane's title: what a program set with ``ESC ] 2 ;`` (the host name until then)."""
        return self.tmux("display-message", "-p", "-t", self.target, "#{pane_title}").strip()

    def buffers(self) -> list[str]:
        """tmux's paste buffers, newest first: with ``set-clipboard on``, every OSC 52 the program wrote."""
        names = self.tmux("list-buffers", "-F", "#{buffer_name}").split()
        return [self.tmux("show-buffer", "-b", name) for name in names]

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], check=False, capture_output=True, timeout=TIMEOUT)
        os.close(self._fd)
