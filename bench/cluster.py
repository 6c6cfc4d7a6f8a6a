"""Several nodes against one: connections held, chunk throughput, cross-node delivery.

Starts PostgreSQL and Redis, then ONE or THREE ``mfu-chat serve`` nodes
(``--db postgresql://... --broker redis://...``, the demo provider) behind
nginx, with ``tests.support.cluster.Cluster``. Every node, even the lone
one, runs with the broker, and every load connection goes through nginx,
so the two runs differ only in the number of nodes. Load clients run in
``--workers`` processes over the source addresses 127.0.0.2 and up, with
RLIMIT_NOFILE raised to the hard limit (inherited by the nodes). Phases:

hold
    ``--connections`` authenticated WebSockets opened through nginx, each
    answering one JSON ping. Figures: connections held, how nginx spread
    them over the nodes, RSS of the nodes (and of nginx) before and after,
    KiB per connection.
throughput
    ``--streams`` users (one connection and one chat each) ask at once; the
    demo provider answers at full speed (``--demo-delay-ms 0``, an answer
    longer than the window). Chunks received by all clients during
    ``--window`` seconds, after ``--warmup`` seconds, then every answer is
    cancelled. Figures: chunks a second, p50/p99 of the gap between two
    chunks of one stream, CPU of each part (nodes, nginx, PostgreSQL, Redis,
    load clients) in the window and the nodes' CPU per chunk.
cross-node (three nodes only, on a cluster of its own)
    One user with three direct connections: the sender and a follower on
    node 0, a follower on node 1. The demo provider paces ``--answers``
    answers at 100 words a second. Per chunk: arrival at each follower
    minus arrival at the sender (one process, one clock), i.e. what the
    node's own fan-out adds against what the trip through Redis adds.

The default (``--nodes 1,3``) runs both clusters one after the other and
prints both side by side with the ratio 3 nodes / 1 node; it takes about
45 seconds. On a 2-core machine every process (nodes, nginx, PostgreSQL,
Redis, load clients) shares the same two cores: the figures show what the
setup costs, not a speedup.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import multiprocessing
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench.common import bench_parser, cpu_seconds, load_average, machine, raise_fd_limit, rss_kib
from mfu_tui.protocol import (
    Ack,
    Cancel,
    Cancelled,
    Chunk,
    Complete,
    Error,
    Message,
    Ping,
    Pong,
    Subscribe,
    decode_server,
    encode,
)
from tests.support.cluster import Cluster
from tests.support.figures import percentiles
from tests.support.load import open_connections, ping_once
from tests.support.postgres import PostgresServer, running_postgres
from tests.support.redis import running_redis

#: Handshakes one load process runs at once.
OPENING_AT_ONCE = 50
#: Safety net for each phase.
PHASE_TIMEOUT = 300.0
#: Every node: no rate limit in the way, quiet logs, the lease of a deployment.
NODE_ARGS = ("--rate-limit", "1000000", "--log-level", "warning")
LEASE = 10.0
#: Throughput: words of an answer at full speed: more than a stream gets in a window, but not so many
#: that writing the answer out (the demo provider does it at the start: ~15 ms) weighs on the window.
FULL_SPEED_ARGS = ("--demo-words", "50000", "--demo-delay-ms", "0")
#: Cross-node: 100 words a second, 100 words an answer.
PACED_ARGS = ("--demo-words", "100", "--demo-delay-ms", "10")


# --- processes and their figures ---------------------------------------------


def children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (nginx's worker, PostgreSQL's backends)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it exited meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its children (exited children are not counted)."""
    total = 0.0
    for each in [pid, *children(pid)]:
        try:
            total += cpu_seconds(each)
        except OSError:
            pass
    return total


