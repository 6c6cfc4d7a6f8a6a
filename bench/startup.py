"""Startup: ``mfu-chat --version`` and the app's time to first frame, each against its floor.

``--version`` is timed as a subprocess against ``python -c pass`` (the
interpreter's own start). The first frame: ``mfu-chat`` runs in a
pseudo-terminal of ``--size`` (pointed at a real server on loopback, with a
fresh HOME), and the time runs from the spawn to the first output holding
the sidebar's title "Chats"; the floor is ``bench.bare_app``, a bare Textual
app of the same layout and size, timed the same way, its runs alternating
with the app's so that a change of the machine's load falls on both. Local
mode (no server configured) is timed in the same rounds, twice: ``cold``,
each run with files of its own and no local server running (the app starts
one after its first frame; the bench waits until it is gone before the next
run), and ``warm``, joining a local server kept running for the bench. Each
figure is the median of ``--runs`` runs, after one run of each that is not
counted: it writes the bytecode of every module imported (under the fresh
HOME, ``PYTHONPYCACHEPREFIX``), so both start from bytecode as an installed
package does, even where ``PYTHONDONTWRITEBYTECODE`` is set. Next to each
time is the CPU the process used by then (``cpu_ratio``), steadier when other
programs load the machine.

    python -m bench.startup --runs 10
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path
from typing import Any

from bench.common import bench_parser, machine
from tests.support.server import ServerProcess

MARKER = b"Chats"
#: Seconds a local server started by a cold run gets to leave (its app is killed at the first frame).
SERVER_GONE_TIMEOUT = 30.0
#: Keeps a local server running for the warm runs: joined, held until stdin closes.
HOLD_LOCAL_SERVER = (
    "import sys\n"
    "from mfu_tui.config.paths import Paths\n"
    "from mfu_tui.local_server import LocalServer\n"
    "server = LocalServer.join(Paths.for_user(), provider='demo')\n"
    "print(server.pid, flush=True)\n"
    "sys.stdin.read()\n"
)


def time_command(command: list[str], runs: int, env: dict[str, str]) -> float:
    """Median seconds of ``command`` run to completion (after one run not counted)."""
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def first_frame(
    command: list[str], size: tuple[int, int], env: dict[str, str], timeout: float = 30.0
) -> tuple[float, float]:
    """Seconds from spawning ``command`` in a pseudo-terminal to the first output holding ``MARKER``, and its CPU.

    The CPU seconds (user and system, all its threads) are the kernel's count
    when the command is killed, at once on the marker: on a machine others
    load, they vary less than the wall time, which includes waiting for a core.
    """
    columns, rows = size
    started = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # the child: a terminal of the right size, then the command
        fcntl.ioctl(sys.stdout.fileno(), termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        os.execvpe(command[0], command, env)
    seen = b""
    shown: float | None = None
    try:
        while shown is None and time.perf_counter() - started < timeout:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    seen += os.read(fd, 65536)
                except OSError:
                    break
                if MARKER in seen:
                    shown = time.perf_counter() - started
    finally:
        os.kill(pid, signal.SIGKILL)
        _, _, usage = os.wait4(pid, 0)
        os.close(fd)
    if shown is None:
        raise RuntimeError(f"no first frame from {command[:3]}: {seen[-300:]!r}")
    return shown, usage.ru_utime + usage.ru_stime


def local_env(env: dict[str, str], files: Path) -> dict[str, str]:
    """``env`` for ``mfu-chat`` with no server configured, its config, data, logs and locks under ``files``."""
    local = {
        **env,
        "MFU_CONFIG_DIR": f"{files}/config",
        "MFU_DATA_DIR": f"{files}/data",
        "MFU_LOG_DIR": f"{files}/log",
        "MFU_RUNTIME_DIR": f"{files}/run",
        "MFU_PROVIDER": "demo",
        "MFU_LOCAL_GRACE": "0.5",
    }
    for name in ("MFU_WS_URL", "VITE_WS_URL", "MFU_TOKEN"):
        local.pop(name, None)
    return local


def wait_servers_gone(files: Path, timeout: float = SERVER_GONE_TIMEOUT) -> None:
    """Wait until no local server on ``files`` runs (a cold run's, left by its killed app), from ``/proc``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(str(files) in command and "mfu_tui.embedded_server" in command for command in _commands()):
            return
        time.sleep(0.05)  # a bench, not a test: the server's own grace is the wait
    raise RuntimeError(f"a local server on {files} is still running after {timeout:g} s")


def _commands() -> list[str]:
    """The command line of every process, from ``/proc``."""
    commands = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                commands.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
    return commands


def figures(runs: list[tuple[float, float]], floor: list[tuple[float, float]]) -> dict[str, float]:
    """Median wall and CPU seconds of ``runs``, and their ratios to the floor's medians."""
    wall, cpu = (statistics.median(run[i] for run in runs) for i in (0, 1))
    floor_wall, floor_cpu = (statistics.median(run[i] for run in floor) for i in (0, 1))
    return {
        "seconds": round(wall, 3),
        "ratio": round(wall / floor_wall, 2),
        "cpu_seconds": round(cpu, 3),
        "cpu_ratio": round(cpu / floor_cpu, 2),
    }


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--runs", type=int, default=10, help="runs of each; the median is kept (default 10)")
    parser.add_argument("--size", default="120x40", help="terminal size (default 120x40)")
    args = parser.parse_args()
    columns, rows = (int(n) for n in args.size.split("x"))
    size = (columns, rows)
    mfu_chat = str(Path(sys.executable).with_name("mfu-chat"))
    report: dict[str, Any] = {"machine": machine()}
    with tempfile.TemporaryDirectory() as home:
        env = {
            **os.environ,
            "HOME": home,
            "XDG_CONFIG_HOME": f"{home}/.config",
            "XDG_DATA_HOME": f"{home}/.local/share",
            "TERM": "xterm-256color",
            "COLORTERM": "truecolor",
            "PYTHONPYCACHEPREFIX": f"{home}/pycache",
        }
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        floor = time_command([sys.executable, "-c", "pass"], args.runs, env)
        version = time_command([mfu_chat, "--version"], args.runs, env)
        report["version"] = {
            "mfu_chat_seconds": round(version, 3),
            "python_c_pass_seconds": round(floor, 3),
            "ratio": round(version / floor, 2),
        }
        server = ServerProcess(Path(home), "--log-level", "warning")
        server.start()
        warm_files = Path(home) / "warm"
        warm = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCAL_SERVER],
            env=local_env(env, warm_files),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert warm.stdout is not None
            warm.stdout.readline()  # the warm local server runs
            app = [mfu_chat, "--server", server.url, "--token", server.token("bench")]
            bare = [sys.executable, "-m", "bench.bare_app"]
            first_frame(app, size, env)
            first_frame(bare, size, env)
            first_frame([mfu_chat], size, local_env(env, warm_files))
            runs: dict[str, list[tuple[float, float]]] = {"app": [], "bare": [], "local_cold": [], "local_warm": []}
            for number in range(args.runs):
                runs["app"].append(first_frame(app, size, env))
                runs["bare"].append(first_frame(bare, size, env))
                cold_files = Path(home) / f"cold-{number}"
                runs["local_cold"].append(first_frame([mfu_chat], size, local_env(env, cold_files)))
                wait_servers_gone(cold_files)
                runs["local_warm"].append(first_frame([mfu_chat], size, local_env(env, warm_files)))
            ours, floor = (statistics.median(wall for wall, _ in runs[name]) for name in ("app", "bare"))
            ours_cpu, floor_cpu = (statistics.median(cpu for _, cpu in runs[name]) for name in ("app", "bare"))
        finally:
            server.terminate()
            server.wait()
            if warm.stdin is not None:
                warm.stdin.close()  # the warm server leaves a grace period later
            warm.wait()
            wait_servers_gone(warm_files)  # before its files are removed
        report["first_frame"] = {
            "mfu_chat_seconds": round(ours, 3),
            "bare_textual_seconds": round(floor, 3),
            "ratio": round(ours / floor, 2),
            "mfu_chat_cpu_seconds": round(ours_cpu, 3),
            "bare_textual_cpu_seconds": round(floor_cpu, 3),
            "cpu_ratio": round(ours_cpu / floor_cpu, 2),
            "size": args.size,
            "local_cold": figures(runs["local_cold"], runs["bare"]),
            "local_warm": figures(runs["local_warm"], runs["bare"]),
        }
    report["load_1min_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
