"""Server capacity: idle connections and their memory, chunk relay latency, chat_updated fan-out.

Runs the real server (``python -m mfu_tui serve``) as a subprocess and loads
it from ``--workers`` client processes spread over the source addresses
127.0.0.2 and up (each process and the server raise RLIMIT_NOFILE to the
hard limit). Four phases, each with its own fresh server:

idle
    ``--idle`` authenticated connections stay open; each answers one JSON
    ping (so each is really served). Figures: connections held, server RSS
    before and after, KiB per connection (target: 10,000 at <= 40 KiB).
relay
    The server uses ``--provider openai`` against ``bench.upstream``, a fake
    OpenAI-compatible process that writes ``--rate`` pieces a second per
    answer, each piece holding its send time (CLOCK_MONOTONIC, shared by all
    processes). ``--streams`` clients ask at once and compute, per chunk,
    upstream write -> server -> client read. The questions start at random
    within ``--ramp`` seconds (a burst of 500 in one millisecond measures the
    start of 500 chats, not the relay). Figures: p50/p99 (target p99 < 10 ms
    at 500 streams of 30 chunks/s), server CPU per chunk. ``--via demo``
    relays the demo provider's words instead (no upstream, so no latency):
    the server's CPU per chunk without the HTTP client.
fanout
    ``--fanout`` connections of one user; another connection of that user
    renames a chat; time until every connection has the ``chat_updated``.
burst
    One user's answer comes from a model that writes as fast as the socket
    takes it (``bench.upstream --mode markdown``, ``--burst-words`` words)
    while another user pings the server (a JSON ``ping``, answered by
    ``pong``) every 2 ms: how long that other user waits, against the same
    pings with no answer running (the floor), in turn, ``--burst-rounds``
    times. Figures: ping round trip p50 / p99 / max during the answer and
    without it.

Defaults finish in about a minute; the full-size run is::

    python -m bench.server_capacity --idle 10000 --streams 500 --seconds 10
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import random
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect

from bench.common import (
    bench_parser,
    cpu_seconds,
    load_average,
    machine,
    raise_fd_limit,
    rss_kib,
    run_tool,
    start_upstream,
)
from bench.raw_stream import RawStream
from bench.servers import relayed_upstream
from mfu_tui.protocol import (
    ChatUpdated,
    Complete,
    Message,
    Ping,
    Pong,
    RenameChat,
    decode_server,
    encode,
)
from tests.support.figures import percentiles
from tests.support.load import open_connections, ping_once
from tests.support.server import ServerProcess

#: Handshakes one load process runs at once (a bigger burst only measures the accept queue).
OPENING_AT_ONCE = 50
#: Safety net for each phase.
PHASE_TIMEOUT = 600.0


class Target(Protocol):
    """A server under load: ``ServerProcess``, or the floor of ``bench.floor``."""

    process: subprocess.Popen[str] | None

    @property
    def url(self) -> str: ...

    def token(self, user: str = "alice", ttl: float = 3600) -> str: ...


# --- load processes ----------------------------------------------------------


def _worker(job: str, url: str, tokens: list[str], addresses: list[str], go: Any, results: Any, ramp: float) -> None:
    """Entry point of a load process: open the connections, say ready, wait for ``go``, run ``job``."""
    raise_fd_limit()
    results.put(run_tool(_work(job, url, tokens, addresses, go, results, ramp)))


async def _work(
    job: str, url: str, tokens: list[str], addresses: list[str], go: Any, results: Any, ramp: float
) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "opened": 0,
        "errors": [],
        "pongs": 0,
        "latencies_ms": [],
        "chunks": 0,
        "complete": 0,
        "gaps": 0,
    }
    sockets = await open_connections(
        url, tokens, addresses, figures["errors"], at_once=OPENING_AT_ONCE, open_timeout=120
    )
    figures["opened"] = len(sockets)
    if job == "idle":
        await asyncio.gather(*(ping_once(ws, figures, PHASE_TIMEOUT) for ws in sockets))
    results.put("ready")
    await asyncio.get_running_loop().run_in_executor(None, go.wait)
    started = time.process_time()
    if job == "relay":
        await asyncio.gather(*(_stream(ws, figures, random.random() * ramp) for ws in sockets))
    figures["cpu_seconds"] = time.process_time() - started
    if job != "relay":  # a relay's streams closed their sockets themselves
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return figures


async def _stream(ws: ClientConnection, figures: dict[str, Any], pause: float) -> None:
    """After ``pause`` seconds, one question; per piece, now minus the send time the upstream wrote into it."""
    await asyncio.sleep(pause)
    question = encode(Message(chat_id=None, content="relay", client_message_id=str(uuid.uuid4())))
    stream = RawStream(figures)
    stream.take_over(ws.transport, question)  # read off the socket from now on: see bench.raw_stream
    try:
        await asyncio.wait_for(stream.done, PHASE_TIMEOUT)
    except TimeoutError:
        figures["errors"].append("stream: no complete in time")
    finally:
        stream.close()


def _profile(pid: int, output: str) -> subprocess.Popen[bytes]:
    """py-spy sampling the server until interrupted (``pip install py-spy``; not a dependency)."""
    return subprocess.Popen(
        [
            "py-spy",
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--output",
            output,
            "--nonblocking",
            "--rate",
            "300",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def run_load(
    server: Target,
    job: str,
    count: int,
    workers: int,
    addresses: int,
    *,
    profile: str | None = None,
    ramp: float = 0.0,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Open ``count`` connections from ``workers`` processes, then run ``job`` in all of them at once.

    Returns what each process reported, and the server's RSS and CPU around the job.
    """
    sources = [f"127.0.0.{2 + n}" for n in range(addresses)]
    assert server.process is not None
    pid = server.process.pid
    context = multiprocessing.get_context("spawn")
    go, results = context.Event(), context.Queue()
    tokens = [server.token(f"{job}-{n}") for n in range(count)]
    server_side: dict[str, Any] = {"rss_before_kib": rss_kib(pid)}
    processes = []
    started = time.monotonic()
    try:
        for w in range(workers):
            process = context.Process(
                target=_worker,
                args=(job, server.url, tokens[w::workers], sources[w::workers] or sources, go, results, ramp),
            )
            process.start()
            processes.append(process)
        for _ in processes:
            if results.get(timeout=PHASE_TIMEOUT) != "ready":
                raise RuntimeError("a load process failed")
        server_side["open_seconds"] = round(time.monotonic() - started, 1)
        server_side["rss_open_kib"] = rss_kib(pid)
        cpu_before, job_started = cpu_seconds(pid), time.monotonic()
        server_side["load_1min"] = load_average()
        profiler = _profile(pid, profile) if profile else None
        go.set()
        reports = [results.get(timeout=PHASE_TIMEOUT) for _ in processes]
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its report on SIGINT
            profiler.wait(60)
        job_seconds = time.monotonic() - job_started
        server_side["job_seconds"] = round(job_seconds, 1)
        server_side["server_cpu_seconds"] = cpu_seconds(pid) - cpu_before
        server_side["server_cpu_percent_of_one_core"] = round(server_side["server_cpu_seconds"] / job_seconds * 100)
    finally:
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.kill()
    return reports, server_side


