"""The reconnect schedule: full jitter, capped, reset only by a healthy connection."""

from mfu_tui.client import Backoff


def test_ceilings_double_from_base_up_to_the_cap():
    backoff = Backoff(base=0.5, cap=20.0, random=lambda: 1.0)
    delays = [backoff.next_delay(now=0.0) for _ in range(9)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0, 20.0]


def test_full_jitter_scales_the_ceiling_by_the_random_draw():
    draws = iter([0.0, 0.25, 0.5])
    backoff = Backoff(base=1.0, cap=20.0, random=lambda: next(draws))
    assert [backoff.next_delay(now=0.0) for _ in range(3)] == [0.0, 0.5, 2.0]


def test_a_connection_closed_at_once_does_not_reset_the_schedule():
    backoff = Backoff(base=0.5, cap=20.0, healthy_after=10.0, random=lambda: 1.0)
    now = 100.0
    delays = []
    for _ in range(6):
        backoff.connected(now)
        now += 0.01  # accepted, then closed by the server straight away
        delays.append(backoff.next_delay(now))
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]


def test_ten_healthy_seconds_reset_the_schedule():
    backoff = Backoff(base=0.5, cap=20.0, healthy_after=10.0, random=lambda: 1.0)
    for _ in range(5):
        backoff.next_delay(now=0.0)
    backoff.connected(now=50.0)
    assert backoff.next_delay(now=60.0) == 0.5


def test_nine_healthy_seconds_are_not_enough():
    backoff = Backoff(base=0.5, cap=20.0, healthy_after=10.0, random=lambda: 1.0)
    for _ in range(3):
        backoff.next_delay(now=0.0)
    backoff.connected(now=50.0)
    assert backoff.next_delay(now=59.0) == 4.0


def test_a_long_outage_stays_at_the_cap_without_overflow():
    backoff = Backoff(random=lambda: 1.0)
    for _ in range(5000):
        delay = backoff.next_delay(now=0.0)
    assert delay == 20.0


def test_default_delays_stay_within_zero_and_the_cap():
    backoff = Backoff()
    delays = [backoff.next_delay(now=0.0) for _ in range(200)]
    assert all(0.0 <= delay <= 20.0 for delay in delays)
    assert max(delays) > 0.5  # jitter spreads beyond the first ceiling
