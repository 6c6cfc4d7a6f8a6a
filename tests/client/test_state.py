"""ConnectionState: an immutable snapshot with a countdown helper."""

import dataclasses

import pytest

from mfu_tui.client import ConnectionState, Status


def test_retry_in_counts_down_and_never_goes_negative():
    state = ConnectionState(Status.RECONNECTING, retry_at=10.0, last_error="connection refused")
    assert state.retry_in(7.5) == 2.5
    assert state.retry_in(12.0) == 0.0


def test_retry_in_is_none_when_no_attempt_is_planned():
    assert ConnectionState(Status.CONNECTED, rtt=0.01).retry_in(3.0) is None


def test_state_is_frozen():
    state = ConnectionState(Status.DISCONNECTED, reason="closed by user")
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.status = Status.CONNECTED  # type: ignore[misc]