def errors(reports: list[dict[str, Any]]) -> dict[str, Any]:
    errors = [e for r in reports for e in r["errors"]]
    return {"errors": len(errors), "error_samples": errors[:5]}


# --- phases ------------------------------------------------------------------


def idle_phase(workdir: Path, count: int, workers: int, addresses: int) -> dict[str, Any]:
    server = ServerProcess(workdir, "--log-level", "warning")
    server.start()
    try:
        reports, side = run_load(server, "idle", count, workers, addresses)
    finally:
        server.terminate()
        server.wait()
    opened = sum(r["opened"] for r in reports)
    return {
        "connections": count,
        "opened": opened,
        "pongs": sum(r["pongs"] for r in reports),
        **errors(reports),
        "server_rss_before_mib": round(side["rss_before_kib"] / 1024, 1),
        "server_rss_open_mib": round(side["rss_open_kib"] / 1024, 1),
        "kib_per_connection": round((side["rss_open_kib"] - side["rss_before_kib"]) / max(opened, 1), 1),
        "open_seconds": side["open_seconds"],
        "load_1min": side["load_1min"],
    }


def relay_phase(
    workdir: Path,
    streams: int,
    rate: float,
    seconds: float,
    workers: int,
    addresses: int,
    profile: str | None,
    ramp: float,
    via: str,
) -> dict[str, Any]:
    pieces = max(int(rate * seconds), 2)
    common = ("--rate-limit", "1000000", "--log-level", "warning")
    upstream = None
    if via == "demo":  # no upstream: what the server costs without the HTTP client
        server = ServerProcess(workdir, "--demo-words", str(pieces), "--demo-delay-ms", str(1000 / rate), *common)
    else:
        upstream, base_url = start_upstream("--mode", "stamped", "--rate", str(rate), "--pieces", str(pieces))
        server = ServerProcess(workdir, "--provider", "openai", *common, env={"MFU_OPENAI_BASE_URL": base_url})
    server.start()
    upstream_cpu = cpu_seconds(upstream.pid) if upstream else 0.0
    try:
        reports, side = run_load(server, "relay", streams, workers, addresses, profile=profile, ramp=ramp)
        if upstream:
            upstream_cpu = cpu_seconds(upstream.pid) - upstream_cpu  # the opening phase costs it nothing
    finally:
        server.terminate()
        server.wait()
        if upstream:
            upstream.terminate()
            upstream.wait()
    return {
        "via": via,
        "chunks_per_second_each": rate,
        "chunks_per_answer": pieces,
        "start_spread_seconds": ramp,
        **relay_figures(streams, reports, side, upstream_cpu),
    }


