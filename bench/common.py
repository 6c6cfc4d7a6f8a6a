"""Helpers shared by the bench scripts: process figures and the machine.

Every script runs from the repository root as ``python -m bench.<name>``
and prints one JSON object. Each figure carries the 1-minute load average
seen when it was taken, because this is a shared 2-core machine: a figure
taken under load is a ceiling, and ratios (ours / a baseline measured in the
same run) hold up better than absolute times.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import resource
import subprocess
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def bench_parser(doc: str | None) -> argparse.ArgumentParser:
    """A bench's command line, its help made of the module's docstring: the first paragraph, then the rest."""
    assert doc is not None
    return argparse.ArgumentParser(
        description=doc.split("\n\n")[0],
        epilog=doc.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def run_tool(main: Coroutine[Any, Any, T]) -> T:
    """Run a measuring tool's coroutine (the load, the fake upstream) on uvloop when it is installed.

    The tools share the two cores with the server they measure: what they
    cost, a second server worker lacks. On uvloop a chunk costs the load and
    the upstream about half of what it costs them on asyncio (docs/benchmarks.md
    §3). The servers' loop is chosen apart (``--loop``).
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def raise_fd_limit() -> None:
    """Soft RLIMIT_NOFILE up to the hard limit: each connection is a descriptor on each side."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def load_average() -> float:
    """The 1-minute load average."""
    return round(os.getloadavg()[0], 2)


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the workers of ``mfu-chat serve --workers N``), from ``/proc``."""
    tree, index = [pid], 0
    while index < len(tree):
        current = tree[index]
        try:
            tree += [int(child) for child in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
        except OSError:  # gone meanwhile
            pass
        index += 1
    return tree


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its descendants, in KiB."""
    total = 0
    for member in process_tree(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in lines if line.startswith("VmRSS")), 0)
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process and its running descendants have used."""
    ticks = 0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, Any]:
    """Where and when the figures were taken."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_1min": load_average(),
    }


def start_upstream(*args: str) -> tuple[subprocess.Popen[str], str]:
    """``python -m bench.upstream *args`` as a subprocess; the process and its base URL."""
    process = subprocess.Popen([sys.executable, "-m", "bench.upstream", *args], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("upstream: listening on "):
        process.kill()
        raise RuntimeError(f"the fake upstream did not start: {line!r}")
    return process, line.removeprefix("upstream: listening on ").strip()
