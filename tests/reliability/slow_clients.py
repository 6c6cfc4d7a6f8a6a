"""Slow and stalled clients: one in ten stops reading while everyone streams.

``--clients N`` real clients stream answers from the real server (in this
process, so the harness can watch each server connection). One in ten goes
through its own fault proxy; in the middle of its answer the proxy stops
forwarding what the server sends (``stall_reader``: the client's own frames
still pass). The rest of its answer, pushed live, piles up unread; the
stalled client also asks for its ~60 KB chat again and again (the server
never cuts a reply off, it stops reading the client instead, so these only
make sure nothing drains). Figures:

- stalled connections closed by the server with 4000 (target: all), and
  normal ones closed (target 0);
- memory: the server closes a connection whose unsent pushed data passes
  ``--queue-kib``, so each stalled client costs a bounded amount; the largest
  send queue of any server connection and the process's RSS (server and
  clients together) before the stall and at its peak are recorded;
- the normal clients' gaps between chunks, before and during the stall
  (p50/p99, for the record: they should not change much);
- the stalled clients' recovery: once the proxy forwards again, each one
  reconnects and resumes; lost / repeated / reordered chunks and text
  mismatches (targets 0) and the seconds it took.

Run by hand::

    python -m tests.reliability.slow_clients --clients 100

CI runs 20 clients (``tests/reliability/test_slow_clients.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import resource
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mfu_tui.client import Backoff, ChatClient, ClientError
from mfu_tui.protocol import Ack, Chunk, CloseCode
from tests.reliability.server_kills import ROUND_TIMEOUT, Recorder
from tests.support.figures import percentiles
from tests.support.proxy import FaultProxy
from tests.support.server import running_server

#: The stalled clients' chat holds a message this long, so each ``get_chat`` answer is big.
BIG_MESSAGE = 60_000
#: ``get_chat`` requests a stalled client sends while stalled (at most ~24 MB each: bounded).
FLOOD = 400
#: The stalled proxies' kernel receive buffer towards the server: small, so that
#: unread data reaches the server's send queue instead of sleeping in the kernel.
STALLED_RECEIVE_BUFFER = 4096


@dataclass
class SlowReport:
    """Figures of one run."""

    clients: int = 0
    stalled: int = 0
    stalled_closed_4000: int = 0
    normal_closed: int = 0
    """Normal clients that had to connect again (target 0)."""
    queue_limit_bytes: int = 0
    rss_before_stall_mib: float = 0.0
    max_rss_mib: float = 0.0
    """Of this process, which runs the server AND every client: an upper bound of the server's."""
    normal_gaps_before_ms: dict[str, Any] = field(default_factory=dict)
    normal_gaps_during_ms: dict[str, Any] = field(default_factory=dict)
    recovered: int = 0
    recovery_seconds: dict[str, Any] = field(default_factory=dict)
    """From the end of the stall to the end of each stalled client's answer."""
    lost: int = 0
    repeated: int = 0
    reordered: int = 0
    text_mismatches: int = 0
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return (
            self.stalled > 0
            and self.stalled_closed_4000 == self.stalled
            and self.normal_closed == 0
            and self.recovered == self.stalled
            and self.lost == self.repeated == self.reordered == self.text_mismatches == 0
        )


class Streamer:
    """One client, its recorder, and the arrival time of each chunk."""

    def __init__(self, url: str, token: str, data_dir: Path) -> None:
        self.client = ChatClient(
            url,
            token,
            data_dir=data_dir,
            ping_interval=5.0,
            ping_timeout=60.0,  # the server's 4000 must come first, not our heartbeat
            request_timeout=60.0,
            backoff=Backoff(base=0.05, cap=0.5),
        )
        self.recorder = Recorder()
        self.arrivals: list[float] = []
        self.chats: dict[str, str] = {}  # clientMessageId -> chatId
        self.opens = 0
        self.ended_at: float | None = None
        self.client.on_message(self._on_frame)
        self.client.on_open(self._opened)

    def _opened(self) -> None:
        self.opens += 1

    def _on_frame(self, frame: Any) -> None:
        if isinstance(frame, Chunk):
            self.arrivals.append(time.perf_counter())
        elif isinstance(frame, Ack):
            self.chats[frame.client_message_id] = frame.chat_id
        self.recorder(frame)

    async def ask(self, content: str) -> str:
        return await self.client.send_message(None, content)

    def reply(self, client_message_id: str) -> str | None:
        return self.recorder.replies.get(client_message_id)

    async def until_chunks(self, client_message_id: str, count: int) -> bool:
        return await self.recorder.until(
            lambda: len(self.recorder.seqs.get(self.reply(client_message_id) or "", ())) >= count,
            ROUND_TIMEOUT,
        )

    async def until_end(self, client_message_id: str) -> bool:
        ended = await self.recorder.until(
            lambda: (self.reply(client_message_id) or "") in self.recorder.ends,
            ROUND_TIMEOUT * 2,
        )
        self.ended_at = time.perf_counter() if ended else None
        return ended


