"""System programs the tests start (Redis, nginx): where they are (or which package brings them), a port for them."""

from __future__ import annotations

import os
import shutil
import socket


class MissingProgram(RuntimeError):
    """A system program the tests need is not installed; the message says which package brings it."""


def find_program(name: str, *, package: str, also: tuple[str, ...] = ()) -> str:
    """The path of ``name`` on PATH, or of the first executable in ``also``.

    Args:
        name: The program (``redis-server``).
        package: The Debian package that installs it, for the error message.
        also: Places to look outside PATH (``/usr/sbin/nginx``: sbin is often not on a user's PATH).

    Raises:
        MissingProgram: It is nowhere; the message names the apt package (``.ci/run`` installs it).
    """
    found = shutil.which(name)
    if found:
        return found
    for path in also:
        if os.access(path, os.X_OK):
            return path
    raise MissingProgram(f"{name} is not installed: apt-get install {package} (.ci/run does it)")


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago (for programs that cannot pick their own)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
