"""Run the real server for tests: in-process (``running_server``) or as a subprocess (``ServerProcess``).

Both listen on a free port of 127.0.0.1 with a fresh secret and a database
under the test's ``tmp_path``. Tests of every area use these helpers, so
they start exactly what ``mfu-chat serve`` starts.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from mfu_tui.server import ChatServer, ServerConfig
from mfu_tui.server.auth import mint_token
from mfu_tui.server.store.postgres import is_postgres_url

#: Small and quick defaults for tests; override any ``ServerConfig`` field per test. A stop
#: cuts the running answers at once: tests of the drain ask for one (``drain_timeout``).
TEST_DEFAULTS: dict[str, object] = {"demo_words": 40, "demo_delay_ms": 0.0, "drain_timeout": 0.0}
#: The same for a ``ServerProcess``: its ``env`` or a ``--drain-timeout`` flag asks for a drain.
TEST_ENVIRONMENT = {"MFU_DRAIN_TIMEOUT": "0"}


def new_secret() -> str:
    """A fresh HS256 secret of the required length."""
    return secrets.token_urlsafe(48)


@dataclass
class RunningServer:
    """What ``running_server`` yields."""

    server: ChatServer
    secret: str
    db_path: Path | str

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    def token(self, user: str = "alice", ttl: float = 3600) -> str:
        """A valid token for ``user``."""
        return mint_token(self.secret, user, ttl)


@contextlib.asynccontextmanager
async def running_server(tmp_path: Path, **config_overrides: object) -> AsyncIterator[RunningServer]:
    """Start the real server in this event loop on a free port of 127.0.0.1.

    Args:
        tmp_path: Where the database goes.
        config_overrides: ``ServerConfig`` fields (``demo_words``, ``ping_interval``...).
    """
    secret = str(config_overrides.pop("secret", new_secret()))
    db_path = config_overrides.pop("db_path", tmp_path / "server.sqlite3")
    if not is_postgres_url(db_path):
        db_path = Path(str(db_path))
    settings = {**TEST_DEFAULTS, **config_overrides}
    config = ServerConfig(secret=secret, host="127.0.0.1", port=0, db_path=db_path, **settings)  # type: ignore[arg-type]
    server = ChatServer(config)
    await server.start()
    try:
        yield RunningServer(server=server, secret=secret, db_path=db_path)
    finally:
        await server.stop()


class ServerProcess:
    """``python -m mfu_tui serve`` as a subprocess, for crash and signal tests.

    Args:
        tmp_path: Where the database goes.
        args: Extra command-line flags (``["--demo-delay-ms", "20"]``).
        env: Extra environment variables.
        secret: The JWT secret (several nodes of a cluster share one); a fresh one by default.
        preexec: Run in the child before ``exec`` (``resource.setrlimit``...).
    """

    def __init__(
        self,
        tmp_path: Path,
        *args: str,
        env: dict[str, str] | None = None,
        secret: str | None = None,
        preexec: Callable[[], None] | None = None,
    ) -> None:
        self.secret = secret or new_secret()
        self.db_path = tmp_path / "server.sqlite3"
        self.args = list(args)
        self.env = {**os.environ, **TEST_ENVIRONMENT, **(env or {}), "MFU_JWT_SECRET": self.secret}
        #: Run in the child before the server starts (lower a resource limit...).
        self.preexec = preexec
        self.port = 0
        self.process: subprocess.Popen[str] | None = None
        self.stderr_lines: list[str] = []
        self._stderr_reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def token(self, user: str = "alice", ttl: float = 3600) -> str:
        return mint_token(self.secret, user, ttl)

    def start(self, timeout: float = 20.0) -> None:
        """Start and wait for the "listening on" line (same port as before on a restart)."""
        command = [
            sys.executable, "-m", "mfu_tui", "serve",
            "--host", "127.0.0.1", "--port", str(self.port), "--db", str(self.db_path),
            *self.args,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env, preexec_fn=self.preexec
        )
        self._stderr_reader = threading.Thread(target=self._collect_stderr, args=(self.process,), daemon=True)
        self._stderr_reader.start()
        line = _readline(self.process, timeout)
        prefix = "mfu-chat serve: listening on ws://127.0.0.1:"
        if not line.startswith(prefix):
            self.kill()
            raise RuntimeError(f"server did not start: {line!r}; stderr: {''.join(self.stderr_lines)}")
        self.port = int(line.removeprefix(prefix).split("/", 1)[0])

    def kill(self) -> None:
        """SIGKILL: the server gets no chance to clean up."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        self.wait()

    def terminate(self) -> None:
        """SIGTERM: a graceful stop."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 20.0) -> int:
        """Wait for the process to exit; its return code."""
        assert self.process is not None
        code = self.process.wait(timeout)
        if self._stderr_reader is not None:
            self._stderr_reader.join(timeout)
        return code

    def restart(self) -> None:
        """Start again on the same database and the same port."""
        self.kill()
        self.start()

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)

    def _collect_stderr(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            self.stderr_lines.append(line)


def _readline(process: subprocess.Popen[str], timeout: float) -> str:
    """The first stdout line, or "" if none comes within ``timeout``."""
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    return result[0] if result else ""


def http_get(url: str, timeout: float = 10.0, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """``GET url`` with ``headers`` (blocking: run it in a thread next to an in-process server): status and body."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
