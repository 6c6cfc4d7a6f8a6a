"""A real Redis server for the tests, on a free loopback port in a temporary directory.

``redis_url`` gives each test its own ``redis-server`` (it starts in a few
milliseconds): Redis pub/sub channels are shared by every database of a
server, so one server per test is what keeps tests from hearing each other.
Use it from a ``conftest.py``::

    from tests.support.redis import redis_url  # noqa: F401

Nothing is persisted (``--save '' --appendonly no``) and it listens on
127.0.0.1 only. The binary comes from the Debian ``redis-server`` package,
which ``.ci/run`` installs when missing; without it the tests FAIL (never
skip) and say so. ``running_redis`` is the same without pytest, for benches.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.programs import ForegroundProgram, MissingProgram, find_program, free_port


class RedisServer(ForegroundProgram):
    """One ``redis-server`` process in the foreground, logging to our pipe.

    Args:
        binary: The ``redis-server`` executable.
        workdir: An empty directory; Redis's working directory.
    """

    ready_line = "Ready to accept connections"

    def __init__(self, binary: str, workdir: Path) -> None:
        super().__init__()
        self.binary = binary
        self.workdir = workdir
        self.port = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> None:
        """Start (on a free port, or the same one again after a stop); return once a ``PING`` got ``PONG``."""
        self.port = self.port or free_port()
        self._spawn([
            self.binary,
            "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--dir", str(self.workdir), "--logfile", "",
        ])  # fmt: skip
        # The log line says the listener is open; the PING proves it answers.
        if not self._wait_ready(timeout) or not self.ping(timeout):
            self.stop()
            raise RuntimeError(f"redis-server did not start on port {self.port}:\n{self.log}")

    def ping(self, timeout: float) -> bool:
        """True if the server answers a RESP ``PING`` with ``+PONG``."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as connection:
                connection.sendall(b"*1\r\n$4\r\nPING\r\n")
                return connection.recv(64).startswith(b"+PONG")
        except OSError:
            return False


def find_redis() -> str:
    """The ``redis-server`` executable.

    Raises:
        MissingProgram: It is not installed.
    """
    return find_program("redis-server", package="redis-server", also=("/usr/bin/redis-server",))


@contextlib.contextmanager
def running_redis() -> Iterator[RedisServer]:
    """A fresh Redis server, stopped and its directory removed at the end, even after a failure.

    Raises:
        MissingProgram: ``redis-server`` is not installed.
    """
    binary = find_redis()
    workdir = Path(tempfile.mkdtemp(prefix="mfu-redis-"))
    server = RedisServer(binary, workdir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The ``redis://`` URL of a Redis server of this test's own."""
    try:
        find_redis()
    except MissingProgram as error:
        pytest.fail(str(error), pytrace=False)
    with running_redis() as server:
        yield server.url
