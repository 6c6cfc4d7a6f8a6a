"""``mfu-chat serve --workers N`` for tests: which worker processes run, and which one holds a connection.

``ServerProcess`` starts the supervisor like any server; these helpers read
``/proc`` to find its workers and, for a client connection, the worker the
kernel gave it to (``SO_REUSEPORT`` spreads connections by their addresses,
so a test that needs a given worker opens connections until one lands there).
"""

from __future__ import annotations

import contextlib
import os

from tests.support.server import ServerProcess


def worker_pids(server: ServerProcess) -> list[int]:
    """The supervisor's children: its workers, by pid."""
    assert server.process is not None
    pid = server.process.pid
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        return sorted(int(child) for child in children.read().split())


def holder_of(server: ServerProcess, client_port: int) -> int | None:
    """The pid of the worker holding the server side of the connection from local port ``client_port``."""
    for pid in worker_pids(server):
        inodes = set()
        with contextlib.suppress(OSError):  # the worker is gone
            for descriptor in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):  # closed meanwhile
                    target = os.readlink(f"/proc/{pid}/fd/{descriptor}")
                    if target.startswith("socket:["):
                        inodes.add(target[len("socket:[") : -1])
        with open("/proc/net/tcp") as table:
            next(table)  # the header
            for line in table:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if local_port == server.port and remote_port == client_port and fields[9] in inodes:
                    return pid
    return None
