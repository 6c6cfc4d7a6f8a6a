"""``Flag``: ``asyncio.Event``'s set, clear, is_set and wait, in a few bytes while nobody waits.

Every connection holds three of them. An ``asyncio.Event`` allocates a
deque for its waiters at once (about 760 bytes with its object), which for
10,000 idle connections is 22 MiB of memory that almost never holds a
waiter; a ``Flag`` makes its list of waiters only when a task waits.
"""

from __future__ import annotations

import asyncio


class Flag:
    """A flag tasks can wait for, like ``asyncio.Event`` (same methods), its waiters made on demand."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        #: Futures of the tasks waiting, or None while there are none.
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        """True once ``set`` and until ``clear``."""
        return self._set

    def set(self) -> None:
        """Set the flag and wake every task waiting for it."""
        if self._set:
            return
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        """Unset the flag: ``wait`` blocks again."""
        self._set = False

    async def wait(self) -> bool:
        """Return (True) once the flag is set: at once if it is."""
        if self._set:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:  # cancelled before the flag was set
                self._waiters.remove(waiter)
        return True