def relay_figures(
    streams: int, reports: list[dict[str, Any]], side: dict[str, Any], upstream_cpu: float
) -> dict[str, Any]:
    """What a relay job's load processes and the server side add up to."""
    latencies = [x for r in reports for x in r["latencies_ms"]]
    chunks = sum(r["chunks"] for r in reports)
    return {
        "streams": streams,
        "answers_complete": sum(r["complete"] for r in reports),
        "chunks": chunks,
        "seq_gaps": sum(r["gaps"] for r in reports),
        **errors(reports),
        "relay_latency_ms": percentiles(latencies, 2),
        "seconds": side["job_seconds"],
        "server_cpu_percent_of_one_core": side["server_cpu_percent_of_one_core"],
        "server_cpu_us_per_chunk": round(side["server_cpu_seconds"] / max(chunks, 1) * 1e6),
        "upstream_cpu_percent_of_one_core": round(upstream_cpu / side["job_seconds"] * 100),
        "upstream_cpu_us_per_chunk": round(upstream_cpu / max(chunks, 1) * 1e6),
        "load_cpu_us_per_chunk": round(sum(r["cpu_seconds"] for r in reports) / max(chunks, 1) * 1e6),
        "load_1min": side["load_1min"],
    }


async def _fanout(server: ServerProcess, receivers: int, rounds: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {server.token('fan')}"}

    async def open_one() -> ClientConnection:
        return await connect(server.url, additional_headers=headers, proxy=None, max_queue=None)

    sender = await open_one()
    listeners = [await open_one() for _ in range(receivers)]
    await sender.send(encode(Message(chat_id=None, content="fan", client_message_id=str(uuid.uuid4()))).decode())
    chat_id = None
    async for data in sender:
        frame = decode_server(data)
        if isinstance(frame, Complete):
            chat_id = frame.chat_id
            break
    assert chat_id is not None

    async def next_update(ws: ClientConnection, title: str) -> int:
        async for data in ws:
            frame = decode_server(data)
            if isinstance(frame, ChatUpdated) and frame.chat.title == title:
                return time.monotonic_ns()
        raise RuntimeError("closed")

    last_ms, first_ms = [], []
    for n in range(rounds):
        title = f"fan-out {n}"
        waiting = [asyncio.ensure_future(next_update(ws, title)) for ws in listeners]
        started = time.monotonic_ns()
        await sender.send(encode(RenameChat(request_id=str(n), chat_id=chat_id, title=title)).decode())
        async with asyncio.timeout(PHASE_TIMEOUT):
            arrived = await asyncio.gather(*waiting)
        last_ms.append((max(arrived) - started) / 1e6)
        first_ms.append((min(arrived) - started) / 1e6)
    for ws in [sender, *listeners]:
        await ws.close()
    return {"first_receiver_ms": percentiles(first_ms, 2), "all_receivers_ms": percentiles(last_ms, 2)}


def fanout_phase(workdir: Path, receivers: int, rounds: int) -> dict[str, Any]:
    server = ServerProcess(
        workdir, "--demo-words", "5", "--demo-delay-ms", "0", "--rate-limit", "1000000", "--log-level", "warning"
    )
    server.start()
    try:
        load = load_average()
        figures = asyncio.run(_fanout(server, receivers, rounds))
    finally:
        server.terminate()
        server.wait()
    return {"receivers": receivers, "renames": rounds, **figures, "load_1min": load}


#: Pause between two pings of the other user in the burst phase.
BURST_PING_EVERY = 0.002


async def _ping(ws: ClientConnection) -> float:
    """One ``ping`` and its ``pong``: the round trip in ms, then a pause of ``BURST_PING_EVERY``."""
    sent = time.perf_counter()
    await ws.send(encode(Ping(ts=sent)).decode())
    async with asyncio.timeout(PHASE_TIMEOUT):
        while not isinstance(decode_server(await ws.recv()), Pong):
            pass
    trip = (time.perf_counter() - sent) * 1000
    await asyncio.sleep(BURST_PING_EVERY)
    return trip


async def _answer(ws: ClientConnection) -> None:
    """Ask a question and read its answer to the end."""
    await ws.send(encode(Message(chat_id=None, content="burst", client_message_id=str(uuid.uuid4()))).decode())
    async with asyncio.timeout(PHASE_TIMEOUT):
        async for data in ws:
            if isinstance(decode_server(data), Complete):
                return
    raise RuntimeError("closed before complete")


async def _burst(server: ServerProcess, rounds: int) -> dict[str, Any]:
    def headers(user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {server.token(user)}"}

    during: list[float] = []
    floor: list[float] = []
    async with (
        connect(server.url, additional_headers=headers("asker"), proxy=None, max_queue=None) as asker,
        connect(server.url, additional_headers=headers("pinger"), proxy=None) as pinger,
    ):
        for _ in range(rounds):
            answer = asyncio.ensure_future(_answer(asker))
            pings = 0
            while not answer.done():
                during.append(await _ping(pinger))
                pings += 1
            await answer
            floor += [await _ping(pinger) for _ in range(pings)]  # as many, with no answer running
    return {"pings": len(during), "during_answer_ms": percentiles(during, 2), "no_answer_ms": percentiles(floor, 2)}


def burst_phase(workdir: Path, words: int, rounds: int) -> dict[str, Any]:
    with relayed_upstream(workdir, "--mode", "markdown", "--words", str(words)) as server:
        load = load_average()
        figures = asyncio.run(_burst(server, rounds))
    return {"answer_words": words, "rounds": rounds, **figures, "load_1min": load}


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--phases", default="idle,relay,fanout,burst", help="comma-separated (default: all four)")
    parser.add_argument("--idle", type=int, default=2000, help="idle connections (default 2000; full 10000)")
    parser.add_argument("--streams", type=int, default=100, help="concurrent answers (default 100; full 500)")
    parser.add_argument("--rate", type=float, default=30.0, help="upstream pieces a second per answer (default 30)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each answer in seconds (default 5)")
    parser.add_argument(
        "--via",
        choices=["openai", "demo"],
        default="openai",
        help="relay from bench.upstream through --provider openai (default), "
        "or the demo provider: no latency then, CPU only",
    )
    parser.add_argument(
        "--ramp", type=float, default=1.0, help="questions start at random within this many seconds (default 1)"
    )
    parser.add_argument("--fanout", type=int, default=10, help="connections of the one user (default 10)")
    parser.add_argument("--rounds", type=int, default=200, help="renames timed in the fan-out (default 200)")
    parser.add_argument(
        "--burst-words", type=int, default=20000, help="words of the fast model's answer (default 20000)"
    )
    parser.add_argument("--burst-rounds", type=int, default=5, help="answers timed in the burst phase (default 5)")
    parser.add_argument("--workers", type=int, default=4, help="load processes (default 4)")
    parser.add_argument("--addresses", type=int, default=8, help="source addresses 127.0.0.2 and up (default 8)")
    parser.add_argument(
        "--profile", metavar="FILE", help="py-spy the server during the relay phase into FILE (collapsed stacks)"
    )
    args = parser.parse_args()
    raise_fd_limit()  # inherited by the server subprocess
    phases = args.phases.split(",")
    report: dict[str, Any] = {"machine": machine()}
    with tempfile.TemporaryDirectory() as workdir:
        for phase in phases:
            where = Path(workdir) / phase
            where.mkdir()
            if phase == "idle":
                report["idle"] = idle_phase(where, args.idle, args.workers, args.addresses)
            elif phase == "relay":
                report["relay"] = relay_phase(
                    where,
                    args.streams,
                    args.rate,
                    args.seconds,
                    args.workers,
                    args.addresses,
                    args.profile,
                    args.ramp,
                    args.via,
                )
            elif phase == "fanout":
                report["fanout"] = fanout_phase(where, args.fanout, args.rounds)
            elif phase == "burst":
                report["burst"] = burst_phase(where, args.burst_words, args.burst_rounds)
            else:
                parser.error(f"unknown phase {phase!r}")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
