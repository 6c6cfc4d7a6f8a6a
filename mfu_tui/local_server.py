"""Join the local server `mfu-chat` shares when none is configured, starting it if none runs.

Every `mfu-chat` of a user on the same data dir uses one server: the first
starts it (``mfu_tui.embedded_server``, a process of its own on a free
127.0.0.1 port, its database in the data dir, its secret made once and kept
in the config dir with mode 0600), the next ones find it through the
discovery dir (``mfu_tui.local_discovery``) and join it. The server stays
while any app uses it and stops a few seconds after the last one quits (or
dies): nothing is lost, and there is never a second writer on the database.

Where its answers come from is the ``provider`` setting of the app that
started it (``auto``, ``demo`` or a model server's URL), passed in the
server's environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import urlsplit

from mfu_tui.config.paths import Paths, UnreadableFile, private_dir, read_regular_file, tighten_mode, write_private
from mfu_tui.file_lock import LOCK_POLL_SECONDS, Lock, is_free
from mfu_tui.local_discovery import Discovery
from mfu_tui.redaction import redact_password

log = logging.getLogger(__name__)

#: Seconds to wait for the server's "ready" line (a cold start imports the server).
START_TIMEOUT = 20.0
#: Seconds to wait for another app that is starting the server, or for a server that is stopping.
JOIN_TIMEOUT = 40.0
#: Seconds a running server's port gets to accept a connection.
CONNECT_TIMEOUT = 2.0
#: What names the local account's outbox and read cache in the data dir (the client's
#: ``account``): not the server's URL, whose port changes with each start.
LOCAL_ACCOUNT = "local"


class LocalServerError(RuntimeError):
    """The embedded server could not start; the message says why, in one line."""


@dataclass
class LocalServer:
    """The running local server this app uses, and what the app needs to talk to it."""

    pid: int
    """The server's process."""
    url: str
    """``ws://127.0.0.1:PORT/ws``."""
    token: str
    """A token for the local user, minted by the server from the secret."""
    provider: str
    """``demo``, or ``openai`` when a local OpenAI-compatible server answered."""
    models_url: str | None = None
    """The OpenAI-compatible server the answers come from, for ``openai``."""
    setting: str = "auto"
    """The ``provider`` setting it started with: ``auto``, ``demo`` or a URL."""
    answered: bool = False
    """The model server at ``models_url`` listed its models at start."""
    started: bool = False
    """This app started the server (the others joined it)."""
    wanted: str = "auto"
    """This app's ``provider`` setting, which a server it joined may not have."""
    _apps_lock: Lock | None = field(default=None, repr=False)
    """Held shared while this app uses the server: the server stays while anyone holds it."""

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
        one the user chose does not, or that the server this app joined was
        started with another ``provider`` than this app's. ``None`` otherwise.
        """
        if self.wanted != self.setting:
            return (
                "Local server shared",
                f'Another mfu-chat started the local server with provider = "{redact_password(self.setting)}"; '
                f'yours ("{redact_password(self.wanted)}") applies once every mfu-chat has quit.',
                "information",
            )
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
    def join(
        cls,
        paths: Paths,
        *,
        provider: str = "auto",
        probe_url: str | None = None,
        log: IO[str] | None = None,
        debug: bool = False,
    ) -> LocalServer:
        """Join the server running on ``paths``' database, or start it if none runs.

        Under the discovery dir's ``start.lock``, so two apps started at the
        same instant end on one server. A ``server.json`` left by a server
        that is gone (the database's lock free) is replaced.

        Args:
            paths: Where the secret and the database live.
            provider: The ``provider`` setting, for a server started now: ``auto``,
                ``demo`` or a model server's URL (a running one keeps its own).
            probe_url: What ``auto`` probes (default: the server's, MFU_OPENAI_BASE_URL or Ollama's).
            log: Where a started server's log lines go (default: nowhere).
            debug: Log at INFO instead of WARNING.

        Raises:
            LocalServerError: the secret is not a regular file, the server did
                not start, or a running one does not answer.
        """
        secret_file = ensure_secret(paths.secret_file)
        # Chats are private: the data dir is for its owner only (an older, wider one
        # is tightened); the store makes the database in it 0600.
        private_dir(paths.data_dir)
        try:
            discovery = Discovery.for_paths(paths)
        except OSError as error:
            raise LocalServerError(f"cannot make the local server's discovery dir ({error})") from None
        start_lock = Lock(discovery.start_lock)
        if not start_lock.acquire(JOIN_TIMEOUT):
            raise LocalServerError(
                f"another mfu-chat has been starting or stopping the local server for {JOIN_TIMEOUT:g} s "
                f"({discovery.start_lock}); try again"
            )
        apps_lock = Lock(discovery.apps_lock)
        try:
            # No other app can join while this one holds start.lock: free now means unused.
            alone = is_free(discovery.apps_lock)
            # Before the server is looked for: a server deciding to stop sees this app.
            if not apps_lock.acquire(JOIN_TIMEOUT, shared=True):
                raise LocalServerError(f"cannot take {discovery.apps_lock}; try again")
            info = _running(discovery)
            if info is not None and alone and info.get("setting") != provider:
                # A server only waiting out its grace period, started with another provider
                # (the user changed it and started again): this app's setting wins.
                _stop(discovery, info["pid"])
                info = None
            started = info is None
            if info is None:
                info = _start(paths, secret_file, discovery, provider, probe_url, log, debug)
            return cls(
                info["pid"],
                info["url"],
                info["token"],
                info["provider"],
                info.get("models_url"),
                info.get("setting", provider),
                bool(info.get("answered")),
                started,
                provider,
                apps_lock,
            )
        except (LocalServerError, KeyError, TypeError) as error:
            apps_lock.release()
            if isinstance(error, LocalServerError):
                raise
            raise LocalServerError(f"{discovery.info_file}: not a local server's description; delete it") from None
        finally:
            start_lock.release()

    def leave(self) -> None:
        """Stop using the server; it stops a few seconds after the last app left."""
        if self._apps_lock is not None:
            self._apps_lock.release()


@dataclass
class LocalUse:
    """This app's use of the local server: joined after the app's first frame, kept across the server's restarts.

    The app calls ``start`` in a thread once its first screen is drawn (a
    cold start takes seconds), and again when the user retries after it
    failed. A local server that died later (kill -9, a crash, the OOM killer)
    leaves the app retrying a port nobody listens on. The client asks
    ``relocate`` after each failed attempt: it joins again, under
    ``start.lock`` as at start, which finds the server another app started
    meanwhile or starts one.
    """

    join: Callable[[], LocalServer]
    """``LocalServer.join`` with this app's arguments."""
    server: LocalServer | None = None
    """The server in use; ``None`` until ``start`` returned."""

    def start(self) -> LocalServer:
        """Join the local server, starting it if none runs; blocks for seconds (call it in a thread).

        Raises:
            LocalServerError: it could not be started or joined; the message says why.
        """
        self.server = self.join()
        return self.server

    async def relocate(self) -> tuple[str, str] | None:
        """The ``(url, token)`` of the server that replaced the one in use, or ``None`` while that one runs."""
        if self.server is None:  # not started: the client has no server to have lost
            return None
        try:
            server = await asyncio.to_thread(self.join)
        except LocalServerError as error:
            log.warning("cannot start the local server again: %s", error)
            return None
        if (server.pid, server.url) == (self.server.pid, self.server.url):
            server.leave()  # the same server: it is up, the connection failed for another reason
            return None
        log.info("the local server (pid %s) is gone: now using pid %s", self.server.pid, server.pid)
        self.server.leave()
        self.server = server
        return server.url, server.token

    def leave(self) -> None:
        """Stop using the server in use, if any (see ``LocalServer.leave``)."""
        if self.server is not None:
            self.server.leave()


def _running(discovery: Discovery) -> dict[str, Any] | None:
    """What ``server.json`` says of the server running now, or ``None`` if none runs.

    Raises:
        LocalServerError: a server holds the database but does not answer.
    """
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if is_free(discovery.server_lock):
            # Gone (or never there): its server.json, if any, is stale.
            discovery.info_file.unlink(missing_ok=True)
            return None
        info = discovery.read_info()
        if info is not None and _answers(info.get("port")):
            return info
        # A server that an app started and then died is still writing server.json: wait a little.
        if time.monotonic() >= deadline:
            pid = info.get("pid") if info else None
            raise LocalServerError(
                f"a local server{f' (pid {pid})' if pid else ''} holds {discovery.database} but does not "
                f"answer, or was started from a login session whose runtime dir is not {discovery.directory.parent} "
                "(XDG_RUNTIME_DIR differs); quit the mfu-chat using it, or stop it, and start again"
            )
        time.sleep(LOCK_POLL_SECONDS)


def _stop(discovery: Discovery, pid: int) -> None:
    """Stop the unused server ``pid`` and wait until it let the database go.

    Raises:
        LocalServerError: it is still there after ``JOIN_TIMEOUT`` seconds.
    """
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + JOIN_TIMEOUT
    while not is_free(discovery.server_lock):
        if time.monotonic() >= deadline:
            raise LocalServerError(f"the local server (pid {pid}) did not stop; stop it and start again")
        time.sleep(LOCK_POLL_SECONDS)


def _answers(port: object) -> bool:
    """Something accepts connections on loopback ``port``."""
    if not isinstance(port, int):
        return False
    try:
        socket.create_connection(("127.0.0.1", port), CONNECT_TIMEOUT).close()
    except OSError:
        return False
    return True


def _start(
    paths: Paths,
    secret_file: Path,
    discovery: Discovery,
    provider: str,
    probe_url: str | None,
    log: IO[str] | None,
    debug: bool,
) -> dict[str, Any]:
    """Start the server and wait until it listens; what it said when ready.

    Raises:
        LocalServerError: it exited or said nothing in time.
    """
    command = [
        sys.executable,
        "-m",
        "mfu_tui.embedded_server",
        "--db",
        str(paths.local_database),
        "--secret-file",
        str(secret_file),
        "--user",
        local_user(),
        "--discovery",
        str(discovery.directory),
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
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log or subprocess.DEVNULL,
        text=True,
        # Its own session: a ctrl+c or a hangup meant for this app never reaches a
        # server that other apps may be using; it stops when the last app left.
        start_new_session=True,
    )
    line = _read_line(process, START_TIMEOUT)
    assert process.stdout is not None
    process.stdout.close()  # the server writes nothing more there
    try:
        ready = json.loads(line)
        if not isinstance(ready, dict):
            raise TypeError(ready)
        return ready
    except (ValueError, TypeError):
        process.kill()
        process.wait()
        raise LocalServerError(
            "the local server did not start"
            + (f" (exit code {process.returncode})" if process.returncode else "")
            + "; run `mfu-chat --debug` and read the log"
        ) from None


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
        import secrets  # with hmac and hashlib: here, after the app's first frame, not with the module

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
