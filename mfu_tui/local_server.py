"""Start and stop the embedded server that `mfu-chat` runs when none is configured.

The server runs as a child process (``mfu_tui.server.embedded``) on a free
127.0.0.1 port, with its database in the user data dir and a random secret
made once and kept in the config dir with mode 0600. The child exits when
its stdin closes, so it stops with the app even if the app is killed.
"""

from __future__ import annotations

import getpass
import json
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from mfu_tui.config.paths import Paths, UnreadableFile, private_dir, read_regular_file, tighten_mode, write_private

#: Seconds to wait for the child's "ready" line (a cold start imports the server).
START_TIMEOUT = 20.0
#: Seconds the child gets to flush its store after stdin closes.
STOP_TIMEOUT = 5.0


class LocalServerError(RuntimeError):
    """The embedded server could not start; the message says why, in one line."""


@dataclass
class LocalServer:
    """A running embedded server and what the app needs to talk to it."""

    process: subprocess.Popen[str]
    url: str
    """``ws://127.0.0.1:PORT/ws``."""
    token: str
    """A token for the local user, minted by the child from the secret."""
    provider: str
    """``demo``, or ``openai`` when a local OpenAI-compatible server answered."""
    models_url: str | None = None
    """The OpenAI-compatible server the answers come from, for ``openai``."""

    @property
    def label(self) -> str:
        """What the app's header says: ``local · demo model`` or ``local · models at HOST:PORT``."""
        if self.models_url is None:
            return "local · demo model"
        from urllib.parse import urlsplit

        return f"local · models at {urlsplit(self.models_url).netloc}"

    @classmethod
    def start(cls, paths: Paths, *, log: IO[str] | None = None, debug: bool = False) -> LocalServer:
        """Start the child and wait until it listens.

        Args:
            paths: Where the secret and the database live.
            log: Where the child's log lines go (default: nowhere).
            debug: Log at INFO instead of WARNING.

        Raises:
            LocalServerError: the secret is not a regular file, or the child
                exited or said nothing in time.
        """
        secret_file = ensure_secret(paths.secret_file)
        # Chats are private: the data dir is for its owner only (an older, wider one
        # is tightened); the store makes the database in it 0600.
        private_dir(paths.data_dir)
        command = [
            sys.executable,
            "-m",
            "mfu_tui.server.embedded",
            "--db",
            str(paths.local_database),
            "--secret-file",
            str(secret_file),
            "--user",
            local_user(),
            "--log-level",
            "info" if debug else "warning",
        ]
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log or subprocess.DEVNULL,
            text=True,
            # Its own process group: a ctrl+c meant for the app never reaches it;
            # it stops when we close its stdin.
            start_new_session=True,
        )
        line = _read_line(process, START_TIMEOUT)
        try:
            ready = json.loads(line)
            return cls(process, ready["url"], ready["token"], ready["provider"], ready.get("models_url"))
        except (ValueError, KeyError, TypeError):
            process.kill()
            process.wait()
            raise LocalServerError(
                "the local server did not start"
                + (f" (exit code {process.returncode})" if process.returncode else "")
                + "; run `mfu-chat --debug` and read the log"
            ) from None

    def stop(self) -> None:
        """Close the child's stdin (it stops and flushes), then wait; kill it if it hangs."""
        if self.process.poll() is not None:
            return
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def ensure_secret(path: Path) -> Path:
    """Make the local server's secret once (48 random bytes, mode 0600); return its path.

    Raises:
        LocalServerError: something that is not a small regular file is in its
            place (the child would block on a FIFO, or read ``/dev/zero`` forever).
    """
    try:
        existing = read_regular_file(path)
    except UnreadableFile as problem:
        raise LocalServerError(f"{path}: cannot read the local server's secret ({problem}); delete it") from None
    if existing is None:
        write_private(path, secrets.token_urlsafe(48) + "\n")
    else:  # made wider by hand, or by an older version's directory
        private_dir(path.parent)
        tighten_mode(path)
    return path


def local_user() -> str:
    """The name of the person at this terminal, for the local server's token."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "me"


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The child's first stdout line, or "" if it exits or stays silent for ``timeout``."""
    import selectors

    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return process.stdout.readline()