def tree_rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and its children, in KiB."""
    return sum(rss_kib(each) for each in [pid, *children(pid)])


def connections_per_port(ports: list[int]) -> list[int]:
    """How many established TCP connections have each of ``ports`` as their local port."""
    counts = collections.Counter()
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            if fields[3] == "01":  # established
                counts[int(fields[1].rsplit(":", 1)[1], 16)] += 1
    return [counts[port] for port in ports]


class Parts:
    """The pids of every part of the setup, for CPU and memory figures."""

    def __init__(self, cluster: Cluster, postgres: PostgresServer, redis_pid: int) -> None:
        assert cluster.nginx.process is not None
        self.nodes = [node.process.pid for node in cluster.nodes if node.process is not None]
        self.nginx = cluster.nginx.process.pid
        self.postgres = int((postgres.data / "postmaster.pid").read_text().split()[0])
        self.redis = redis_pid

    def cpu(self) -> dict[str, float]:
        return {
            "nodes": sum(cpu_seconds(pid) for pid in self.nodes),
            "nginx": tree_cpu(self.nginx),
            "postgresql": tree_cpu(self.postgres),
            "redis": cpu_seconds(self.redis),
        }

    def nodes_rss_kib(self) -> int:
        return sum(rss_kib(pid) for pid in self.nodes)


# --- load processes ------------------------------------------------------------


def _worker(
    job: str, url: str, tokens: list[str], addresses: list[str], go: Any, begin: Any, window: float, results: Any
) -> None:
    """A load process: open the connections, report ready, wait for ``go``, run ``job``, report.

    ``begin`` (a shared ``multiprocessing.Value``) is when the throughput window opens, on CLOCK_MONOTONIC,
    which every process of the machine shares.
    """
    raise_fd_limit()
    asyncio.run(_work(job, url, tokens, addresses, go, begin, window, results))


async def _work(
    job: str, url: str, tokens: list[str], addresses: list[str], go: Any, begin: Any, window: float, results: Any
) -> None:
    figures: dict[str, Any] = {
        "opened": 0,
        "pongs": 0,
        "errors": [],
        "chunks": 0,
        "gaps_ms": [],
        "stream_rates": [],
        "ended": 0,
    }
    sockets = await open_connections(
        url, tokens, addresses, figures["errors"], at_once=OPENING_AT_ONCE, open_timeout=120
    )
    figures["opened"] = len(sockets)
    if job == "hold":
        await asyncio.gather(*(ping_once(ws, figures, PHASE_TIMEOUT) for ws in sockets))
    results.put(("ready", figures))
    await asyncio.get_running_loop().run_in_executor(None, go.wait)
    if job == "throughput":
        await asyncio.gather(*(_stream(ws, figures, begin.value, begin.value + window) for ws in sockets))
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    results.put(("done", figures))


async def _stream(ws: ClientConnection, figures: dict[str, Any], begin: float, end: float) -> None:
    """Ask once, count the chunks that arrive between ``begin`` and ``end``, then cancel the answer."""
    chat_id = reply_id = None
    last = None
    counted = 0
    try:
        await ws.send(encode(Message(chat_id=None, content="throughput", client_message_id=str(uuid.uuid4()))).decode())
        async with asyncio.timeout(PHASE_TIMEOUT):
            async for data in ws:
                now = time.monotonic()
                frame = decode_server(data)
                if isinstance(frame, Ack):
                    chat_id, reply_id = frame.chat_id, frame.reply_id
                elif isinstance(frame, Chunk):
                    if begin <= now < end:
                        counted += 1
                        if last is not None:
                            figures["gaps_ms"].append((now - last) * 1000)
                        last = now
                    elif now >= end and chat_id is not None:
                        await ws.send(encode(Cancel(chat_id=chat_id, message_id=reply_id)).decode())
                        chat_id = None  # cancel once
                elif isinstance(frame, Cancelled):
                    figures["ended"] += 1
                    break
                elif isinstance(frame, Complete):  # the answer was shorter than the window
                    figures["errors"].append("complete before the end of the window")
                    break
                elif isinstance(frame, Error):
                    figures["errors"].append(f"error frame: {frame.code} {frame.message}")
    except Exception as error:  # noqa: BLE001 (a figure: streams that failed)
        figures["errors"].append(f"stream: {error!r}")
    figures["chunks"] += counted
    figures["stream_rates"].append(counted / (end - begin))


def _run_load(
    cluster: Cluster, job: str, count: int, workers: int, addresses: int, window: tuple[float, float] = (0.0, 0.0)
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Any], Any]:
    """Start ``workers`` load processes on ``count`` users; return once all are ready.

    Returns the ready reports, a list the done reports will fill, the
    processes, and a function ``finish()`` that starts the job (``go``) and
    collects the done reports. ``window`` is (warmup, length) for throughput.
    """
    sources = [f"127.0.0.{2 + n}" for n in range(addresses)]
    context = multiprocessing.get_context("spawn")
    go, results = context.Event(), context.Queue()
    begin = context.Value("d", 0.0)
    tokens = [cluster.token(f"{job}-{n}") for n in range(count)]
    processes = [
        context.Process(
            target=_worker,
            args=(job, cluster.url, tokens[w::workers], sources[w::workers] or sources, go, begin, window[1], results),
        )
        for w in range(workers)
    ]
    for process in processes:
        process.start()
    ready = [_expect(results, "ready") for _ in processes]
    done: list[dict[str, Any]] = []

    def finish(while_running: Any = None) -> None:
        begin.value = time.monotonic() + 0.2 + window[0]  # every process reads the same window
        go.set()
        if while_running is not None:
            while_running(begin.value)
        done.extend(_expect(results, "done") for _ in processes)
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.kill()

    return ready, done, processes, finish


def _expect(results: Any, kind: str) -> dict[str, Any]:
    got, figures = results.get(timeout=PHASE_TIMEOUT)
    if got != kind:
        raise RuntimeError(f"a load process said {got!r}, not {kind!r}")
    return figures


def _errors(reports: list[dict[str, Any]]) -> dict[str, Any]:
    errors = [e for r in reports for e in r["errors"]]
    return {"errors": len(errors), "error_samples": errors[:3]}


# --- phases ---------------------------------------------------------------------


def hold_phase(cluster: Cluster, parts: Parts, count: int, workers: int, addresses: int) -> dict[str, Any]:
    nodes_before, nginx_before = parts.nodes_rss_kib(), tree_rss_kib(parts.nginx)
    opening = time.monotonic()
    ready, done, _, finish = _run_load(cluster, "hold", count, workers, addresses)
    open_seconds = time.monotonic() - opening
    held = sum(r["pongs"] for r in ready)
    nodes_after, nginx_after = parts.nodes_rss_kib(), tree_rss_kib(parts.nginx)
    spread = connections_per_port([node.port for node in cluster.nodes])
    load = load_average()
    finish()
    return {
        "connections": count,
        "opened": sum(r["opened"] for r in ready),
        "held": held,
        **_errors(ready),
        "per_node": spread,
        "open_seconds": round(open_seconds, 1),
        "nodes_rss_mib": [round(nodes_before / 1024, 1), round(nodes_after / 1024, 1)],
        "nodes_kib_per_connection": round((nodes_after - nodes_before) / max(held, 1), 1),
        "nginx_rss_mib": [round(nginx_before / 1024, 1), round(nginx_after / 1024, 1)],
        "nginx_kib_per_connection": round((nginx_after - nginx_before) / max(held, 1), 1),
        "load_1min": load,
    }


def throughput_phase(
    cluster: Cluster, parts: Parts, streams: int, warmup: float, window: float, workers: int, addresses: int
) -> dict[str, Any]:
    _, done, processes, finish = _run_load(cluster, "throughput", streams, workers, addresses, (warmup, window))
    cpu: dict[str, float] = {}

    def measure(begin: float) -> None:
        # The window is the same for the load processes (they count chunks) and here (CPU).
        time.sleep(max(begin - time.monotonic(), 0))
        before = {**parts.cpu(), "load clients": sum(cpu_seconds(p.pid) for p in processes)}
        time.sleep(max(begin + window - time.monotonic(), 0))
        after = {**parts.cpu(), "load clients": sum(cpu_seconds(p.pid) for p in processes)}
        cpu.update({part: after[part] - before[part] for part in before})
        cpu["load_1min"] = load_average()

    finish(measure)
    chunks = sum(r["chunks"] for r in done)
    rates = [rate for r in done for rate in r["stream_rates"]]
    load = cpu.pop("load_1min")
    return {
        "streams": streams,
        "window_seconds": window,
        "answers_ended": sum(r["ended"] for r in done),
        **_errors(done),
        "chunks": chunks,
        "chunks_per_second": round(chunks / window),
        # Many chunks come in one read at full speed: the gaps show stalls, the rates fairness.
        "gap_ms": percentiles([g for r in done for g in r["gaps_ms"]], 3),
        "stream_chunks_per_second": percentiles(rates, 0),
        "slowest_stream_chunks_per_second": round(min(rates, default=0)),
        "cpu_percent_of_one_core": {part: round(seconds / window * 100) for part, seconds in cpu.items()},
        "nodes_cpu_us_per_chunk": round(cpu["nodes"] / max(chunks, 1) * 1e6),
        "load_1min": load,
    }


async def _cross_node(cluster: Cluster, answers: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {cluster.token('relay')}"}
    node0, node1 = cluster.nodes[0].url, cluster.nodes[1].url
    sender, same, other = [
        await connect(url, additional_headers=headers, proxy=None, max_queue=None) for url in (node0, node0, node1)
    ]
    arrivals: dict[str, dict[tuple[str, int], float]] = {"sender": {}, "same": {}, "other": {}}
    ends: dict[str, asyncio.Queue[str]] = {name: asyncio.Queue() for name in arrivals}
    chats: asyncio.Queue[str] = asyncio.Queue()
    pongs: dict[str, asyncio.Queue[None]] = {name: asyncio.Queue() for name in arrivals}

    async def read(name: str, ws: ClientConnection) -> None:
        async for data in ws:
            now = time.monotonic()
            frame = decode_server(data)
            if isinstance(frame, Chunk):
                arrivals[name][(frame.message_id, frame.seq)] = now
            elif isinstance(frame, Complete):
                if name == "sender":
                    chats.put_nowait(frame.chat_id)
                ends[name].put_nowait(frame.message_id)
            elif isinstance(frame, Pong):
                pongs[name].put_nowait(None)
            elif isinstance(frame, Error):
                raise RuntimeError(f"{name}: {frame.code} {frame.message}")

    readers = [asyncio.ensure_future(read(n, ws)) for n, ws in (("sender", sender), ("same", same), ("other", other))]
    try:
        async with asyncio.timeout(PHASE_TIMEOUT):
            await sender.send(encode(Message(chat_id=None, content="hello", client_message_id="first")).decode())
            chat_id = await chats.get()
            await ends["sender"].get()
            for name, ws in (("same", same), ("other", other)):
                await ws.send(encode(Subscribe(chat_id=chat_id)).decode())
                await ws.send(encode(Ping(ts=1.0)).decode())
                await pongs[name].get()
            last = ""
            for n in range(answers):
                await sender.send(
                    encode(Message(chat_id=chat_id, content=f"answer {n}", client_message_id=f"answer-{n}")).decode()
                )
                last = await ends["sender"].get()
            for name in ("same", "other"):  # both followers saw the last answer end
                while await ends[name].get() != last:
                    pass
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*(ws.close() for ws in (sender, same, other)), return_exceptions=True)
    figures: dict[str, Any] = {"answers": answers, "chunks": len(arrivals["sender"])}
    for name, label in (("same", "same_node_ms"), ("other", "via_redis_ms")):
        delays = [
            (t - arrivals["sender"][key]) * 1000 for key, t in arrivals[name].items() if key in arrivals["sender"]
        ]
        figures[label] = percentiles(delays, 2)
    return figures


def cross_node_phase(workdir: Path, postgres: PostgresServer, redis_url: str, answers: int) -> dict[str, Any]:
    with Cluster(
        workdir, postgres.new_database(), redis_url, nodes=3, lease=LEASE, args=(*NODE_ARGS, *PACED_ARGS)
    ) as cluster:
        load = load_average()
        figures = asyncio.run(_cross_node(cluster, answers))
    return {**figures, "load_1min": load}


def run(nodes: int, args: argparse.Namespace, workdir: Path, postgres: PostgresServer, redis: Any) -> dict[str, Any]:
    """Every phase on a fresh cluster of ``nodes`` nodes (and a fresh database)."""
    assert redis.process is not None
    report: dict[str, Any] = {}
    node_args = (*NODE_ARGS, *FULL_SPEED_ARGS)
    with Cluster(
        workdir / f"{nodes}-nodes", postgres.new_database(), redis.url, nodes=nodes, lease=LEASE, args=node_args
    ) as cluster:
        parts = Parts(cluster, postgres, redis.process.pid)
        if "hold" in args.phases:
            report["hold"] = hold_phase(cluster, parts, args.connections, args.workers, args.addresses)
        if "throughput" in args.phases:
            report["throughput"] = throughput_phase(
                cluster, parts, args.streams, args.warmup, args.window, args.workers, args.addresses
            )
    if nodes > 1 and "cross-node" in args.phases:
        report["cross_node"] = cross_node_phase(workdir / f"{nodes}-nodes-paced", postgres, redis.url, args.answers)
    return report


# --- the table --------------------------------------------------------------------


def rows(report: dict[str, Any]) -> list[tuple[str, Any]]:
    """(label, number or text) for one run, in table order."""
    out: list[tuple[str, Any]] = []
    hold = report.get("hold")
    if hold:
        out += [
            ("connections held (of asked)", f"{hold['held']} / {hold['connections']}"),
            ("  per node", " / ".join(map(str, hold["per_node"]))),
            ("  seconds to open all", hold["open_seconds"]),
            ("  nodes RSS after, MiB", hold["nodes_rss_mib"][1]),
            ("  nodes KiB per connection", hold["nodes_kib_per_connection"]),
            ("  nginx KiB per connection", hold["nginx_kib_per_connection"]),
        ]
    put = report.get("throughput")
    if put:
        cpu = put["cpu_percent_of_one_core"]
        out += [
            ("chunks/s received, all streams", put["chunks_per_second"]),
            ("  per stream: slowest, chunks/s", put["slowest_stream_chunks_per_second"]),
            ("  per stream: median, chunks/s", round(put["stream_chunks_per_second"].get("p50", 0))),
            ("  gap between two chunks p50, ms", put["gap_ms"].get("p50", "-")),
            ("  gap between two chunks p99, ms", put["gap_ms"].get("p99", "-")),
            ("  gap between two chunks max, ms", put["gap_ms"].get("max", "-")),
            ("  nodes CPU per chunk, us", put["nodes_cpu_us_per_chunk"]),
            *((f"  CPU % of a core: {part}", percent) for part, percent in cpu.items()),
        ]
    cross = report.get("cross_node")
    if cross:
        out += [
            ("follower, same node p50 / p99, ms", f"{cross['same_node_ms']['p50']} / {cross['same_node_ms']['p99']}"),
            ("follower, via Redis p50 / p99, ms", f"{cross['via_redis_ms']['p50']} / {cross['via_redis_ms']['p99']}"),
        ]
    return out


def table(reports: dict[int, dict[str, Any]]) -> str:
    """A Markdown table: one column per run, and the ratio 3 nodes / 1 node where both are numbers."""
    counts = sorted(reports)
    columns = {n: dict(rows(reports[n])) for n in counts}
    labels = list(dict.fromkeys(label for n in counts for label, _ in rows(reports[n])))
    ratio = len(counts) == 2
    header = [""] + [f"{n} node{'s' * (n > 1)}" for n in counts] + (["ratio"] if ratio else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label in labels:
        cells = [str(columns[n].get(label, "-")) for n in counts]
        if ratio:
            low, high = (columns[n].get(label) for n in counts)
            numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (low, high))
            cells.append(f"{high / low:.2f}x" if numbers and low else "")
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--nodes", default="1,3", help="1, 3, or 1,3 (default: both, side by side)")
    parser.add_argument("--phases", default="hold,throughput,cross-node", help="comma-separated (default: all three)")
    parser.add_argument("--connections", type=int, default=3000, help="connections held (default 3000)")
    parser.add_argument("--streams", type=int, default=30, help="concurrent full-speed answers (default 30)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before the window (default 2)")
    parser.add_argument("--window", type=float, default=8.0, help="seconds chunks are counted (default 8)")
    parser.add_argument("--answers", type=int, default=10, help="paced answers timed cross-node (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="load processes (default 2)")
    parser.add_argument("--addresses", type=int, default=8, help="source addresses 127.0.0.2 and up (default 8)")
    parser.add_argument("--json", action="store_true", help="print every figure as JSON after the table")
    args = parser.parse_args()
    args.phases = args.phases.split(",")
    counts = [int(n) for n in args.nodes.split(",")]
    raise_fd_limit()  # inherited by the nodes and nginx
    reports: dict[int, dict[str, Any]] = {}
    workdir = Path(tempfile.mkdtemp(prefix="mfu-bench-cluster-"))
    try:
        with running_postgres() as postgres, running_redis() as redis:
            for nodes in counts:
                reports[nodes] = run(nodes, args, workdir, postgres, redis)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"machine: {json.dumps(machine())}")
    print(table(reports))
    if args.json:
        print(json.dumps({f"{n}_nodes": reports[n] for n in counts}, indent=2))


if __name__ == "__main__":
    main()
