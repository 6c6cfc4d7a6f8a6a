"""Waiting for a process that is not our child to exit, without polling."""

from __future__ import annotations

import os
import select


def wait_gone(pid: int, timeout: float = 20.0) -> bool:
    """True once process ``pid`` has exited (waits on a pidfd), False after ``timeout`` seconds."""
    try:
        descriptor = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([descriptor], [], [], timeout)[0])
    finally:
        os.close(descriptor)
