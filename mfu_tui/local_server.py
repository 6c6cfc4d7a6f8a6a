"""Start and stop the embedded server that `mfu-chat` runs when none is configured.

The server runs as a child process (``mfu_tui.server.embedded``) on a free
127.0.0.1 port, with its database in the user data dir and a random secret
made once and kept in the config dir with mode 0600. The child exits when
its stdin closes, so it stops with the app even if the app is killed.

Where its answers come from is the user's ``provider`` setting (``auto``,
``demo`` or a model server's URL), passed in the child's environment.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal
from urllib.parse import urlsplit

from mfu_tui.config.paths import Paths, UnreadableFile, private_dir, read_regular_file, tighten_mode, write_private
from mfu_tui.redaction import redact_password

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
    setting: str = "auto"
    """The ``provider`` setting it started with: ``auto``, ``demo`` or a URL."""
    answered: bool = False
    """The model server at ``models_url`` listed its models at start."""

    @property
    def label(self) -> str:
        """What the app's header says: ``local · demo model`` or ``local · models at HOST:PORT``."""
        if self.models_url is None:
            return "local · demo model"
        return f"local · models at {_host_port(self.models_url)}"

    @property
    def notice(self) -> tuple[str, str, Literal["information", "warning"]] | None:
        """What the app says once at start about where answers come from: (title, message, severity).

        Only what the header cannot say: that a model server found by probing
        answers (on a shared machine, it may be someone else's), or that the
        one the user chose does not. ``None`` otherwise.
        """
        if self.models_url is None:
            return None
        where = _host_port(self.models_url)
        if self.setting == "auto":
            return (
                "Model server",
                f"Answers come from the model server at {where} (found by probing). "
                f'Pin it with provider = "{redact_password(self.models_url)}" in the config, '
                'or provider = "demo".',
                "information",
            )
        if not self.answered:
            return (
                "Model server not answering",
                f"The model server at {where} (your provider setting) does not answer. Answers fail "
                "until it does; the demo model does not stand in for it.",
                "warning",
            )
        return None

    @classmethod
    def start(
        cls,
        paths: Paths,
        *,
        provider: str = "auto",
        probe_url: str | None = None,
        log: IO[str] | None = None,
        debug: bool = False,
    ) -> LocalServer:
        """Start the child and wait until it listens.

        Args:
            paths: Where the secret and the database live.
            provider: The ``provider`` setting: ``auto``, ``demo`` or a model server's URL.
            probe_url: What ``auto`` probes (default: the child's, MFU_OPENAI_BASE_URL or Ollama's).
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
        # In the environment, not argv: a model server's URL may carry a password, and
        # every user of the machine can read argv (ps).
        env = {**os.environ, "MFU_PROVIDER": provider}
        if probe_url is not None:
            env["MFU_OPENAI_BASE_URL"] = probe_url
        process = subprocess.Popen(
            command,
            env=env,
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
            return cls(
                process,
                ready["url"],
                ready["token"],
                ready["provider"],
                ready.get("models_url"),
                provider,
                bool(ready.get("answered")),
            )
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


def _host_port(url: str) -> str:
    """``HOST:PORT`` of ``url``, without the user and password it may carry."""
    return urlsplit(url).netloc.rpartition("@")[2]


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The child's first stdout line, or "" if it exits or stays silent for ``timeout``."""
    import selectors

    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return process.stdout.readline()
