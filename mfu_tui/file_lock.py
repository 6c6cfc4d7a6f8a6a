"""``flock`` locks on files, and the one a server holds on its SQLite database.

The kernel drops a process's locks when it ends, however it ends: a crash
leaves nothing that blocks the next start. Two servers writing one SQLite
file would each end the other's running answers as interrupted at start,
and their clients would never hear of each other's messages: whichever
server writes a database holds ``database_lock`` (the app's local server
and ``mfu-chat serve`` alike), and a second one refuses to start.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from pathlib import Path

#: How often a wait for a lock held by another process looks again.
LOCK_POLL_SECONDS = 0.02


class Lock:
    """An ``flock`` on a file, held until ``release()`` or the process's end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._descriptor: int | None = None

    @property
    def held(self) -> bool:
        """This process holds the lock."""
        return self._descriptor is not None

    def try_acquire(self, *, shared: bool = False) -> bool:
        """Take the lock if no other process holds it in a conflicting way; True if taken."""
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(descriptor, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return False
        self._descriptor = descriptor
        return True

    def acquire(self, timeout: float, *, shared: bool = False) -> bool:
        """Take the lock, waiting up to ``timeout`` seconds for its holder; True if taken."""
        deadline = time.monotonic() + timeout
        while not self.try_acquire(shared=shared):
            if time.monotonic() >= deadline:
                return False
            # flock has no timeout of its own; its holders keep it for seconds at most.
            time.sleep(LOCK_POLL_SECONDS)
        return True

    def names_its_file(self) -> bool:
        """Its path still names the file locked: a holder before us may have renamed or removed it meanwhile."""
        assert self._descriptor is not None, "only the holder asks"
        try:
            there = os.stat(self.path)
        except FileNotFoundError:
            return False
        here = os.fstat(self._descriptor)
        return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)

    def write(self, text: str) -> None:
        """Replace the lock file's content with ``text`` (who holds it), for those who find it taken."""
        assert self._descriptor is not None, "only the holder writes"
        os.ftruncate(self._descriptor, 0)
        os.pwrite(self._descriptor, text.encode(), 0)

    def release(self) -> None:
        """Let the lock go (closing the file drops it)."""
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None


def is_free(path: Path) -> bool:
    """No process holds the lock at ``path`` (checked by taking it for an instant)."""
    probe = Lock(path)
    if not probe.try_acquire():
        return False
    probe.release()
    return True


def claim_work_file(path: Path) -> Lock | None:
    """The lock on the work file ``path`` itself, made empty; ``None`` while a running process holds it.

    A file written under a name of its own, then renamed, stays behind when
    its writer is killed. Its lock tells such a left-over from a file being
    written: the kernel dropped the dead writer's lock, so a file whose lock
    is free is taken over and emptied.

    Raises:
        OSError: The file cannot be made at ``path``.
    """
    while True:
        lock = Lock(path)
        if not lock.try_acquire():
            return None
        if lock.names_its_file():
            lock.write("")
            return lock
        # Its writer renamed or removed it as we opened it: the file at the path now, if any, is another.
        lock.release()


def database_lock(database: Path) -> Path:
    """The lock file of the server writing the SQLite file ``database``: beside it, whoever runs that server."""
    return database.with_name(database.name + ".lock")


class DatabaseInUse(Exception):
    """Another process holds the lock of the SQLite database (``database_lock``)."""

    def __init__(self, database: Path, pid: int | None) -> None:
        super().__init__(database, pid)
        self.database = database
        self.pid = pid
        """The holder's pid as it wrote it, or ``None`` if unknown (it is taking the lock this instant)."""

    def says(self, server: str) -> str:
        """One line for the operator: ``another <server> uses <database> (pid N)``."""
        return f"another {server} uses {self.database}" + (f" (pid {self.pid})" if self.pid else "")


def hold_database(database: Path) -> Lock:
    """Take the lock of the server writing ``database`` (its directory made if missing), writing our pid in it.

    Raises:
        DatabaseInUse: Another process holds it.
        NotADirectoryError: A file stands where a directory of the path should be (``filename``: that file).
        OSError: The lock file cannot be made beside the database.
    """
    _make_directory(database.parent)
    lock = Lock(database_lock(database))
    if not lock.try_acquire():
        raise DatabaseInUse(database, _pid_in(lock.path))
    lock.write(f"{os.getpid()}\n")
    return lock


def _make_directory(directory: Path) -> None:
    """Make ``directory`` and its parents where missing.

    Raises:
        NotADirectoryError: A file stands where one of them should be (``filename``: that file).
        OSError: The system refuses to make them.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        # mkdir says "File exists" if the directory's own name is a file's, else names a directory it did not make.
        in_the_way = next(path for path in (directory, *directory.parents) if path.exists() and not path.is_dir())
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(in_the_way)) from None


def _pid_in(path: Path) -> int | None:
    """The pid the lock's holder wrote in ``path``, if it did."""
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text().strip())
    return None
