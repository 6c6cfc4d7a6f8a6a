"""Telling a database that cannot be reached or written right now from a bug, and logging its outages.

A frame that failed because of an outage is refused with ``unavailable``
(the client sends it again later); any other failure is ``internal``.

An outage is met everywhere at once: by every frame, every commit, every lease
beat and readiness check. Each reports it to the store's ``OutageLog`` instead
of logging it, so an outage is two lines (it started; it ended, after how long
and with what failed meanwhile), not a traceback per frame: before, 20 s of a
PostgreSQL outage under load logged 700 to 1,400 tracebacks per node.
Whoever must act on the change itself (``storage_status``: telling the
clients) ``listen``s to it, on its event loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import sqlite3
import sys
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

#: SQLite's primary result codes of a database that cannot be used now (busy, locked, read-only,
#: an I/O error, full, cannot be opened), not of a wrong statement.
_SQLITE_OUTAGES = frozenset({5, 6, 8, 10, 13, 14})


def is_outage(error: BaseException) -> bool:
    """True if ``error`` says the database is out of reach or refuses writes for now: a retry may work."""
    if isinstance(error, (OSError, TimeoutError)):
        return True  # the connection, the pool's wait, the disk
    if isinstance(error, sqlite3.OperationalError):
        code = getattr(error, "sqlite_errorcode", None)
        return code is not None and code & 0xFF in _SQLITE_OUTAGES
    asyncpg = sys.modules.get("asyncpg")  # imported only with a PostgreSQL store
    if asyncpg is not None:
        gone = (
            asyncpg.PostgresConnectionError,  # class 08: the connection failed
            asyncpg.CannotConnectNowError,  # 57P03: starting up or shutting down
            asyncpg.AdminShutdownError,  # 57P01
            asyncpg.TooManyConnectionsError,  # 53300
        )
        # A connection the pool handed out as PostgreSQL went away (or its COMMIT was cut) says only
        # "connection is closed", as a plain InterfaceError: its subclasses are misuses (bad input...).
        closed = type(error) is asyncpg.InterfaceError and str(error).endswith("connection is closed")
        return closed or isinstance(error, gone)
    return False


def is_lock_conflict(error: BaseException) -> bool:
    """True if PostgreSQL ended ``error``'s statement to break a deadlock, or for a serialization conflict.

    Two transactions took the same rows in opposite orders (a chat deleted on
    one node while another stores its answer's chunks): PostgreSQL ends one
    statement of one of them. The same write, tried again, waits for the
    other transaction to commit and goes through.
    """
    asyncpg = sys.modules.get("asyncpg")  # imported only with a PostgreSQL store
    return asyncpg is not None and isinstance(error, (asyncpg.DeadlockDetectedError, asyncpg.SerializationError))


class OutageLog:
    """Counts what a database outage fails, and logs one line as it starts and one as it ends.

    ``failed`` and ``worked`` may be called from any thread (SQLite's writer has
    its own). ``worked`` costs one comparison while the database is up, so it
    follows every commit.
    """

    def __init__(self) -> None:
        #: When the outage began (``time.monotonic``); None while the database answers.
        self._since: float | None = None
        #: What failed since then, by what it was ("frames refused", "commits failed", ...).
        self._failures: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        #: Who is told of each change (``listen``).
        self._listeners: list[_Listener] = []

    @property
    def out(self) -> bool:
        """Whether the last report was of an outage."""
        return self._since is not None

    def failed(self, what: str, error: BaseException) -> bool:
        """Count one of ``what`` against the outage if ``error`` is one; the outage's first failure is logged.

        Args:
            what: What failed, as a plural noun with its verb ("frames refused"), for the end's count.
            error: What the failure raised.

        Returns:
            False if ``error`` is not an outage (a bug: the caller logs it as such), True once counted.
        """
        if not is_outage(error):
            return False
        with self._lock:
            self._failures[what] += 1
            if self._since is None:
                self._since = time.monotonic()
                self._tell()
                log.error(
                    "the database is out of reach (%s); what needs it is refused as unavailable until it answers",
                    describe(error),
                )
        return True

    def worked(self) -> None:
        """The database answered: if it was out, log that it is back, after how long and what failed meanwhile."""
        if self._since is None:
            return
        with self._lock:
            if self._since is None:  # another thread logged it first
                return
            seconds = time.monotonic() - self._since
            failures = ", ".join(f"{what}: {count}" for what, count in sorted(self._failures.items()))
            self._since = None
            self._failures.clear()
            self._tell()
        log.warning("the database answers again after %.1f s out of reach (meanwhile %s)", seconds, failures)

    def listen(self, callback: Callable[[bool], object], loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
        """Call ``callback(out)`` on ``loop`` as an outage starts (``True``) and as it ends (``False``).

        ``failed`` and ``worked`` may run in any thread: they only ask ``loop``
        to look, once per listener until it has looked (``call_soon_threadsafe``),
        and the callback gets the state as it is then, if it is not the one it
        was last given. So changes faster than the loop are told as their
        latest state, and a flapping database queues one call per listener at most.

        Args:
            callback: Called on ``loop``'s thread with whether the database is out.
            loop: The event loop to call it on.

        Returns:
            A function that stops the calls.
        """
        listener = _Listener(callback, loop)
        with self._lock:
            self._listeners.append(listener)
            if self._since is not None:  # out already: told at once
                self._poke(listener)

        def unlisten() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unlisten

    def _tell(self) -> None:
        """The state changed (the lock is held): each listener looks at it on its loop."""
        for listener in self._listeners:
            self._poke(listener)

    def _poke(self, listener: _Listener) -> None:
        """Have ``listener``'s loop look at the state, unless a look is on its way already (the lock is held)."""
        if listener.scheduled:
            return
        listener.scheduled = True
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is left to tell
            listener.loop.call_soon_threadsafe(self._look, listener)

    def _look(self, listener: _Listener) -> None:
        """On ``listener``'s loop: tell it the state, if it is not the one it was told last."""
        with self._lock:
            listener.scheduled = False  # before reading: a change after this pokes again
            out = self._since is not None
            if listener not in self._listeners:  # it stopped listening meanwhile
                return
        if out != listener.told:
            listener.told = out
            listener.callback(out)


@dataclasses.dataclass(eq=False)
class _Listener:
    """One ``listen``: whom to tell on which loop, and where the telling stands."""

    callback: Callable[[bool], object]
    loop: asyncio.AbstractEventLoop
    #: True while a look at the state waits on the loop (guarded by the log's lock).
    scheduled: bool = False
    #: The state the callback was given last: at first, that all is well.
    told: bool = False


def describe(error: BaseException) -> str:
    """One line naming a failure of the store (no URL: the store's own messages never hold its password)."""
    if isinstance(error, TimeoutError):
        return "no answer in time"
    return f"{type(error).__name__}: {error}".splitlines()[0][:200]
