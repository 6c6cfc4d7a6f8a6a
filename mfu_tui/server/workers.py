"""``mfu-chat serve --workers N``: N worker processes on one port, and the supervisor that keeps them.

One process is one event loop, so it uses one core; the workers use N. The
supervisor listens on nothing: it holds the port (bound with
``SO_REUSEPORT``, never listening, so a port taken by another program
stops it at once and ``--port 0`` is resolved once for all), starts each
worker as ``mfu-chat serve`` with the same arguments plus its number, and
prints the one "listening on" line once every worker listens. Each worker
listens on the port with ``SO_REUSEPORT`` (the kernel spreads the
connections) and is a node of its own, named ``<node id>/worker-<i>``:

- with ``--broker``, the workers are nodes linked by Redis, as on several machines;
- without, they link to each other over Unix sockets in a private directory
  (``peer_hub.PeerHub``), which is the fan-out of the SQLite default.

On SQLite the workers share the file: its lock makes their writers take
turns, and each answer is marked with its worker, so a worker that is
started again ends its own interrupted answers and no sibling's. Before the
workers start, the supervisor migrates the file and ends the answers left
streaming by the whole previous run, which no worker would otherwise claim.

A worker that exits is started again (after a second if it had run for
less than ``QUICK_EXIT`` seconds); SIGTERM or SIGINT is passed to every
worker, each stops as one node does (clients closed with 4012, answers
drained, the store committed), and the supervisor exits once they all
have. A worker reads its stdin, a pipe from the supervisor: if the
supervisor dies, the pipe closes and the worker exits at once, as if
killed (a supervisor started again ends what it left streaming; on
SQLite nothing would fence off a chunk it stored after that).

The supervisor holds a lock in its directory for as long as it runs: a
supervisor that starts removes the directories of the killed ones (their
lock free), which nothing else would (``remove_stale_directories``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

from mfu_tui.file_lock import Lock, is_free
from mfu_tui.server.config import ServerConfig, cannot_listen

log = logging.getLogger(__name__)

#: A worker that exits sooner than this after its start waits a second before the next.
QUICK_EXIT = 5.0
#: Seconds a worker has to print its "listening on" line.
START_TIMEOUT = 60.0
LISTENING = "mfu-chat serve: listening on "


class WorkerFailed(RuntimeError):
    """A worker did not start (the first time): its own error is on stderr already."""


def _family(host: str) -> socket.AddressFamily:
    """The family to bind ``host`` with: IPv6 for an address with colons, else IPv4."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (0: a free port) with ``SO_REUSEPORT``, never listening.

    Held while the workers run: the port stays this server's, and the
    workers, binding it with the same option, share it.

    Raises:
        OSError: The port is taken by a program that does not share it.
    """
    holder = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind((host, port))
    except BaseException:
        holder.close()
        raise
    return holder


def check_metrics_ports(config: ServerConfig, count: int) -> None:
    """That each of ``count`` workers can bind its ``/metrics`` port (``--metrics-port`` + its index; 0: free ones).

    Checked, not held: each worker binds its own alone, without ``SO_REUSEPORT``.
    So the supervisor finds a taken port or a wrong ``--metrics-host`` before it
    opens the database, as it finds a taken ``--port``.

    Raises:
        CannotListen: ``--metrics-host`` is not an address of this machine, or a port is taken.
    """
    if config.metrics_port is None:
        return
    host = config.metrics_host
    first = config.metrics_port
    for port in [first + index for index in range(count)] if first else [0]:
        with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
            # As asyncio binds: a port whose last connections wait out TIME_WAIT is free to listen on.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as error:
                raise cannot_listen(error, ("--metrics-host", host), ("--metrics-port", port)) from None


#: The prefix of a supervisor's private directory, in the temporary directory (``TMPDIR``).
DIRECTORY_PREFIX = "mfu-chat-workers-"
#: The lock a supervisor holds in its directory while it runs.
SUPERVISOR_LOCK = "supervisor.lock"


def remove_stale_directories() -> list[Path]:
    """Remove the directories of supervisors that were killed (their lock free); the ones removed.

    A directory without the lock (made before supervisors held one) is left alone:
    nothing says whether its supervisor runs.
    """
    removed = []
    for directory in Path(tempfile.gettempdir()).glob(DIRECTORY_PREFIX + "*"):
        lock = directory / SUPERVISOR_LOCK
        try:
            stale = lock.is_file() and is_free(lock)  # (``is_free`` would make a lock that is missing)
        except OSError:  # not ours to open
            continue
        if stale:
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
    return removed


class Supervisor:
    """Starts ``count`` workers with ``arguments`` (``mfu-chat serve``'s, ports resolved) and keeps them running.

    Args:
        config: The server's settings (where it listens, its store).
        count: How many workers.
        arguments: The arguments of ``mfu-chat serve`` every worker gets, before its own.
    """

    def __init__(self, config: ServerConfig, count: int, arguments: list[str]) -> None:
        self.config = config
        self.count = count
        self.arguments = arguments
        removed = remove_stale_directories()
        if removed:
            log.info("removed %d directories of workers whose supervisor was killed", len(removed))
        self.directory = Path(tempfile.mkdtemp(prefix=DIRECTORY_PREFIX))  # mode 700: the workers' sockets
        # Held until this process ends, however it ends: the kernel lets go of a dead process's locks.
        self._lock = Lock(self.directory / SUPERVISOR_LOCK)
        self._lock.try_acquire()  # a directory just made: nobody else holds it
        self._processes: dict[int, asyncio.subprocess.Process] = {}
        self._stopping = asyncio.Event()

    def command(self, index: int) -> list[str]:
        """The command line of worker ``index``."""
        own = ["--worker-index", str(index), "--worker-dir", str(self.directory)]
        return [sys.executable, "-m", "mfu_tui", "serve", *self.arguments, *own]

    async def run(self, url: str) -> None:
        """Start the workers, print the "listening on" line, keep them running until SIGTERM or SIGINT.

        Raises:
            WorkerFailed: A worker did not start the first time.
        """
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stopping.set)
        try:
            await self._prepare_store()
            started = await asyncio.gather(*(self._start(index) for index in range(self.count)))
            if not all(started):
                raise WorkerFailed("a worker did not start")
            print(f"{LISTENING}{url}", flush=True)
            log.info("%d workers running", self.count)
            keepers = [loop.create_task(self._keep(index)) for index in range(self.count)]
            await self._stopping.wait()
            log.info("stopping %d workers", self.count)
            for keeper in keepers:
                keeper.cancel()
        finally:
            await self._stop_all()
            shutil.rmtree(self.directory, ignore_errors=True)
            self._lock.release()

    async def _prepare_store(self) -> None:
        """On SQLite: migrate the file and end what the last run left streaming, before any worker opens it."""
        from mfu_tui.server.store import SqliteStore
        from mfu_tui.server.store.postgres import is_postgres_url

        location = self.config.database()
        if is_postgres_url(location):
            return  # nodes of PostgreSQL migrate under a lock and end their own answers themselves
        store = SqliteStore(Path(location))
        interrupted = await store.open()
        await store.close()
        if interrupted:
            log.warning("%d answer(s) were interrupted by the previous stop; marked as such", len(interrupted))

    async def _start(self, index: int) -> bool:
        """Start worker ``index`` and wait for its "listening on" line; False if it exited first."""
        process = await asyncio.create_subprocess_exec(
            *self.command(index), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        self._processes[index] = process
        assert process.stdout is not None
        try:
            async with asyncio.timeout(START_TIMEOUT):
                line = (await process.stdout.readline()).decode()
        except TimeoutError:
            line = ""
        if not line.startswith(LISTENING):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            return False
        log.info("worker %d (pid %d) listening", index, process.pid)
        return True

    async def _keep(self, index: int) -> None:
        """Start worker ``index`` again whenever it exits."""
        started = time.monotonic()
        while True:
            process = self._processes[index]
            status = await process.wait()
            log.warning("worker %d (pid %d) exited with status %d; starting it again", index, process.pid, status)
            if time.monotonic() - started < QUICK_EXIT:
                await asyncio.sleep(1.0)
            started = time.monotonic()
            await self._start(index)

    async def _stop_all(self) -> None:
        """SIGTERM to every worker (each stops as a node does), wait for them all, then say so.

        The workers write to the same stderr: without the last line, the log
        would end with a worker's ``stop``, and say nothing of the supervisor.
        """
        if not self._processes:  # the store could not be prepared: no worker was started
            return
        for process in self._processes.values():
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
        for index, process in self._processes.items():
            status = await process.wait()
            if status != 0:
                log.warning("worker %d (pid %d) stopped with status %d", index, process.pid, status)
        log.info("%d workers stopped", len(self._processes))
        self._processes.clear()
