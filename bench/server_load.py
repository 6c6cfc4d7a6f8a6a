"""Load figures for `mfu-chat serve`: idle connections and concurrent streams.

Starts the real server as a subprocess (demo provider), then from this
process opens IDLE authenticated connections (server memory), closes them,
and runs STREAMS concurrent answers, one per user and connection (chunks per
second, server CPU, first-chunk latency, gaps). Run it from the repository:

    python bench/server_load.py                 # 2000 idle, 500 streams, 200 words, 50 ms/word
    STREAMS=500 DELAY=0 python bench/server_load.py

Figures depend on the machine; the ones in docs/server.md come from a 2-core VM.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from websockets.asyncio.client import connect  # noqa: E402

from mfu_tui.protocol import Chunk, Complete, Message, decode_server, encode  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402

STREAMS = int(os.environ.get("STREAMS", 500))
IDLE = int(os.environ.get("IDLE", 2000))
WORDS = int(os.environ.get("WORDS", 200))
DELAY_MS = os.environ.get("DELAY", "50")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


async def one_stream(url: str, token: str) -> tuple[int, float, float, int]:
    """(chunks, first-chunk latency, total time, gaps) of one answer."""
    headers = {"Authorization": f"Bearer {token}"}
    async with connect(url, additional_headers=headers, proxy=None, max_queue=None) as ws:
        start = time.perf_counter()
        message = Message(chat_id=None, content="bench question", client_message_id=str(uuid.uuid4()))
        await ws.send(encode(message).decode())
        chunks, first, last_seq, gaps = 0, 0.0, 0, 0
        async for data in ws:
            frame = decode_server(data)
            if isinstance(frame, Chunk):
                if not chunks:
                    first = time.perf_counter() - start
                gaps += frame.seq != last_seq + 1
                last_seq, chunks = frame.seq, chunks + 1
            elif isinstance(frame, Complete):
                return chunks, first, time.perf_counter() - start, gaps
    raise RuntimeError("connection closed before the answer completed")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)]


async def main() -> None:
    server = ServerProcess(
        Path(tempfile.mkdtemp()),
        *("--demo-words", str(WORDS), "--demo-delay-ms", DELAY_MS, "--rate-limit", "1000000", "--log-level", "warning"),
    )
    server.start()
    assert server.process is not None
    pid = server.process.pid
    try:
        tokens = [server.token(f"user{i}") for i in range(max(STREAMS, IDLE))]
        before = rss_mib(pid)
        started = time.perf_counter()
        idle = [
            await connect(server.url, additional_headers={"Authorization": f"Bearer {tokens[i]}"}, proxy=None)
            for i in range(IDLE)
        ]
        opened = time.perf_counter() - started
        print(f"{IDLE} idle connections opened in {opened:.1f} s; server RSS {before:.0f} -> {rss_mib(pid):.0f} MiB")
        for ws in idle:
            await ws.close()

        cpu_before, started = cpu_seconds(pid), time.perf_counter()
        results = await asyncio.gather(*(one_stream(server.url, tokens[i]) for i in range(STREAMS)))
        wall, cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu_before
        chunks = sum(r[0] for r in results)
        firsts = [r[1] for r in results]
        print(
            f"{STREAMS} concurrent streams x {WORDS} words at {DELAY_MS} ms/word: {chunks} chunks in {wall:.1f} s "
            f"({chunks / wall:.0f} chunks/s); server CPU {cpu:.1f} s ({cpu / wall * 100:.0f}% of one core); "
            f"gaps {sum(r[3] for r in results)}; first chunk p50 {percentile(firsts, 0.5) * 1000:.0f} ms, "
            f"p99 {percentile(firsts, 0.99) * 1000:.0f} ms; server RSS {rss_mib(pid):.0f} MiB"
        )
    finally:
        server.terminate()
        print("server exit status", server.wait())


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(main())
