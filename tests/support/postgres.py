"""A real PostgreSQL server for the tests, on a free loopback port in a temporary data dir.

``postgres_server`` (session) runs ``initdb`` and ``postgres`` once per test
session and stops it at the end, even after failures; ``postgres_url`` gives
each test a fresh empty database on it. Use them from a ``conftest.py``::

    from tests.support.postgres import postgres_server, postgres_url  # noqa: F401

PostgreSQL refuses to run as root: as root, the server runs as the
``postgres`` system user (``runuser``) in a data dir that user owns. The
binaries come from the Debian ``postgresql`` package, which ``.ci/run``
installs when missing; without them the tests FAIL (never skip) and say so.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.programs import free_port

#: The database superuser the tests connect as (trust authentication, loopback only).
USER = "mfu"


def find_binaries() -> Path:
    """The ``bin`` directory of the newest installed PostgreSQL."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        pytest.fail(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): "
            "apt-get install postgresql (.ci/run does it)",
            pytrace=False,
        )
    return Path(found[-1]).parent


class PostgresServer:
    """One PostgreSQL cluster started for the tests.

    Args:
        binaries: The directory holding ``initdb`` and ``pg_ctl``.
        workdir: An empty directory for the data, the socket and the log.
    """

    def __init__(self, binaries: Path, workdir: Path) -> None:
        self.binaries = binaries
        self.workdir = workdir
        self.data = workdir / "data"
        self.log = workdir / "postgres.log"
        self.port = free_port()
        self._names = itertools.count(1)
        # As root, run as the postgres system user (PostgreSQL refuses root).
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def start(self) -> None:
        if self._as:
            shutil.chown(self.workdir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync")
        self.launch()

    def launch(self) -> None:
        """Run the server on its data directory: after ``start`` created it, or again after ``stop``."""
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.workdir}"
            # Only the test data is at risk: no need to survive a power cut.
            " -c fsync=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log), "-o", options)

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server: ``immediate`` (no shutdown checkpoint, as a crash), or ``fast`` or ``smart``."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-w", "-m", mode, "-D", str(self.data), check=False)

    def new_database(self) -> str:
        """Create an empty database; its ``postgresql://`` URL."""
        name = f"test_{next(self._names)}"
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, name)
        return self.url(name)

    def url(self, database: str) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        command = [*self._as, str(self.binaries / program), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr.strip()}\n{log}")


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A fresh PostgreSQL server, stopped and its directory removed at the end, even after a failure.

    For benches and harnesses; tests take the ``postgres_server`` fixture.
    """
    binaries = find_binaries()
    # Not under a private temporary directory: the postgres user must reach this one.
    workdir = Path(tempfile.mkdtemp(prefix="mfu-postgres-"))
    server = PostgresServer(binaries, workdir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session, stopped at the end."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a fresh, empty database for one test."""
    return postgres_server.new_database()
