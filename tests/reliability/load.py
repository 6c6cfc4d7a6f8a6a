"""Load: many concurrent connections, some of them streaming, from several processes and source addresses.

The real server runs as a subprocess. ``--workers`` load processes open
``--connections`` authenticated WebSocket connections in total (one user
each), spread over the source addresses 127.0.0.2 ... 127.0.0.(1 +
``--addresses``). Once every connection is open, ``--streams`` of them ask a
question at the same moment and read the answer; then every connection
sends a ``ping`` and must get its ``pong``. Figures:

- errors: connections that failed to open or closed, ``error`` frames, seq
  gaps or repeats, answers that did not complete, missing pongs (target 0);
- first-chunk latency (question sent -> first chunk) and the gap between
  two chunks of one answer (the demo provider sends one every
  ``--delay-ms``: the excess is what the load added), as percentiles;
- server RSS with all connections open, server CPU during the streams.

Run by hand (the issue's size)::

    python -m tests.reliability.load --connections 1000 --streams 100

CI runs 200 connections and 20 streams (``tests/reliability/test_load.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection

from mfu_tui.protocol import (
    Chunk,
    Complete,
    Error,
    Message,
    decode_server,
    encode,
)
from tests.support.figures import percentiles
from tests.support.load import open_connections, ping_once
from tests.support.server import ServerProcess

#: Safety net for each phase; the run normally takes seconds.
PHASE_TIMEOUT = 300.0
#: Handshakes a worker runs at once (a burst of 1000 would only measure the accept queue).
OPENING_AT_ONCE = 25


@dataclass
class LoadReport:
    """Figures of one run."""

    connections: int = 0
    streams: int = 0
    workers: int = 0
    source_addresses: list[str] = field(default_factory=list)
    """The addresses the load connections really came from."""
    opened: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    answers_complete: int = 0
    chunks: int = 0
    pongs: int = 0
    first_chunk_ms: dict[str, Any] = field(default_factory=dict)
    chunk_gap_ms: dict[str, Any] = field(default_factory=dict)
    demo_delay_ms: float = 0.0
    open_seconds: float = 0.0
    stream_seconds: float = 0.0
    server_rss_idle_mib: float = 0.0
    server_rss_open_mib: float = 0.0
    server_cpu_percent_of_one_core: float = 0.0
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return (
            self.errors == 0
            and self.opened == self.connections
            and self.answers_complete == self.streams
            and self.pongs == self.connections
        )


def raise_fd_limit() -> None:
    """Soft RLIMIT_NOFILE up to the hard limit: each connection is a descriptor on each side."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- One load process --------------------------------------------------------


def worker(
    url: str,
    tokens: list[str],
    addresses: list[str],
    streams: int,
    go: Any,
    results: Any,
) -> None:
    """Entry point of a load process: open, wait for ``go``, stream, ping, report."""
    raise_fd_limit()
    results.put(asyncio.run(_worker(url, tokens, addresses, streams, go, results)))


async def _worker(
    url: str,
    tokens: list[str],
    addresses: list[str],
    streams: int,
    go: Any,
    results: Any,
) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "opened": 0,
        "errors": [],
        "complete": 0,
        "chunks": 0,
        "pongs": 0,
        "first": [],
        "gaps": [],
    }
    sockets = await open_connections(
        url, tokens, addresses, figures["errors"], at_once=OPENING_AT_ONCE, open_timeout=60
    )
    figures["opened"] = len(sockets)
    figures["sources"] = sorted({ws.local_address[0] for ws in sockets})
    results.put("ready")
    await asyncio.get_running_loop().run_in_executor(None, go.wait)
    await asyncio.gather(*(_stream(ws, figures) for ws in sockets[:streams]))
    await asyncio.gather(*(ping_once(ws, figures, PHASE_TIMEOUT) for ws in sockets))
    await asyncio.gather(*(ws.close() for ws in sockets))
    return figures


