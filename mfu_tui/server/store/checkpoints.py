"""The SQLite store's checkpoints, in a thread of their own: the writer never waits for the disk.

In WAL mode a commit appends pages to the ``-wal`` file, which needs no
``fsync`` with ``synchronous=NORMAL``; a checkpoint copies them back into the
database file and syncs both. SQLite runs one at the end of the commit that
passes 1,000 pages, in the committing thread, where it held every chunk
queued behind it for milliseconds (a write and two syncs). So the writer's
connection runs none (``wal_autocheckpoint=0``) and asks this thread for
one every ``CHECKPOINT_EVERY`` commits.

A checkpoint beside the writer (``PASSIVE``) copies what was committed when
it began, and SQLite starts the ``-wal`` file over only once all of it was
copied before the next commit: under a steady stream of commits that may
never happen, and the file would grow without end. So once it is past
``WAL_LIMIT`` the writer lets one checkpoint run alone (``reset``): the next
commit starts the file over, and ``journal_size_limit`` cuts it back.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

#: Commits between two checkpoints: a few hundred pages, like SQLite's own 1,000-page default.
CHECKPOINT_EVERY = 100

#: The size of the ``-wal`` file past which a checkpoint runs with the writer waiting (see the module).
WAL_LIMIT = 64 * 1024 * 1024


class Checkpointer:
    """Runs checkpoints of one database file in a thread, when the writer asks.

    Args:
        connect: Makes the thread's connection to the database.
        path: The database file (its ``-wal`` file is beside it).
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection], path: Path) -> None:
        self._wal = path.with_name(path.name + "-wal")
        self._connection = connect()
        #: Set by ``ask`` (and ``stop``): the thread runs a checkpoint.
        self._asked = threading.Event()
        #: Held while a checkpoint runs: the thread's and ``reset``'s share the connection.
        self._running = threading.Lock()
        self._stopping = False
        self._last_failure = ""
        #: True once the ``-wal`` file is past ``WAL_LIMIT``: the writer should call ``reset`` before its next commit.
        self.reset_due = False
        self._thread = threading.Thread(target=self._run, name="mfu-store-checkpoints", daemon=True)
        self._thread.start()

    def ask(self) -> None:
        """Run a checkpoint soon (returns at once; one asked while another runs follows it)."""
        self._asked.set()

    def reset(self) -> None:
        """Run a checkpoint now, blocking: called by the writer between two commits, so it copies everything."""
        self.reset_due = False
        self._checkpoint()

    def stop(self) -> None:
        """End the thread (blocking until a checkpoint running ends) and close its connection."""
        self._stopping = True
        self._asked.set()
        self._thread.join()
        self._connection.close()

    def _run(self) -> None:
        while True:
            self._asked.wait()
            self._asked.clear()
            if self._stopping:
                return
            self._checkpoint()
            try:
                self.reset_due = self._wal.stat().st_size > WAL_LIMIT
            except FileNotFoundError:
                pass

    def _checkpoint(self) -> None:
        with self._running:
            try:
                self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as error:
                # Not fatal: the pages stay in the -wal file, readable, until a checkpoint succeeds.
                if str(error) != self._last_failure:
                    log.warning("a checkpoint of %s failed (%s); the file grows until one succeeds", self._wal, error)
                self._last_failure = str(error)
            else:
                self._last_failure = ""
