"""Reconnect: time from the server coming back to green, and dead-peer detection under a blackhole.

back_to_green
    A ``ChatClient`` (the app's client, default settings) is connected to
    the real server (a subprocess on a fixed port). The server is killed
    (SIGKILL), stays down ``--outages`` seconds, and starts again on the
    same port and database; the figure is the time from the server
    listening again to the client's state being ``CONNECTED`` (the app's
    green dot). The client waits a full-jitter exponential backoff between
    attempts (ceiling 0.5 s doubling up to 20 s), so the figure grows with
    the outage; each outage is run ``--runs`` times, each after the
    connection has been up long enough to count as healthy (10 s), which
    starts the backoff again from its base.
blackhole
    The client talks to the server through ``tests/support/proxy.py``'s
    fault proxy, which then stops forwarding without closing anything (no
    FIN, no RST). The figure is the time from the blackhole to the client
    leaving ``CONNECTED``, with the heartbeat of ``--ping-interval`` and
    ``--ping-timeout`` (default: the app's, 25 s and 10 s). The client pings
    on connect and then every interval; the blackhole starts at a random
    point of that cycle, so expect timeout .. interval + timeout. The
    server's own heartbeat (``--server-ping-interval``/``--server-ping-timeout``,
    default the server's 25 s and 10 s) notices the silent client the same
    way; the second figure is the time until the server has freed the
    connection (its "disconnected" log line), which adds the server's
    close timeout (5 s: the close frame cannot get through) to the
    detection.

    With ``--blackhole-during answer`` the network dies instead 0.5 to 3 s
    into an answer (the demo model writing a word every 20 ms): the
    server owes the client frames, so the client probes the silence
    (``--probe-after``, ``--probe-timeout``, default the app's 3 s and 5 s)
    instead of waiting for the heartbeat. Its figures add the time until
    the client says it is checking (``ConnectionState.checking``, the
    app's yellow dot), and whether the answer arrived whole once the
    network came back (its ``seq``s 1 to the end's, once each).

    python -m bench.reconnect --outages 1,5,15 --runs 5
    python -m bench.reconnect --outages "" --blackhole-during idle,answer
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import bench_parser, load_average, machine
from mfu_tui.client import ChatClient, ConnectionState, Status
from mfu_tui.protocol import Cancelled, Chunk, Complete
from tests.support.proxy import FaultProxy
from tests.support.server import ServerProcess

TIMEOUT = 120.0


async def _state(client: ChatClient, wanted: bool) -> float:
    """Wait until the client is (``wanted``) or is not (not ``wanted``) connected; the time then."""
    changed = asyncio.Event()
    unsubscribe = client.on_state(lambda state: changed.set())
    try:
        async with asyncio.timeout(TIMEOUT):
            while (client.state.status is Status.CONNECTED) != wanted:
                changed.clear()
                await changed.wait()
        return time.perf_counter()
    finally:
        unsubscribe()


async def back_to_green(workdir: Path, outage: float, runs: int) -> dict[str, Any]:
    server = ServerProcess(workdir, "--log-level", "warning")
    server.start()
    client = ChatClient(server.url, server.token("bench"), data_dir=workdir / "client")
    times = []
    try:
        await client.connect()
        await _state(client, True)
        for _ in range(runs):
            # Stay up long enough to count as healthy (the backoff starts again from
            # its base only then), as a connection of some minutes would.
            await asyncio.sleep(client.backoff.healthy_after + 0.5)
            server.kill()
            await _state(client, False)
            await asyncio.sleep(outage)
            await asyncio.to_thread(server.start)
            back = time.perf_counter()
            times.append(await _state(client, True) - back)
    finally:
        await client.close()
        server.terminate()
        server.wait()
    return {
        "outage_seconds": outage,
        "runs": runs,
        "median_seconds": round(statistics.median(times), 3),
        "max_seconds": round(max(times), 3),
        "all": [round(t, 3) for t in times],
    }


async def blackhole(workdir: Path, args: argparse.Namespace, during: str) -> dict[str, Any]:
    heartbeat = ("--ping-interval", str(args.server_ping_interval), "--ping-timeout", str(args.server_ping_timeout))
    answer = ("--demo-words", "2000", "--demo-delay-ms", "20") if during == "answer" else ()
    server = ServerProcess(workdir, "--log-level", "info", *heartbeat, *answer)
    server.start()
    figures: dict[str, Any] = {}
    try:
        async with FaultProxy(server.port) as proxy:
            client = ChatClient(
                proxy.url("/ws"),
                server.token("bench"),
                data_dir=workdir / "client",
                ping_interval=args.ping_interval,
                ping_timeout=args.ping_timeout,
                probe_after=args.probe_after,
                probe_timeout=args.probe_timeout,
            )
            chunks: list[Chunk] = []
            began, ended = asyncio.Event(), asyncio.Event()
            client.on_message(lambda frame: _answer_frame(frame, chunks, began, ended))
            checking_at: list[float] = []

            def checking(state: ConnectionState) -> None:
                if state.checking and not checking_at:
                    checking_at.append(time.perf_counter())

            client.on_state(checking)
            try:
                await client.connect()
                await _state(client, True)
                if during == "answer":
                    await client.send_message(None, "a long answer")
                    async with asyncio.timeout(TIMEOUT):
                        await began.wait()
                    await asyncio.sleep(0.5 + random.random() * 2.5)
                else:
                    # The client pings on connect, then every interval: the network dies
                    # at a random point of that cycle, after the first pong.
                    await asyncio.sleep(1 + random.random() * args.ping_interval)
                started = time.perf_counter()
                proxy.blackhole()
                figures["client_noticed_after_seconds"] = round(await _state(client, False) - started, 2)
                if checking_at:
                    figures["client_checking_after_seconds"] = round(checking_at[0] - started, 2)
                if during == "answer":
                    proxy.pass_through()
                    async with asyncio.timeout(TIMEOUT):
                        await ended.wait()
                    figures["answer_whole"] = [c.seq for c in chunks] == list(range(1, len(chunks) + 1))
                else:
                    server_freed = await _server_logged(server, "bench disconnected") - started
                    figures["server_freed_after_seconds"] = round(server_freed, 2)
            finally:
                await client.close()
    finally:
        server.terminate()
        server.wait()
    return figures


def _answer_frame(frame: object, chunks: list[Chunk], began: asyncio.Event, ended: asyncio.Event) -> None:
    """Keep the answer's chunks, and say when it began and ended."""
    if isinstance(frame, Chunk):
        chunks.append(frame)
        began.set()
    elif isinstance(frame, Complete | Cancelled):
        ended.set()


