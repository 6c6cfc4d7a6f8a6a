"""Reconnect delays: full-jitter exponential backoff that only a healthy connection resets.

Pure: the random source is injected and the time is passed in, so the tests
check the schedule without sleeping.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable


class Backoff:
    """Delays before reconnect attempts.

    The n-th consecutive failure waits a random time in ``[0, min(cap, base * 2**n)]``
    ("full jitter", so that many clients cut off together do not come back
    together). A connection that opens is not enough to start again from
    ``base``: it must stay up ``healthy_after`` seconds. A server that accepts
    and closes at once therefore sees the delays grow like any other failure.

    Args:
        base: The ceiling of the first delay, in seconds.
        cap: The largest ceiling, in seconds.
        healthy_after: Seconds a connection must last to reset the schedule.
        random: Returns a float in ``[0, 1)``; injected for tests.
    """

    def __init__(
        self,
        base: float = 0.5,
        cap: float = 20.0,
        healthy_after: float = 10.0,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self.base = base
        self.cap = cap
        self.healthy_after = healthy_after
        self._random = random
        #: Consecutive failures since the last healthy connection.
        self.failures = 0
        self._connected_at: float | None = None

    def ceiling(self) -> float:
        """The largest delay the next failure may wait."""
        # min() before the power would overflow after ~1000 failures.
        return min(self.cap, self.base * 2.0 ** min(self.failures, 64))

    def connected(self, now: float) -> None:
        """Note that a connection opened at ``now``."""
        self._connected_at = now

    def next_delay(self, now: float) -> float:
        """The delay before the next attempt, the connection (if any) having ended at ``now``."""
        if self._connected_at is not None and now - self._connected_at >= self.healthy_after:
            self.failures = 0
        self._connected_at = None
        delay = self._random() * self.ceiling()
        self.failures += 1
        return delay

    def reset(self) -> None:
        """Start again from ``base`` (for example after the user asked to connect)."""
        self.failures = 0
        self._connected_at = None
