"""``mfu-chat serve`` against its floor, interleaved: relay latency and CPU, and memory per idle connection.

The floor is ``bench.bare_relay`` (a bare websockets relay: no auth, no
store, one ``send`` per frame, the same chunk frames from the same
upstream). Every figure is taken from both servers in the same run, one
after the other at each step (floor, serve, floor, serve...), with the
load processes, the upstream and the latency stamps of
``bench.server_capacity``'s relay and idle phases, so that a busy moment
of this shared machine weighs on both.

relay
    At each count of ``--streams`` (streams of ``--rate`` chunks a second
    for ``--seconds``), ``--rounds`` times: p50 / p99 from upstream write to
    client read, and the server's CPU per chunk. The summary gives, per
    server: the most streams held at p99 < 10 ms (every round at that count
    and below), p50 at the smallest count, CPU per chunk at the counts of
    ``--cpu-from`` streams and more; and each as a ratio to the floor's.
idle
    ``--idle`` connections that each answer one JSON ping, then stay open:
    the server's RSS growth per connection, and its ratio to the floor's.

``--loop uvloop`` runs both servers on uvloop (``pip install 'mfu-chat[speed]'``).
``--servers`` names what is compared, in turn at each step: ``floor``,
``serve`` (one process), ``workers-N`` (``mfu-chat serve --workers N``); the
ratios are to the first. A short run (about 3 minutes)::

    python -m bench.floor --streams 50,100,150,200,300 --idle 5000

One worker against two, on the SQLite default::

    python -m bench.floor --phases relay --servers serve,workers-2 --streams 50,100,150,200,300,400
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import bench_parser, cpu_seconds, machine, raise_fd_limit, start_upstream
from bench.server_capacity import errors, relay_figures, run_load
from tests.support.server import ServerProcess

#: The relay target: p99 below it.
P99_TARGET_MS = 10.0


class Floor:
    """``python -m bench.bare_relay`` as a subprocess, loaded like a ``ServerProcess``."""

    def __init__(self, upstream: str, loop: str) -> None:
        self.command = [sys.executable, "-m", "bench.bare_relay", "--upstream", upstream, "--loop", loop]
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def token(self, user: str = "alice", ttl: float = 3600) -> str:
        return "none"  # the floor checks no token; the header is sent all the same

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("bare relay: listening on "):
            self.process.kill()
            raise RuntimeError(f"the bare relay did not start: {line!r}")
        self.url = line.removeprefix("bare relay: listening on ").strip()

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(20)


def _serve(workdir: Path, upstream: str, loop: str, workers: int = 1) -> ServerProcess:
    server = ServerProcess(
        workdir,
        "--provider", "openai", "--rate-limit", "1000000", "--log-level", "warning", "--loop", loop,
        "--workers", str(workers),
        env={"MFU_OPENAI_BASE_URL": upstream},
    )  # fmt: skip
    server.start()
    return server


def _stop(server: ServerProcess | Floor) -> None:
    if isinstance(server, Floor):
        server.stop()
    else:
        server.terminate()
        server.wait()


def _start(kind: str, workdir: Path, upstream: str, loop: str) -> ServerProcess | Floor:
    if kind == "floor":
        floor = Floor(upstream, loop)
        floor.start()
        return floor
    return _serve(workdir, upstream, loop, int(kind.removeprefix("workers-")) if kind != "serve" else 1)


def relay_sweep(args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    pieces = max(int(args.rate * args.seconds), 2)
    upstream, base_url = start_upstream("--mode", "stamped", "--rate", str(args.rate), "--pieces", str(pieces))
    runs = []
    try:
        for streams in args.streams:
            for round_ in range(args.rounds):
                for kind in args.servers:
                    where = workdir / f"relay-{streams}-{round_}-{kind}"
                    where.mkdir()
                    server = _start(kind, where, base_url, args.loop)
                    upstream_cpu = cpu_seconds(upstream.pid)
                    try:
                        reports, side = run_load(server, "relay", streams, args.workers, args.addresses, ramp=1.0)
                    finally:
                        _stop(server)
                    upstream_cpu = cpu_seconds(upstream.pid) - upstream_cpu
                    run = {"server": kind, **relay_figures(streams, reports, side, upstream_cpu)}
                    print(json.dumps(_short(run)), file=sys.stderr, flush=True)
                    runs.append(run)
    finally:
        upstream.terminate()
        upstream.wait()
    return runs


def _short(run: dict[str, Any]) -> dict[str, Any]:
    """One line of progress on stderr."""
    keep = ("server", "streams", "connections", "relay_latency_ms", "server_cpu_us_per_chunk", "kib_per_connection")
    return {key: run[key] for key in keep if key in run}


def relay_summary(runs: list[dict[str, Any]], cpu_from: int, kinds: list[str]) -> dict[str, Any]:
    """Per server: streams held at p99 < 10 ms, p50 at the smallest count, CPU per chunk; ratios to the first."""
    summary: dict[str, Any] = {}
    for kind in kinds:
        mine = [run for run in runs if run["server"] == kind]
        counts = sorted({run["streams"] for run in mine})
        held = 0
        for count in counts:
            at = [run for run in mine if run["streams"] == count]
            if any(run["relay_latency_ms"]["p99"] >= P99_TARGET_MS or run["errors"] for run in at):
                break
            held = count
        smallest = [run["relay_latency_ms"]["p50"] for run in mine if run["streams"] == counts[0]]
        loaded = [run["server_cpu_us_per_chunk"] for run in mine if run["streams"] >= cpu_from] or [
            run["server_cpu_us_per_chunk"] for run in mine
        ]
        summary[kind] = {
            "streams_held_p99_under_10ms": held,
            f"p50_ms_at_{counts[0]}_streams": round(statistics.median(smallest), 2),
            "cpu_us_per_chunk": round(statistics.median(loaded)),
        }
    first = summary[kinds[0]]
    for kind in kinds[1:]:
        summary[f"{kind}_over_{kinds[0]}"] = {
            key: round(summary[kind][key] / first[key], 2) if first[key] else None for key in first
        }
    return summary


def idle_compare(args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    runs = []
    for round_ in range(args.rounds):
        for kind in args.servers:
            where = workdir / f"idle-{round_}-{kind}"
            where.mkdir()
            server = _start(kind, where, "http://127.0.0.1:9", args.loop)
            try:
                reports, side = run_load(server, "idle", args.idle, args.workers, args.addresses)
            finally:
                _stop(server)
            opened = sum(r["opened"] for r in reports)
            run = {
                "server": kind,
                "connections": args.idle,
                "opened": opened,
                "pongs": sum(r["pongs"] for r in reports),
                **errors(reports),
                "server_rss_before_mib": round(side["rss_before_kib"] / 1024, 1),
                "server_rss_open_mib": round(side["rss_open_kib"] / 1024, 1),
                "kib_per_connection": round((side["rss_open_kib"] - side["rss_before_kib"]) / max(opened, 1), 2),
                "load_1min": side["load_1min"],
            }
            print(json.dumps(_short(run)), file=sys.stderr, flush=True)
            runs.append(run)
    return runs


def idle_summary(runs: list[dict[str, Any]], kinds: list[str]) -> dict[str, Any]:
    each = {
        kind: statistics.median(run["kib_per_connection"] for run in runs if run["server"] == kind) for kind in kinds
    }
    summary: dict[str, Any] = {f"{kind}_kib_per_connection": each[kind] for kind in kinds}
    for kind in kinds[1:]:
        summary[f"{kind}_over_{kinds[0]}"] = round(each[kind] / each[kinds[0]], 2)
    return summary


def _servers(text: str) -> list[str]:
    kinds = text.split(",")
    for kind in kinds:
        if kind not in ("floor", "serve") and not (kind.startswith("workers-") and kind[8:].isdigit()):
            raise argparse.ArgumentTypeError(f"not a server: {kind!r} (floor, serve, workers-N)")
    return kinds


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--phases", default="relay,idle", help="comma-separated (default: relay,idle)")
    parser.add_argument(
        "--streams",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[50, 100, 150, 200, 300],
        help="stream counts of the sweep (default 50,100,150,200,300)",
    )
    parser.add_argument("--rate", type=float, default=30.0, help="chunks a second per answer (default 30)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each answer (default 5)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each server at each step (default 1)")
    parser.add_argument("--cpu-from", type=int, default=200, help="CPU per chunk over counts from this (default 200)")
    parser.add_argument("--idle", type=int, default=5000, help="idle connections (default 5000)")
    parser.add_argument(
        "--servers",
        type=_servers,
        default=["floor", "serve"],
        help="what to compare, ratios to the first: floor, serve, workers-N (default floor,serve)",
    )
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio", help="both servers' event loop")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="load processes (default 1: a chunk costs one process least, and the load shares the cores "
        "with the servers; --idle beyond 19,000 needs 2, for the fd limit)",
    )
    parser.add_argument("--addresses", type=int, default=8, help="source addresses 127.0.0.2 and up (default 8)")
    args = parser.parse_args()
    raise_fd_limit()  # inherited by the servers
    report: dict[str, Any] = {"machine": machine(), "loop": args.loop}
    with tempfile.TemporaryDirectory() as workdir:
        for phase in args.phases.split(","):
            if phase == "relay":
                runs = relay_sweep(args, Path(workdir))
                report["relay"] = {"summary": relay_summary(runs, args.cpu_from, args.servers), "runs": runs}
            elif phase == "idle":
                runs = idle_compare(args, Path(workdir))
                report["idle"] = {"summary": idle_summary(runs, args.servers), "runs": runs}
            else:
                parser.error(f"unknown phase {phase!r}")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