async def _server_logged(server: ServerProcess, line: str) -> float:
    """When the server logged ``line`` (its log is read by a thread: looked at every 50 ms)."""
    async with asyncio.timeout(TIMEOUT):
        while not any(line in logged for logged in server.stderr_lines):
            await asyncio.sleep(0.05)
    return time.perf_counter()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"machine": machine(), "back_to_green": []}
    with tempfile.TemporaryDirectory() as tmp:
        for n, outage in enumerate(float(x) for x in args.outages.split(",") if x):
            where = Path(tmp) / f"outage-{n}"
            where.mkdir()
            report["back_to_green"].append(await back_to_green(where, outage, args.runs))
        for during in args.blackhole_during.split(","):
            where = Path(tmp) / f"blackhole-{during}"
            where.mkdir()
            report[f"blackhole_{during}"] = {
                "client_heartbeat": [args.ping_interval, args.ping_timeout],
                "client_probe": [args.probe_after, args.probe_timeout],
                "server_heartbeat": [args.server_ping_interval, args.server_ping_timeout],
                "runs": [await blackhole(where, args, during) for _ in range(args.blackhole_runs)],
            }
    report["load_1min_after"] = load_average()
    return report


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument(
        "--outages", default="1,5", help="seconds the server stays down, comma-separated (default 1,5; '' for none)"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of each outage (default 3)")
    parser.add_argument(
        "--ping-interval", type=float, default=25.0, help="client heartbeat interval (default 25, the app's)"
    )
    parser.add_argument(
        "--ping-timeout", type=float, default=10.0, help="client heartbeat timeout (default 10, the app's)"
    )
    parser.add_argument(
        "--server-ping-interval", type=float, default=25.0, help="server heartbeat interval (default 25, the server's)"
    )
    parser.add_argument(
        "--server-ping-timeout", type=float, default=10.0, help="server heartbeat timeout (default 10, the server's)"
    )
    parser.add_argument(
        "--probe-after", type=float, default=3.0, help="client probe after a silence (default 3, the app's)"
    )
    parser.add_argument("--probe-timeout", type=float, default=5.0, help="client probe timeout (default 5, the app's)")
    parser.add_argument("--blackhole-runs", type=int, default=3, help="blackhole runs (default 3)")
    parser.add_argument(
        "--blackhole-during",
        default="idle",
        help="when the network dies: idle, answer (0.5-3 s into an answer), or both: idle,answer (default idle)",
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