async def _stream(ws: ClientConnection, figures: dict[str, Any]) -> None:
    """One question; its answer read to the end, timing each chunk."""
    sent = time.perf_counter()
    message = Message(chat_id=None, content="load question", client_message_id=str(uuid.uuid4()))
    last_seq, last_at = 0, sent
    try:
        await ws.send(encode(message).decode())
        async with asyncio.timeout(PHASE_TIMEOUT):
            async for data in ws:
                frame = decode_server(data)
                now = time.perf_counter()
                if isinstance(frame, Chunk):
                    if frame.seq != last_seq + 1:
                        figures["errors"].append(f"seq {frame.seq} after {last_seq}")
                    (figures["first"] if last_seq == 0 else figures["gaps"]).append(now - last_at)
                    last_seq, last_at = frame.seq, now
                    figures["chunks"] += 1
                elif isinstance(frame, Complete):
                    figures["complete"] += 1
                    return
                elif isinstance(frame, Error):
                    figures["errors"].append(f"error frame: {frame.code} {frame.message}")
    except Exception as error:  # noqa: BLE001 (counted as a load error)
        figures["errors"].append(f"stream: {error!r}")


# --- The conductor -----------------------------------------------------------


def run(
    connections: int,
    streams: int,
    workdir: Path,
    *,
    workers: int = 4,
    addresses: int = 8,
    words: int = 200,
    delay_ms: float = 20.0,
) -> LoadReport:
    """Start the server and the load processes; returns the figures."""
    raise_fd_limit()  # the server subprocess inherits it
    started = time.monotonic()
    sources = [f"127.0.0.{2 + n}" for n in range(addresses)]
    report = LoadReport(
        connections=connections,
        streams=streams,
        workers=workers,
        source_addresses=sources,
        demo_delay_ms=delay_ms,
    )
    server = ServerProcess(
        workdir,
        *("--demo-words", str(words), "--demo-delay-ms", str(delay_ms), "--rate-limit", "1000000"),
        *("--log-level", "warning"),
    )  # fmt: skip
    server.start()
    assert server.process is not None
    pid = server.process.pid
    context = multiprocessing.get_context("spawn")
    go, results = context.Event(), context.Queue()
    processes = []
    figures: list[dict[str, Any]] = []
    try:
        report.server_rss_idle_mib = _rss_mib(pid)
        tokens = [server.token(f"load-{n}") for n in range(connections)]
        for w in range(workers):
            share = tokens[w::workers]
            share_streams = len(range(w, streams, workers))
            process = context.Process(
                target=worker,
                args=(
                    server.url,
                    share,
                    sources[w::workers] or sources,
                    share_streams,
                    go,
                    results,
                ),
            )
            process.start()
            processes.append(process)
        for _ in range(workers):
            assert results.get(timeout=PHASE_TIMEOUT) == "ready"
        report.open_seconds = round(time.monotonic() - started, 1)
        report.server_rss_open_mib = _rss_mib(pid)
        cpu_before, streaming_since = _cpu_seconds(pid), time.monotonic()
        go.set()
        figures = [results.get(timeout=PHASE_TIMEOUT) for _ in range(workers)]
        report.stream_seconds = round(time.monotonic() - streaming_since, 1)
        report.server_cpu_percent_of_one_core = round(
            (_cpu_seconds(pid) - cpu_before) / max(report.stream_seconds, 0.1) * 100
        )
    finally:
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.kill()
        server.terminate()
        server.wait()
    errors = [e for f in figures for e in f["errors"]]
    report.opened = sum(f["opened"] for f in figures)
    report.source_addresses = sorted({a for f in figures for a in f["sources"]})
    report.errors = len(errors)
    report.error_samples = errors[:10]
    report.answers_complete = sum(f["complete"] for f in figures)
    report.chunks = sum(f["chunks"] for f in figures)
    report.pongs = sum(f["pongs"] for f in figures)
    report.first_chunk_ms = percentiles(sorted(x * 1000 for f in figures for x in f["first"]))
    report.chunk_gap_ms = percentiles(sorted(x * 1000 for f in figures for x in f["gaps"]))
    report.seconds = round(time.monotonic() - started, 1)
    return report


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--addresses", type=int, default=8, help="source addresses 127.0.0.2 and up")
    parser.add_argument("--words", type=int, default=200)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        report = run(
            args.connections,
            args.streams,
            Path(workdir),
            workers=args.workers,
            addresses=args.addresses,
            words=args.words,
            delay_ms=args.delay_ms,
        )
    print(json.dumps({**asdict(report), "clean": report.clean}, indent=2))
    raise SystemExit(0 if report.clean else 1)


if __name__ == "__main__":
    main()
