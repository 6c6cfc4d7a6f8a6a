"""Small policies: the rate limiter's arithmetic."""

from __future__ import annotations

from mfu_tui.server.ratelimit import RateLimiter


def test_the_rate_limiter_allows_a_burst_then_the_rate():
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=3, clock=lambda: now[0])
    assert [limiter.allow("alice") for _ in range(4)] == [True, True, True, False]
    assert limiter.retry_after("alice") == 1.0
    assert limiter.allow("bob")
    now[0] += 1.0  # one more token a second
    assert limiter.allow("alice") and not limiter.allow("alice")
    now[0] += 60.0  # never more than the burst
    assert [limiter.allow("alice") for _ in range(4)] == [True, True, True, False]
