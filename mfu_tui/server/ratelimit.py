"""Per-user token buckets for requests that start a generation."""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimiter:
    """A token bucket per user: ``burst`` at once, then ``per_minute`` a minute.

    Args:
        per_minute: Sustained rate.
        burst: Bucket size.
        clock: Monotonic clock in seconds (replaceable so the maths can be unit tested).
    """

    def __init__(self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(max(burst, 1))
        self._clock = clock
        #: user -> (tokens left, time of that count)
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, user: str) -> bool:
        """Take one token from ``user``'s bucket; False when it is empty."""
        now = self._clock()
        tokens, then = self._buckets.get(user, (self._burst, now))
        tokens = min(self._burst, tokens + (now - then) * self._rate)
        if tokens < 1.0:
            self._buckets[user] = (tokens, now)
            return False
        self._buckets[user] = (tokens - 1.0, now)
        if len(self._buckets) > 100_000:
            self._forget_full(now)
        return True

    def retry_after(self, user: str) -> float:
        """Seconds until ``user`` may send again (0 if now)."""
        tokens, then = self._buckets.get(user, (self._burst, self._clock()))
        tokens = min(self._burst, tokens + (self._clock() - then) * self._rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self._rate

    def _forget_full(self, now: float) -> None:
        # A full bucket is the same as no bucket: drop them so memory stays bounded.
        for user, (tokens, then) in list(self._buckets.items()):
            if tokens + (now - then) * self._rate >= self._burst:
                del self._buckets[user]
