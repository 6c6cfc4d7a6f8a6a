"""System programs the tests start (Redis, nginx): where they are (or which package brings them), a port for them."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading


class MissingProgram(RuntimeError):
    """A system program the tests need is not installed; the message says which package brings it."""


def find_program(name: str, *, package: str, also: tuple[str, ...] = ()) -> str:
    """The path of ``name`` on PATH, or of the first executable in ``also``.

    Args:
        name: The program (``redis-server``).
        package: The Debian package that installs it, for the error message.
        also: Places to look outside PATH (``/usr/sbin/nginx``: sbin is often not on a user's PATH).

    Raises:
        MissingProgram: It is nowhere; the message names the apt package (``.ci/run`` installs it).
    """
    found = shutil.which(name)
    if found:
        return found
    for path in also:
        if os.access(path, os.X_OK):
            return path
    raise MissingProgram(f"{name} is not installed: apt-get install {package} (.ci/run does it)")


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago (for programs that cannot pick their own)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ForegroundProgram:
    """A server program run in the foreground, its log collected, ready once it logs ``ready_line``.

    Subclasses build the command in their ``start`` and call ``_spawn``, then
    ``_wait_ready`` with a real check of their own (a PING, a GET).
    """

    #: The log line that says the program accepts connections.
    ready_line: str

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.log_lines: list[str] = []
        self._ready = threading.Event()

    @property
    def log(self) -> str:
        return "".join(self.log_lines)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def _spawn(self, command: list[str]) -> None:
        """Start ``command`` with its stdout and stderr read into ``log_lines``."""
        self._ready.clear()  # set by the log reader of an earlier run
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._collect_log, args=(self.process,), daemon=True).start()

    def _wait_ready(self, timeout: float) -> bool:
        """True once the ready line came (or the program exited: the caller's own check tells which)."""
        return self._ready.wait(timeout)

    def _collect_log(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.log_lines.append(line)
            if self.ready_line in line:
                self._ready.set()
        self._ready.set()  # it exited: stop waiting, the caller's own check says it is not there