async def run(
    clients: int,
    workdir: Path,
    *,
    words: int = 600,
    delay_ms: float = 10.0,
    queue_kib: int = 32,
) -> SlowReport:
    """``clients`` streams, one in ten stalled mid-answer; returns the figures."""
    report = SlowReport(clients=clients, queue_limit_bytes=queue_kib * 1024)
    started = time.monotonic()
    stalled_count = max(1, clients // 10)
    async with (
        running_server(
            workdir,
            demo_words=words,
            demo_delay_ms=delay_ms,
            send_queue_bytes=queue_kib * 1024,
            ping_interval=None,  # the send queue, not the keepalive, must catch them
            messages_per_minute=100_000,
            message_burst=100_000,
        ) as srv,
        contextlib.AsyncExitStack() as stack,
    ):
        proxies = [
            await stack.enter_async_context(FaultProxy(srv.port, upstream_receive_buffer=STALLED_RECEIVE_BUFFER))
            for _ in range(stalled_count)
        ]
        stalled = [
            Streamer(proxy.url("/ws"), srv.token(f"stalled-{i}"), workdir / f"s{i}") for i, proxy in enumerate(proxies)
        ]
        normal = [Streamer(srv.url, srv.token(f"user-{i}"), workdir / f"n{i}") for i in range(clients - stalled_count)]
        everyone = stalled + normal
        report.stalled = len(stalled)
        try:
            await asyncio.gather(*(s.client.connect() for s in everyone))
            await asyncio.gather(*(s.client.wait_connected(timeout=60) for s in everyone))
            # Before: the normal clients stream alone.
            asked = [await s.ask("before the stall") for s in normal]
            await asyncio.gather(*(s.until_end(cid) for s, cid in zip(normal, asked, strict=True)))
            before = [gap for s in normal for gap in _gaps(s.arrivals)]
            for s in normal:
                s.arrivals.clear()
            # During: the stalled ones start a big chat, stop reading mid-answer and keep asking.
            big = [await s.ask("z" * BIG_MESSAGE) for s in stalled]
            await asyncio.gather(*(s.until_chunks(cid, 3) for s, cid in zip(stalled, big, strict=True)))
            asked = [await s.ask("during the stall") for s in normal]
            report.rss_before_stall_mib = _rss_mib()
            for proxy in proxies:
                proxy.stall_reader()
            closes = [_closed_4000(srv.server, f"stalled-{i}") for i in range(len(stalled))]
            floods = [asyncio.create_task(_flood(s, s.chats[cid])) for s, cid in zip(stalled, big, strict=True)]
            report.stalled_closed_4000 = sum(await asyncio.gather(*closes))
            await asyncio.gather(*(s.until_end(cid) for s, cid in zip(normal, asked, strict=True)))
            during = [gap for s in normal for gap in _gaps(s.arrivals)]
            # After: the stalled clients read again, reconnect and resume.
            unstalled = time.perf_counter()
            for proxy in proxies:
                proxy.pass_through()
            ended = await asyncio.gather(*(s.until_end(cid) for s, cid in zip(stalled, big, strict=True)))
            recovery = [s.ended_at - unstalled for s in stalled if s.ended_at is not None]
            report.recovered = sum(ended)
            await asyncio.gather(*floods)
            await _compare(everyone, report)
        finally:
            for s in everyone:
                await s.client.close()
        report.normal_closed = sum(
            1 for c in srv.server.connections if c.user.startswith("user-") and c.close_code is not None
        )
    report.normal_gaps_before_ms = percentiles([g * 1000 for g in sorted(before)])
    report.normal_gaps_during_ms = percentiles([g * 1000 for g in sorted(during)])
    report.recovery_seconds = percentiles(recovery)
    report.max_rss_mib = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    report.seconds = round(time.monotonic() - started, 1)
    return report


def _gaps(arrivals: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(arrivals)]


async def _closed_4000(server: Any, user: str) -> bool:
    """Wait until the server closes ``user``'s connection; True if with 4000."""
    (connection,) = [c for c in server.connections if c.user == user]
    try:
        await asyncio.wait_for(connection.closing.wait(), ROUND_TIMEOUT)
    except TimeoutError:
        return False
    return connection.close_code == CloseCode.SLOW_CONSUMER


async def _flood(streamer: Streamer, chat_id: str) -> None:
    """Ask for the big chat again and again; these requests fail when the connection goes."""

    async def one() -> None:
        with contextlib.suppress(ClientError, TimeoutError):
            await streamer.client.get_chat(chat_id)

    await asyncio.gather(*(one() for _ in range(FLOOD)))


async def _compare(streamers: list[Streamer], report: SlowReport) -> None:
    """Every answer each client built against the stored text."""
    for s in streamers:
        for reply in s.recorder.replies.values():
            seqs = s.recorder.seqs.get(reply, [])
            end = s.recorder.ends[reply]
            report.repeated += len(seqs) - len(set(seqs))
            report.lost += len(set(range(1, end.seq + 1)) - set(seqs))
            report.reordered += sum(1 for a, b in itertools.pairwise(seqs) if b < a)
            detail = await s.client.get_chat(end.chat_id)
            stored = next(m.content for m in detail.messages if m.id == reply)
            report.text_mismatches += "".join(s.recorder.texts.get(reply, [])) != stored


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--words", type=int, default=600)
    parser.add_argument("--delay-ms", type=float, default=10.0)
    parser.add_argument("--queue-kib", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        report = asyncio.run(
            run(
                args.clients,
                Path(workdir),
                words=args.words,
                delay_ms=args.delay_ms,
                queue_kib=args.queue_kib,
            )
        )
    print(json.dumps({**asdict(report), "clean": report.clean}, indent=2))
    raise SystemExit(0 if report.clean else 1)


if __name__ == "__main__":
    main()
