"""Attacks by one user on the server, while another user keeps chatting: what each costs, what stops it.

Every attack runs against the real server as a subprocess (``mfu-chat serve``,
so its memory is measured alone, from ``/proc/PID/status``), on a fresh
database, with the flags the attack names plus any given with
``--server-args``. A **victim** (its own user, the real ``ChatClient``, in a
process of its own so the attacker's work does not slow it down) is
connected before the attack and keeps chatting throughout: it asks a
question in its chat every ``--victim-interval`` seconds (under the default
rate limit of 60 a minute) and reads the streamed answer, and between
answers it asks for its chat list 20 times a second. For each attack:

- the server's RSS just before the attack, its peak during the attack
  (``VmHWM`` after resetting it through ``/proc/PID/clear_refs``; sampled
  ``VmRSS`` where that is not allowed), and after it; and a bound derived from
  the configured limits that the peak's growth must stay under;
- the victim's request round trip (``list_chats``) and time to the first
  chunk of an answer: p50 and p99 in a baseline measured in the same run
  right before the attack, during it (during its active part, a flood, when
  the attack marks one; the whole attack beside), and during / baseline as a
  ratio (the machine may be shared: only the ratios compare between runs);
- the victim's messages lost (target 0): a message counts as delivered when
  it was acknowledged, stored exactly once, and its answer arrived whole, in
  order, ending with ``stop``, with the stored text;
- the attack's own figures (what was refused, what got through), and the
  properties that must hold for it (``failures``; empty when clean).

The attacks (``--attack NAME``, repeatable; all by default):

``connections``
    one token opening 1,500 connections, 50 at a time (cap: 20 per user, HTTP 429).
``big_get_chat``
    one user's non-reading connections asking ``get_chat`` of their 6 MB chat again and again.
``list_models``
    2,000 ``list_models`` on one connection against a model server that takes 2 s to list.
``slowloris``
    1,100 half-sent HTTP upgrade requests held open, then 50 new users try to connect.
``edit_flood``
    1,500 ``edit_message`` of 60 KB as fast as one connection takes them.
``huge_answer``
    the model server answers 20 MB; the server ends it at ``--max-answer-chars``.
``ping_flood``
    WebSocket pings written by a client that never reads (small receive buffer).
``message_flood``
    1,000 ``message`` frames from one user, each starting a new chat.

``--scale`` multiplies every count and size (1 is the issue's size; CI runs
0.05 with small floors). Adding an attack is one function decorated with
``@attack(...)``: it gets an ``Arena`` (server, upstream, sizes), sets up,
calls ``arena.start()`` (the baseline is taken, the attack begins), attacks,
calls ``arena.hold()`` (returns once the victim was served under the attack),
and returns its figures; ``arena.expect`` records a property that must hold.

Run by hand (the issue's sizes)::

    python -m tests.reliability.attacks
    python -m tests.reliability.attacks --attack slowloris --scale 0.1 --server-args '--ping-interval 5'

It prints a Markdown table, then the JSON figures, and exits 1 if a property
failed. CI runs every attack at scale 0.05 (``tests/reliability/test_attacks.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import multiprocessing
import shlex
import socket
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from mfu_tui.client import Backoff, ChatClient, ClientError
from mfu_tui.protocol import (
    Ack,
    Chunk,
    Complete,
    EditMessage,
    Error,
    GetChat,
    ListModels,
    Message,
    MessageEdited,
    Ping,
    Pong,
    Result,
    Resume,
    decode_server,
    encode,
)
from mfu_tui.server.connection import TRANSPORT_SLACK
from tests.reliability.load import raise_fd_limit
from tests.reliability.server_kills import Recorder
from tests.server.rawclient import RawClient
from tests.server.test_user_limits import ping_frames
from tests.support.figures import percentiles
from tests.support.server import ServerProcess

T = TypeVar("T")

MIB = 1024 * 1024
#: Safety net of every wait (an attack's phase, the victim's answer); runs normally take seconds.
PHASE_TIMEOUT = 180.0
#: Server flags every attack starts with: short demo answers, so the victim's come often.
BASE_SERVER_ARGS = ("--demo-words", "30", "--demo-delay-ms", "5", "--log-level", "warning")
#: The server's defaults the bounds are derived from (``docs/server.md``), unless a flag changes them.
DEFAULTS = {
    "--send-queue-bytes": 1024 * 1024,
    "--connections-per-user": 20,
    "--max-answer-chars": 1_000_000,
    "--rate-limit": 60,
}
#: The message budget's burst (``ServerConfig.message_burst``; no flag).
MESSAGE_BURST = 20
#: Slack for what any server process may allocate besides what an attack makes it hold.
BASE_SLACK = 48 * MIB
#: The victim asks for its chat list this often between its answers.
VICTIM_REQUEST_PAUSE = 0.05
#: Victim samples each phase must hold, at least: (answers, requests).
FULL_SAMPLES = (8, 60)
CI_SAMPLES = (2, 10)


# --- Reports -------------------------------------------------------------------


@dataclass
class AttackReport:
    """Figures of one attack."""

    attack: str
    summary: str
    limit: str
    scale: float
    server_args: list[str] = field(default_factory=list)
    outcome: str = ""
    """One line for the table: what got through and what was refused."""
    figures: dict[str, Any] = field(default_factory=dict)
    rss_before_mib: float = 0.0
    rss_peak_mib: float = 0.0
    rss_growth_mib: float = 0.0
    rss_after_mib: float = 0.0
    """Once the attack let go and the victim stopped (its final checks done)."""
    rss_bound_mib: float = 0.0
    rss_bound_rule: str = ""
    peak_from: str = ""
    """``VmHWM`` (reset at the attack's start) or ``sampled`` (``VmRSS`` every 20 ms)."""
    attack_seconds: float = 0.0
    """From the attack's start until the victim was served under it and the attack let go."""
    active_seconds: float = 0.0
    """The attack's active part (a flood); the victim's "during" figures cover it."""
    listen_overflows: dict[str, int] = field(default_factory=dict)
    """The kernel's ``TcpExt`` ``ListenOverflows``/``ListenDrops`` during the attack (the whole network namespace)."""
    server_log_lines: int = 0
    """Lines the server wrote to stderr during the attack (``--log-level warning``)."""
    victim: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return not self.failures


@dataclass
class Attack:
    """One registered attack."""

    name: str
    summary: str
    limit: str
    run: Callable[[Arena], Awaitable[dict[str, Any]]]
    server_args: Callable[[float], list[str]]
    upstream: Callable[[float], UpstreamSettings] | None


ATTACKS: dict[str, Attack] = {}


def attack(
    name: str,
    *,
    summary: str,
    limit: str,
    server_args: Callable[[float], list[str]] = lambda scale: [],
    upstream: Callable[[float], UpstreamSettings] | None = None,
) -> Callable[[Callable[[Arena], Awaitable[dict[str, Any]]]], Callable[[Arena], Awaitable[dict[str, Any]]]]:
    """Register an attack: ``server_args(scale)`` are its flags, ``upstream(scale)`` its fake model server."""

    def register(run: Callable[[Arena], Awaitable[dict[str, Any]]]) -> Callable[[Arena], Awaitable[dict[str, Any]]]:
        ATTACKS[name] = Attack(name, summary, limit, run, server_args, upstream)
        return run

    return register


# --- The server's memory -----------------------------------------------------


def proc_status_kib(pid: int, key: str) -> int:
    """A ``kB`` line of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``); 0 if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def reset_peak_rss(pid: int) -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux ``clear_refs`` 5); False where not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def listen_counters() -> dict[str, int]:
    """``ListenOverflows`` and ``ListenDrops`` of ``/proc/net/netstat``: packets dropped at a full accept queue."""
    try:
        lines = [line.split() for line in Path("/proc/net/netstat").read_text().splitlines()]
    except OSError:
        return {}
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names and names[0] == "TcpExt:":
            table = dict(zip(names[1:], values[1:], strict=False))
            return {key: int(table[key]) for key in ("ListenOverflows", "ListenDrops") if key in table}
    return {}


def mib(kib: int | float) -> float:
    return round(kib / 1024, 1)


# --- The fake model server (a process of its own) ----------------------------


@dataclass
class UpstreamSettings:
    """What the fake OpenAI-compatible model server does."""

    models_delay: float = 0.0
    """Seconds ``GET /v1/models`` takes."""
    huge_bytes: int = 0
    """A prompt containing ``HUGE`` is answered with this many characters."""
    piece_chars: int = 1024
    """Characters per streamed piece of the huge answer."""
    words: int = 30
    """Pieces of a normal answer (one word each) ..."""
    word_delay: float = 0.005
    """... this many seconds apart."""


class _UpstreamCounters:
    def __init__(self, context: Any) -> None:
        self.model_lists = context.Value("q", 0)
        self.completions = context.Value("q", 0)
        self.huge_sent = context.Value("q", 0)


def _upstream_main(settings: UpstreamSettings, counters: _UpstreamCounters, port_pipe: Any) -> None:
    asyncio.run(_upstream(settings, counters, port_pipe))


async def _upstream(settings: UpstreamSettings, counters: _UpstreamCounters, port_pipe: Any) -> None:
    """``/v1/models`` (slow if asked) and streamed ``/v1/chat/completions``, the real wire format."""

    def event(writer: asyncio.StreamWriter, data: dict[str, Any] | None) -> None:
        text = "data: [DONE]\n\n" if data is None else f"data: {json.dumps(data)}\n\n"
        body = text.encode()
        writer.write(f"{len(body):x}\r\n".encode() + body + b"\r\n")

    def piece(content: str, finish: str | None = None) -> dict[str, Any]:
        delta = {"content": content} if content else {}
        return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    async def complete(writer: asyncio.StreamWriter, prompt: str) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        if "HUGE" in prompt:
            text = "x" * (settings.piece_chars - 1) + " "
            for _ in range(settings.huge_bytes // settings.piece_chars):
                if writer.transport.is_closing():
                    return  # the server closed the request: the answer was cut
                event(writer, piece(text))
                await writer.drain()
                with counters.huge_sent.get_lock():
                    counters.huge_sent.value += len(text)
        else:
            for index in range(settings.words):
                event(writer, piece(f"word{index} "))
                await writer.drain()
                await asyncio.sleep(settings.word_delay)
        event(writer, piece("", "stop"))
        event(writer, None)
        writer.write(b"0\r\n\r\n")

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while request_line := await reader.readline():
                method, path, _ = request_line.decode().split(" ", 2)
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                if path.endswith("/models"):
                    with counters.model_lists.get_lock():
                        counters.model_lists.value += 1
                    await asyncio.sleep(settings.models_delay)
                    data = json.dumps({"object": "list", "data": [{"id": "fake-small"}, {"id": "fake-large"}]})
                    writer.write(
                        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
                        f"{data}".encode()
                    )
                elif method == "POST":
                    with counters.completions.get_lock():
                        counters.completions.value += 1
                    messages = json.loads(body).get("messages") or [{}]
                    await complete(writer, str(messages[-1].get("content", "")))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=1024)
    port_pipe.send(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


class Upstream:
    """The fake model server's process, its URL and its counters."""

    def __init__(self, context: Any, settings: UpstreamSettings) -> None:
        self.counters = _UpstreamCounters(context)
        receive, send = context.Pipe(duplex=False)
        self.process = context.Process(target=_upstream_main, args=(settings, self.counters, send), daemon=True)
        self.process.start()
        if not receive.poll(60):
            self.stop()
            raise RuntimeError("the fake model server did not start")
        self.base_url = f"http://127.0.0.1:{receive.recv()}"

    def stop(self) -> None:
        self.process.kill()
        self.process.join(10)


# --- The victim (a process of its own) -----------------------------------------


def _victim_main(url: str, token: str, data_dir: str, interval: float, pipe: Any, stop: Any) -> None:
    asyncio.run(_victim(url, token, Path(data_dir), interval, pipe, stop))


async def _victim(url: str, token: str, data_dir: Path, interval: float, pipe: Any, stop: Any) -> None:
    """Chat until ``stop``: a question every ``interval`` s, ``list_chats`` in between; then check everything.

    Sends ``("answer", sent_at, first_chunk_s)`` and ``("request", sent_at,
    round_trip_s)`` as they happen (``time.monotonic``, the same clock in
    every process), then ``("report", {...})``.
    """
    client = ChatClient(
        url,
        token,
        data_dir=data_dir,
        ping_interval=5.0,
        ping_timeout=60.0,
        request_timeout=PHASE_TIMEOUT,
        open_timeout=PHASE_TIMEOUT,
        backoff=Backoff(base=0.05, cap=0.5),
    )
    recorder = Recorder()
    first_chunk_at: dict[str, float] = {}
    chats: dict[str, str] = {}
    errors: list[str] = []
    opens = [0]

    def on_frame(frame: object) -> None:
        if isinstance(frame, Chunk) and frame.message_id not in first_chunk_at:
            first_chunk_at[frame.message_id] = time.monotonic()
        elif isinstance(frame, Ack):
            chats[frame.client_message_id] = frame.chat_id
        recorder(frame)

    client.on_message(on_frame)
    client.on_error(lambda error: errors.append(f"{error.code}: {error}"))
    client.on_open(lambda: opens.__setitem__(0, opens[0] + 1))
    sent: dict[str, float] = {}
    stuck = request_failures = 0

    async def talk() -> None:
        nonlocal stuck
        chat_id: str | None = None
        number = 0
        while not stop.is_set():
            number += 1
            started = time.monotonic()
            cid = await client.send_message(chat_id, f"victim question {number}")
            sent[cid] = started
            if not await recorder.until(lambda: recorder.finished(cid), PHASE_TIMEOUT):
                stuck += 1
                return
            chat_id = chats[cid]
            first = first_chunk_at.get(recorder.replies[cid])
            if first is not None:
                pipe.send(("answer", started, first - started))
            pause = started + interval - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)  # pacing the workload (under the rate limit), not a wait for an event

    async def ask() -> None:
        nonlocal request_failures
        while not stop.is_set():
            started = time.monotonic()
            try:
                await client.list_chats(limit=10)
            except (ClientError, TimeoutError) as error:
                request_failures += 1
                errors.append(f"list_chats: {error!r}")
            else:
                pipe.send(("request", started, time.monotonic() - started))
            await asyncio.sleep(VICTIM_REQUEST_PAUSE)

    await client.connect()
    await client.wait_connected(timeout=PHASE_TIMEOUT)
    pipe.send(("ready",))
    try:
        await asyncio.gather(talk(), ask())
        lost, samples = await _victim_check(client, recorder, chats, sent)
    finally:
        await client.close()
    pipe.send(
        (
            "report",
            {
                "messages": len(sent),
                "lost": lost,
                "lost_samples": samples,
                "stuck": stuck,
                "request_failures": request_failures,
                "errors": len(errors),
                "error_samples": errors[:5],
                "reconnects": opens[0] - 1,
            },
        )
    )


async def _victim_check(
    client: ChatClient, recorder: Recorder, chats: dict[str, str], sent: dict[str, float]
) -> tuple[int, list[str]]:
    """Messages not delivered: unacknowledged, not stored exactly once, or answered with a gap or another text."""
    stored: dict[str, Any] = {}
    for chat_id in set(chats.values()):
        detail = await client.get_whole_chat(chat_id)
        stored.update({m.id: m for m in detail.messages})
    copies = Counter(m.client_message_id for m in stored.values() if m.role == "user")
    lost: list[str] = []
    for cid in sent:
        reply = recorder.replies.get(cid)
        end = recorder.ends.get(reply or "")
        if reply is None or copies[cid] != 1:
            lost.append(f"{cid}: acked={reply is not None}, stored {copies[cid]} times")
        elif not isinstance(end, Complete) or end.finish_reason != "stop":
            lost.append(f"{cid}: answer ended with {end!r}")
        elif recorder.seqs.get(reply) != list(range(1, end.seq + 1)):
            lost.append(f"{cid}: seqs {recorder.seqs.get(reply)} for {end.seq} chunks")
        elif "".join(recorder.texts.get(reply, [])) != getattr(stored.get(reply), "content", None):
            lost.append(f"{cid}: the text differs from the stored one")
    return len(lost), lost[:5]


class Victim:
    """The victim's process and its live samples, read from a pipe without blocking the event loop."""

    def __init__(self, context: Any, url: str, token: str, data_dir: Path, interval: float) -> None:
        self._receive, send = context.Pipe(duplex=False)
        self._stop = context.Event()
        self.process = context.Process(
            target=_victim_main, args=(url, token, str(data_dir), interval, send, self._stop), daemon=True
        )
        #: ``(kind, sent_at, seconds)`` of each answer and request, in the order they ended.
        self.samples: list[tuple[str, float, float]] = []
        self.ready = False
        self.report: dict[str, Any] | None = None
        self._changed = asyncio.Event()

    async def start(self) -> None:
        self.process.start()
        asyncio.get_running_loop().add_reader(self._receive.fileno(), self._read)
        if not await self.until(lambda: self.ready):
            raise RuntimeError("the victim did not connect")

    def _read(self) -> None:
        try:
            while self._receive.poll():
                item = self._receive.recv()
                if item[0] == "ready":
                    self.ready = True
                elif item[0] == "report":
                    self.report = item[1]
                else:
                    self.samples.append(item)
        except EOFError:  # the process is gone: nothing more will come
            asyncio.get_running_loop().remove_reader(self._receive.fileno())
            self.report = self.report or {"lost": -1, "error_samples": ["the victim's process died"]}
        self._changed.set()

    async def until(self, condition: Callable[[], bool], timeout: float = PHASE_TIMEOUT) -> bool:
        """Wait (on the samples arriving, bounded by ``timeout``) until ``condition()``."""
        try:
            async with asyncio.timeout(timeout):
                while not condition():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            return False
        return True

    def since(self, start: float, end: float = float("inf")) -> dict[str, list[float]]:
        """The answers' first-chunk times and the requests' round trips that started in ``[start, end)``."""
        found: dict[str, list[float]] = {"answer": [], "request": []}
        for kind, sent_at, seconds in self.samples:
            if start <= sent_at < end:
                found[kind].append(seconds)
        return found

    async def served(self, start: float, answers: int, requests: int) -> bool:
        """Wait until ``answers`` answers and ``requests`` requests started after ``start`` came back."""

        def enough() -> bool:
            got = self.since(start)
            return len(got["answer"]) >= answers and len(got["request"]) >= requests

        return await self.until(enough)

    async def stop(self) -> dict[str, Any]:
        self._stop.set()
        if not await self.until(lambda: self.report is not None):
            self.process.kill()
        await asyncio.to_thread(self.process.join, 30)
        with contextlib.suppress(ValueError):
            asyncio.get_running_loop().remove_reader(self._receive.fileno())
        return self.report or {"lost": -1, "error_samples": ["no report from the victim"]}


# --- The arena -------------------------------------------------------------------


class Arena:
    """What an attack works with: the server, the fake model server, sizes, the victim's pace."""

    def __init__(
        self,
        server: ServerProcess,
        server_args: list[str],
        victim: Victim,
        upstream: Upstream | None,
        report: AttackReport,
        *,
        samples: tuple[int, int],
        watch_seconds: float,
    ) -> None:
        self.server = server
        self.server_args = server_args
        self.victim = victim
        self.upstream = upstream
        self.report = report
        self.scale = report.scale
        #: Seconds an attack may keep watching something after the victim was served (the slowloris's sockets).
        self.watch_seconds = watch_seconds
        self._samples = samples
        assert server.process is not None
        self.pid = server.process.pid
        self.baseline_start = 0.0
        self.attack_start = 0.0
        self.attack_end = 0.0
        #: When the attack's active part (a flood) ended, if it ended before the attack's state was let go.
        self.active_end = 0.0
        self.rss_bound = 0
        self._overflows_before: dict[str, int] = {}
        self._log_lines_before = 0
        self._sampled_peak_kib = 0
        self._sampler: asyncio.Task[None] | None = None
        self._hwm_reset = False

    @property
    def url(self) -> str:
        return self.server.url

    def token(self, user: str) -> str:
        return self.server.token(user, ttl=3600)

    def size(self, full: float, floor: int) -> int:
        """``full`` times the scale, at least ``floor``."""
        return max(floor, round(full * self.scale))

    def flag(self, name: str) -> int:
        """The value of a numeric server flag in effect (the last given, else the server's default)."""
        value = DEFAULTS[name]
        for index, arg in enumerate(self.server_args):
            if arg == name and index + 1 < len(self.server_args):
                value = int(float(self.server_args[index + 1]))
            elif arg.startswith(name + "="):
                value = int(float(arg.split("=", 1)[1]))
        return value

    def expect(self, holds: bool, failure: str) -> None:
        """Record ``failure`` unless ``holds``: a property the attack must not break."""
        if not holds:
            self.report.failures.append(failure)

    def bound_rss(self, growth_bytes: float, rule: str) -> None:
        """The peak RSS growth the attack must stay under, and how it follows from the limits."""
        self.rss_bound = int(growth_bytes)
        self.report.rss_bound_mib = round(growth_bytes / MIB, 1)
        self.report.rss_bound_rule = rule

    def db_bytes(self) -> int:
        """Bytes of the SQLite database with its WAL and shared-memory files."""
        path = Path(self.server.db_path)
        return sum(
            candidate.stat().st_size
            for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
            if candidate.exists()
        )

    async def start(self) -> None:
        """Take the baseline (the victim chatting alone, from now), then mark the attack's start."""
        self.baseline_start = time.monotonic()
        answers, requests = self._samples
        if not await self.victim.served(self.baseline_start, answers, requests):
            self.report.failures.append("the victim was not served before the attack")
        self.report.rss_before_mib = mib(proc_status_kib(self.pid, "VmRSS"))
        self._hwm_reset = reset_peak_rss(self.pid)
        self._sampled_peak_kib = 0
        self._sampler = asyncio.get_running_loop().create_task(self._sample_rss())
        self._overflows_before = listen_counters()
        self._log_lines_before = len(self.server.stderr_lines)
        self.attack_start = time.monotonic()

    async def hold(self) -> None:
        """Return once the victim was served while the attack stands (as many samples as the baseline)."""
        answers, requests = self._samples
        if not await self.victim.served(self.attack_start, answers, requests):
            self.report.failures.append("the victim was not served during the attack")
        self.attack_end = time.monotonic()

    async def while_held(self, attacking: Awaitable[T]) -> T:
        """Run the attack's active part and ``hold`` together; the victim's "during" figures cover the active part."""

        async def active() -> T:
            try:
                return await attacking
            finally:
                self.active_end = time.monotonic()

        result, _ = await asyncio.gather(active(), self.hold())
        return result

    async def finish(self) -> None:
        """After the attack's function returned: the peak RSS, the attack's end if ``hold`` was not called."""
        if not self.attack_end:
            self.attack_end = time.monotonic()
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
        hwm = proc_status_kib(self.pid, "VmHWM") if self._hwm_reset else 0
        peak = max(hwm, self._sampled_peak_kib)
        self.report.peak_from = "VmHWM" if self._hwm_reset else "sampled"
        self.report.rss_peak_mib = mib(peak)
        self.report.rss_growth_mib = round(self.report.rss_peak_mib - self.report.rss_before_mib, 1)
        self.report.attack_seconds = round(self.attack_end - self.attack_start, 2)
        self.report.active_seconds = round((self.active_end or self.attack_end) - self.attack_start, 2)
        after = listen_counters()
        self.report.listen_overflows = {k: v - self._overflows_before.get(k, 0) for k, v in after.items()}
        self.report.server_log_lines = len(self.server.stderr_lines) - self._log_lines_before
        if self.rss_bound:
            self.expect(
                self.report.rss_growth_mib * MIB <= self.rss_bound,
                f"server RSS grew {self.report.rss_growth_mib} MiB, over the bound of {self.report.rss_bound_mib}",
            )

    async def _sample_rss(self) -> None:
        while True:
            self._sampled_peak_kib = max(self._sampled_peak_kib, proc_status_kib(self.pid, "VmRSS"))
            await asyncio.sleep(0.02)  # a sampling period, not a wait for an event


# --- Running one attack ------------------------------------------------------------


def _ratio(during: dict[str, Any], before: dict[str, Any], key: str) -> float | None:
    if not during.get(key) or not before.get(key):
        return None
    return round(during[key] / before[key], 2)


def _latency(before: list[float], during: list[float], whole: list[float]) -> dict[str, Any]:
    """Percentiles in ms before the attack, during its active part, during all of it; the ratios to before."""
    ms_before, ms_during, ms_whole = (percentiles([s * 1000 for s in x], digits=1) for x in (before, during, whole))
    return {
        "before_ms": {k: ms_before.get(k) for k in ("count", "p50", "p99", "max")},
        "during_ms": {k: ms_during.get(k) for k in ("count", "p50", "p99", "max")},
        "p50_ratio": _ratio(ms_during, ms_before, "p50"),
        "p99_ratio": _ratio(ms_during, ms_before, "p99"),
        "whole_attack_ms": {k: ms_whole.get(k) for k in ("count", "p50", "p99", "max")},
        "whole_attack_p50_ratio": _ratio(ms_whole, ms_before, "p50"),
        "whole_attack_p99_ratio": _ratio(ms_whole, ms_before, "p99"),
    }


async def run_attack(
    name: str,
    workdir: Path,
    *,
    scale: float = 1.0,
    server_args: list[str] | None = None,
    victim_interval: float = 1.05,
    samples: tuple[int, int] = FULL_SAMPLES,
    watch_seconds: float = 15.0,
) -> AttackReport:
    """Run attack ``name`` against a fresh server subprocess with a victim chatting; returns the figures."""
    spec = ATTACKS[name]
    started = time.monotonic()
    raise_fd_limit()  # the half-open sockets; the server raises its own
    args = [*BASE_SERVER_ARGS, *spec.server_args(scale), *(server_args or [])]
    report = AttackReport(attack=name, summary=spec.summary, limit=spec.limit, scale=scale, server_args=args)
    context = multiprocessing.get_context("spawn")
    workdir.mkdir(parents=True, exist_ok=True)
    upstream = Upstream(context, spec.upstream(scale)) if spec.upstream is not None else None
    env = {"MFU_OPENAI_BASE_URL": upstream.base_url, "MFU_OPENAI_MODEL": "fake-small"} if upstream else {}
    server = ServerProcess(workdir, *args, env=env)
    try:
        server.start()
        victim = Victim(context, server.url, server.token("victim"), workdir / "victim", victim_interval)
        await victim.start()
        arena = Arena(server, args, victim, upstream, report, samples=samples, watch_seconds=watch_seconds)
        try:
            report.figures = await spec.run(arena)
            report.outcome = str(report.figures.pop("outcome", ""))
        except Exception as error:  # noqa: BLE001 (reported: the other attacks still run)
            report.failures.append(f"the attack itself failed: {error!r}")
        finally:
            await arena.finish()
            victim_report = await victim.stop()
        report.rss_after_mib = mib(proc_status_kib(arena.pid, "VmRSS"))  # once the victim checked its chat
        before = victim.since(arena.baseline_start, arena.attack_start)
        during = victim.since(arena.attack_start, arena.active_end or arena.attack_end)
        whole = victim.since(arena.attack_start, arena.attack_end)
        report.victim = {
            "request_round_trip": _latency(before["request"], during["request"], whole["request"]),
            "first_chunk": _latency(before["answer"], during["answer"], whole["answer"]),
            **victim_report,
        }
        lost = victim_report.get("lost", -1)
        arena.expect(lost == 0, f"the victim lost {lost} message(s): {victim_report.get('lost_samples')}")
        arena.expect(victim_report.get("stuck", 1) == 0, "a victim's answer never ended")
        arena.expect(server.process is not None and server.process.poll() is None, "the server died")
    finally:
        server.kill()
        if upstream is not None:
            upstream.stop()
    report.seconds = round(time.monotonic() - started, 1)
    return report


# --- Attacker helpers ----------------------------------------------------------------


async def open_ws(arena: Arena, user: str) -> ClientConnection:
    """A plain WebSocket of ``user`` (reads when asked), loopback, no proxy."""
    return await connect(
        arena.url,
        additional_headers={"Authorization": f"Bearer {arena.token(user)}"},
        proxy=None,
        open_timeout=PHASE_TIMEOUT,
        ping_interval=None,
        max_size=None,
        max_queue=None,
        compression=None,
    )


async def send_frame(ws: ClientConnection, frame: Any) -> None:
    await ws.send(encode(frame).decode())


async def ask_and_wait(ws: ClientConnection, chat_id: str | None, content: str) -> tuple[Ack, Complete]:
    """Send a message, read until its answer ends; its ``ack`` and end."""
    cid = str(uuid.uuid4())
    await send_frame(ws, Message(chat_id=chat_id, client_message_id=cid, content=content))
    ack: Ack | None = None
    async with asyncio.timeout(PHASE_TIMEOUT):
        while True:
            frame = decode_server(await ws.recv())
            if isinstance(frame, Ack) and frame.client_message_id == cid:
                ack = frame
            elif isinstance(frame, Complete) and ack is not None and frame.message_id == ack.reply_id:
                return ack, frame
            elif isinstance(frame, Error):
                raise RuntimeError(f"the attacker's message was refused: {frame.code} {frame.message}")


async def request(ws: ClientConnection, frame: Any) -> Result:
    """Send a request and read until its ``result`` (other frames skipped)."""
    await send_frame(ws, frame)
    async with asyncio.timeout(PHASE_TIMEOUT):
        while True:
            answer = decode_server(await ws.recv())
            if isinstance(answer, Result) and answer.request_id == frame.request_id:
                return answer
            if isinstance(answer, Error) and answer.request_id == frame.request_id:
                raise RuntimeError(f"{type(frame).__name__} refused: {answer.code} {answer.message}")


def budget(arena: Arena, seconds: float) -> int:
    """The most messages and edits one user's budget lets through in ``seconds``."""
    return MESSAGE_BURST + int(arena.flag("--rate-limit") / 60 * seconds) + 1


# --- The attacks -----------------------------------------------------------------------


@attack(
    "connections",
    summary="one token opens 1,500 connections, 50 handshakes at a time, and keeps those it gets",
    limit="--connections-per-user (20): HTTP 429 at the door, 1013 if simultaneous handshakes slipped in",
)
async def connection_flood(arena: Arena) -> dict[str, Any]:
    attempts = arena.size(1500, 50)
    cap = arena.flag("--connections-per-user")
    arena.bound_rss(
        BASE_SLACK + cap * arena.flag("--send-queue-bytes"),
        "48 MiB + connections-per-user x send-queue-bytes",
    )
    opened: list[ClientConnection] = []
    refused = Counter[int]()
    failures: list[str] = []
    gate = asyncio.Semaphore(50)

    async def one() -> None:
        async with gate:
            try:
                opened.append(await open_ws(arena, "mallory"))
            except InvalidStatus as error:
                refused[error.response.status_code] += 1
            except Exception as error:  # noqa: BLE001 (a figure: attempts that failed otherwise)
                failures.append(repr(error))

    async def flood() -> float:
        began = time.monotonic()
        await asyncio.gather(*(one() for _ in range(attempts)))
        return time.monotonic() - began

    await arena.start()
    flood_seconds = await arena.while_held(flood())
    live = 0
    for ws in opened:  # those that slipped in with simultaneous handshakes were closed with 1013
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            await send_frame(ws, Ping(ts=1))
            async with asyncio.timeout(PHASE_TIMEOUT):
                while not isinstance(decode_server(await ws.recv()), Pong):
                    pass
            live += 1
    await asyncio.gather(*(ws.close() for ws in opened))
    arena.expect(live <= cap, f"{live} connections of one user answered, over the cap of {cap}")
    arena.expect(refused[429] > 0, "no attempt was refused with 429")
    return {
        "outcome": f"{live} of {attempts:,} open, {refused[429]:,} refused with 429, {len(failures)} failed otherwise",
        "attempted": attempts,
        "handshakes_completed": len(opened),
        "answering_after_the_flood": live,
        "refused": dict(refused),
        "other_failures": len(failures),
        "failure_samples": failures[:3],
        "flood_seconds": round(flood_seconds, 2),
        "attempts_per_second": round(attempts / max(flood_seconds, 1e-3)),
    }


#: The big chat is made of messages this long (a message's new text may hold 64 KiB).
BIG_MESSAGE_CHARS = 60_000


@attack(
    "big_get_chat",
    summary="one user's connections that never read, each asking get_chat of a 6 MB chat 50 times",
    limit="--connections-per-user (20); per connection, unsent replies over --send-queue-bytes "
    "stop the server reading it (a per-user bound on reply bytes is not there yet)",
    server_args=lambda scale: ["--rate-limit", "1000000"],  # to write the big chat quickly
)
async def big_get_chat(arena: Arena) -> dict[str, Any]:
    chat_bytes = arena.size(6_000_000, 300_000)
    attempts = arena.size(100, 30)
    asks = 50
    cap = arena.flag("--connections-per-user")
    owner = await open_ws(arena, "mallory")
    chat_id: str | None = None
    for _ in range(-(-chat_bytes // BIG_MESSAGE_CHARS)):
        ack, _ = await ask_and_wait(owner, chat_id, "b" * BIG_MESSAGE_CHARS)
        chat_id = ack.chat_id
    assert chat_id is not None
    reply_bytes = len(encode(await request(owner, GetChat(request_id="size", chat_id=chat_id))))
    await owner.close()
    # Per connection: the queue up to the limit plus one reply, one reply in the transport, one being built.
    arena.bound_rss(
        BASE_SLACK + cap * (arena.flag("--send-queue-bytes") + 4 * reply_bytes),
        "48 MiB + connections-per-user x (send-queue-bytes + 4 x the get_chat reply)",
    )
    frame = encode(GetChat(request_id="again", chat_id=chat_id)).decode()
    await arena.start()
    readers: list[RawClient] = []
    refused: list[str] = []
    for _ in range(attempts):
        try:
            client = await RawClient.open(arena.url, arena.token("mallory"), receive_buffer=4096)
        except (AssertionError, ConnectionError, OSError) as error:
            refused.append(repr(error)[:80])
            continue
        readers.append(client)
        for _ in range(asks):
            client.send_text(frame)
    await arena.hold()
    for client in readers:
        client.close()
    arena.expect(len(readers) <= cap, f"{len(readers)} connections opened past the cap of {cap}")
    return {
        "outcome": f"{len(readers)} of {attempts} connections opened, each asked {asks} x {reply_bytes / MIB:.1f} MB",
        "chat_bytes": chat_bytes,
        "get_chat_reply_bytes": reply_bytes,
        "connections_attempted": attempts,
        "connections_opened": len(readers),
        "refused": len(refused),
        "get_chat_sent": len(readers) * asks,
        "bytes_asked_for": len(readers) * asks * reply_bytes,
    }


@attack(
    "list_models",
    summary="2,000 list_models on one connection against a model server that takes 2 s to list",
    limit="one model listing at a time for everyone, cached 60 s",
    server_args=lambda scale: ["--provider", "openai"],
    upstream=lambda scale: UpstreamSettings(models_delay=2.0 if scale >= 0.5 else 0.5),
)
async def list_models_flood(arena: Arena) -> dict[str, Any]:
    count = arena.size(2000, 100)
    assert arena.upstream is not None
    arena.bound_rss(BASE_SLACK + count * 16 * 1024, "48 MiB + 16 KiB per waiting request")
    ws = await open_ws(arena, "mallory")
    answered = errors = 0

    async def flood() -> float:
        nonlocal answered, errors
        began = time.monotonic()
        for number in range(count):
            await send_frame(ws, ListModels(request_id=f"m{number}"))
        async with asyncio.timeout(PHASE_TIMEOUT):
            while answered + errors < count:
                frame = decode_server(await ws.recv())
                answered += isinstance(frame, Result)
                errors += isinstance(frame, Error)
        return time.monotonic() - began

    await arena.start()
    seconds = await arena.while_held(flood())
    await ws.close()
    # Counted from the server's start: its own listing once it listens (``ChatServer._list_models_once``) is the
    # catalog's first fetch, which the flood shares or finds cached, whenever the attack begins.
    upstream_lists = arena.upstream.counters.model_lists.value
    arena.expect(answered == count, f"{answered} of {count} list_models answered ({errors} errors)")
    arena.expect(upstream_lists <= 1 + int(seconds // 60), f"the model server was asked {upstream_lists} times")
    return {
        "outcome": f"{answered:,} of {count:,} answered, {upstream_lists} request(s) to the model server in all",
        "requests": count,
        "answered": answered,
        "errors": errors,
        "model_server_requests": upstream_lists,
        "flood_seconds": round(seconds, 2),
    }


def _closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True once the server closed the socket: a FIN, or a reset (its close with our request unread is an RST)."""
    return reader.at_eof() or reader.exception() is not None


#: The start of an upgrade request that never ends (no blank line).
HALF_REQUEST = b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"


@attack(
    "slowloris",
    summary="1,100 half-sent upgrade requests held open, then 50 new users connect",
    limit="websockets' opening handshake timeout (10 s); no bound on their number yet",
)
async def slowloris(arena: Arena) -> dict[str, Any]:
    sockets = arena.size(1100, 100)
    newcomers = arena.size(50, 10)
    arena.bound_rss(BASE_SLACK + sockets * 64 * 1024, "48 MiB + 64 KiB per half-open socket")
    held: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    failed_to_open: list[str] = []
    gate = asyncio.Semaphore(100)

    async def half_open() -> None:
        async with gate:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", arena.server.port)
            except OSError as error:
                failed_to_open.append(repr(error))
                return
            writer.write(HALF_REQUEST)
            held.append((reader, writer))

    connect_seconds: list[float] = []
    newcomer_failures: list[str] = []

    async def newcomer(name: str, seconds: list[float]) -> None:
        began = time.monotonic()
        try:
            ws = await open_ws(arena, name)
            await send_frame(ws, Ping(ts=2))
            async with asyncio.timeout(PHASE_TIMEOUT):
                while not isinstance(decode_server(await ws.recv()), Pong):
                    pass
            await ws.close()
        except Exception as error:  # noqa: BLE001 (a figure: newcomers that could not get in)
            newcomer_failures.append(repr(error)[:120])
        else:
            seconds.append(time.monotonic() - began)

    baseline_seconds: list[float] = []
    for number in range(5):  # how long getting in takes without the attack
        await newcomer(f"early-{number}", baseline_seconds)
    await arena.start()
    opened_at = time.monotonic()
    await asyncio.gather(*(half_open() for _ in range(sockets)))
    open_seconds = time.monotonic() - opened_at
    await asyncio.gather(*(newcomer(f"newcomer-{n}", connect_seconds) for n in range(newcomers)))
    await arena.hold()
    closed_at_hold = sum(_closed_by_server(reader) for reader, _ in held)
    # Watch how long the server keeps them: measuring for a while, not waiting for an event.
    watched_until = opened_at + arena.watch_seconds
    while time.monotonic() < watched_until and not all(_closed_by_server(reader) for reader, _ in held):
        await asyncio.sleep(0.1)
    closed = sum(_closed_by_server(reader) for reader, _ in held)
    for _, writer in held:
        writer.transport.abort()
    ok = len(connect_seconds)
    arena.expect(ok == newcomers, f"{newcomers - ok} of {newcomers} new users could not connect")
    arena.expect(len(baseline_seconds) == 5, "users could not connect before the attack")
    return {
        "outcome": f"{ok} of {newcomers} new users in (p50 {percentiles(connect_seconds).get('p50')} s); "
        f"{len(held):,} half-open held, "
        f"{closed:,} closed by the server within {time.monotonic() - opened_at:.0f} s",
        "half_open": len(held),
        "half_open_failed": len(failed_to_open),
        "newcomers": newcomers,
        "newcomers_in": ok,
        "newcomer_failure_samples": newcomer_failures[:3],
        "half_open_seconds": round(open_seconds, 2),
        "newcomer_connect_ms": percentiles([s * 1000 for s in connect_seconds], digits=1),
        "connect_ms_before_the_attack": percentiles([s * 1000 for s in baseline_seconds], digits=1),
        "closed_by_server_at_hold": closed_at_hold,
        "closed_by_server": closed,
        "watched_seconds": round(time.monotonic() - opened_at, 1),
    }


EDIT_CHARS = 60_000


@attack(
    "edit_flood",
    summary="1,500 edit_message of 60 KB (no regenerate) as fast as one connection takes them",
    limit="the message budget (--rate-limit 60 a minute, bursts of 20)",
)
async def edit_flood(arena: Arena) -> dict[str, Any]:
    edits = arena.size(1500, 100)
    arena.bound_rss(
        BASE_SLACK + 2 * arena.flag("--send-queue-bytes") + 4 * 64 * 1024,
        "48 MiB + 2 x send-queue-bytes + 4 inbound frames of 64 KiB",
    )
    ws = await open_ws(arena, "mallory")
    ack, _ = await ask_and_wait(ws, None, "a message to edit")
    db_before = arena.db_bytes()
    outcomes = Counter[str]()

    async def flood() -> float:
        began = time.monotonic()

        async def write() -> None:
            for number in range(edits):
                content = f"edit {number} " + "e" * EDIT_CHARS
                frame = EditMessage(
                    chat_id=ack.chat_id, message_id=ack.message_id, content=content, client_edit_id=f"e{number}"
                )
                await send_frame(ws, frame)

        async def read() -> None:
            async with asyncio.timeout(PHASE_TIMEOUT):
                while sum(outcomes.values()) < edits:
                    frame = decode_server(await ws.recv())
                    if isinstance(frame, MessageEdited):
                        outcomes["applied"] += 1
                    elif isinstance(frame, Error):
                        outcomes["refused" if frame.code == "rate_limited" else frame.code] += 1

        await asyncio.gather(write(), read())
        return time.monotonic() - began

    await arena.start()
    seconds = await arena.while_held(flood())
    await ws.close()
    growth = arena.db_bytes() - db_before
    applied = outcomes["applied"]
    arena.expect(outcomes["refused"] > 0, "no edit was refused")
    arena.expect(applied <= budget(arena, seconds), f"{applied} edits applied in {seconds:.1f} s, over the budget")
    # Each applied edit rewrites the message and keeps the edit (its clientEditId): two copies, plus the WAL's pages.
    arena.expect(growth <= (applied + 1) * 4 * 64 * 1024 + 8 * MIB, f"the database grew {growth} bytes")
    return {
        "outcome": f"{applied} applied, {outcomes['refused']:,} refused (rate_limited); "
        f"database +{growth / MIB:.1f} MiB",
        "edits": edits,
        "outcomes": dict(outcomes),
        "database_growth_bytes": growth,
        "bytes_sent": edits * EDIT_CHARS,
        "flood_seconds": round(seconds, 2),
    }


def _huge_max_chars(scale: float) -> int:
    return max(50_000, round(1_000_000 * scale))


@attack(
    "huge_answer",
    summary="the model server answers 20 MB (20 x the answer cap)",
    limit="--max-answer-chars (1,000,000): the answer ends there with finishReason length",
    server_args=lambda scale: ["--provider", "openai", "--max-answer-chars", str(_huge_max_chars(scale))],
    upstream=lambda scale: UpstreamSettings(huge_bytes=20 * _huge_max_chars(scale)),
)
async def huge_answer(arena: Arena) -> dict[str, Any]:
    limit = arena.flag("--max-answer-chars")
    assert arena.upstream is not None
    arena.bound_rss(BASE_SLACK + 16 * limit, "48 MiB + 16 bytes per character of the answer cap")
    ws = await open_ws(arena, "mallory")
    chars = chunks = 0
    closed: list[int | None] = []

    async def ask() -> tuple[Ack, Complete]:
        """Read the answer; a close (4000 when the reader falls behind) is followed by a reconnect and a resume."""
        nonlocal ws, chars, chunks
        cid = str(uuid.uuid4())
        await send_frame(ws, Message(chat_id=None, client_message_id=cid, content="HUGE, please"))
        ack: Ack | None = None
        last_seq = 0
        async with asyncio.timeout(PHASE_TIMEOUT):
            while True:
                try:
                    frame = decode_server(await ws.recv())
                except ConnectionClosed as error:
                    closed.append(error.rcvd.code if error.rcvd else None)
                    if ack is None or len(closed) > 20:
                        raise
                    ws = await open_ws(arena, "mallory")
                    await send_frame(ws, Resume(chat_id=ack.chat_id, message_id=ack.reply_id, last_seq=last_seq))
                    continue
                if isinstance(frame, Ack):
                    ack = frame
                elif isinstance(frame, Chunk) and frame.seq == last_seq + 1:
                    chars += len(frame.content)
                    chunks += 1
                    last_seq = frame.seq
                elif isinstance(frame, Complete) and ack is not None:
                    return ack, frame

    await arena.start()
    ack, end = await arena.while_held(ask())
    result = await request(ws, GetChat(request_id="after", chat_id=ack.chat_id))
    await ws.close()
    stored = next(m for m in result.data["messages"] if m["id"] == ack.reply_id)
    sent = arena.upstream.counters.huge_sent.value
    arena.expect(end.finish_reason == "length", f"the answer ended with {end.finish_reason}")
    arena.expect(chars == limit, f"{chars} characters streamed, the cap is {limit}")
    arena.expect(len(stored["content"]) == limit, f"{len(stored['content'])} characters stored")
    arena.expect(stored.get("finishReason") == "length", f"stored with {stored.get('finishReason')}")
    return {
        "outcome": f"ended at {chars:,} chars (length) after {sent / MIB:.1f} of "
        f"{20 * limit / MIB:.0f} MiB sent upstream; get_chat after: ok",
        "max_answer_chars": limit,
        "streamed_chars": chars,
        "chunks": chunks,
        "finish_reason": end.finish_reason,
        "stored_chars": len(stored["content"]),
        "attacker_closed": closed,
        "upstream_bytes_offered": 20 * limit,
        "upstream_bytes_sent_before_the_cut": sent,
        "get_chat_reply_bytes": len(encode(result)),
    }


@attack(
    "ping_flood",
    summary="a client writes 1 MiB blobs of WebSocket pings and never reads (4 KiB receive buffer)",
    limit="bytes waiting in a connection's transport: --send-queue-bytes + 16 MiB, then the TCP connection is dropped",
)
async def ping_flood(arena: Arena) -> dict[str, Any]:
    transport_limit = arena.flag("--send-queue-bytes") + TRANSPORT_SLACK
    arena.bound_rss(BASE_SLACK + 2 * transport_limit, "48 MiB + 2 x (send-queue-bytes + 16 MiB)")
    host, port, token = "127.0.0.1", arena.server.port, arena.token("mallory")
    most = 256

    def flood() -> int:
        """Sends pings, never reads; the MiB sent when the server cut the connection (0: never)."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(PHASE_TIMEOUT)
            sock.connect((host, port))
            sock.sendall(
                f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                f"Authorization: Bearer {token}\r\n\r\n".encode()
            )
            response = b""
            while b"\r\n\r\n" not in response:
                response += sock.recv(4096)
            assert response.startswith(b"HTTP/1.1 101"), response[:100]
            blob = ping_frames(8192)  # 1 MiB of pings: 1 MiB of pongs to write back
            for megabytes in range(1, most + 1):
                try:
                    sock.sendall(blob)
                except OSError:  # reset: the server dropped us
                    return megabytes
            return 0

    await arena.start()
    cut_after = await arena.while_held(asyncio.to_thread(flood))
    arena.expect(0 < cut_after < most, f"the server did not drop the flooder ({most} MiB of pings taken)")
    return {
        "outcome": f"dropped after {cut_after} MiB of pings" if cut_after else f"not dropped after {most} MiB",
        "cut_after_mib": cut_after,
        "transport_limit_bytes": transport_limit,
    }


@attack(
    "message_flood",
    summary="1,000 message frames of 1 KB from one user, each starting a new chat",
    limit="the message budget (--rate-limit 60 a minute, bursts of 20)",
)
async def message_flood(arena: Arena) -> dict[str, Any]:
    count = arena.size(1000, 100)
    arena.bound_rss(
        BASE_SLACK + 2 * arena.flag("--send-queue-bytes") + MESSAGE_BURST * 256 * 1024,
        "48 MiB + 2 x send-queue-bytes + 256 KiB per answer the burst starts",
    )
    ws = await open_ws(arena, "mallory")
    db_before = arena.db_bytes()
    outcomes = Counter[str]()
    acked: set[str] = set()
    complete: set[str] = set()

    async def flood() -> float:
        began = time.monotonic()
        for number in range(count):
            message = Message(chat_id=None, client_message_id=f"m{number}", content=f"{number} " + "m" * 1000)
            await send_frame(ws, message)
        async with asyncio.timeout(PHASE_TIMEOUT):
            while outcomes["accepted"] + outcomes["refused"] < count or len(complete) < len(acked):
                frame = decode_server(await ws.recv())
                if isinstance(frame, Ack):
                    outcomes["accepted"] += 1
                    acked.add(frame.reply_id)
                elif isinstance(frame, Complete):
                    complete.add(frame.message_id)
                elif isinstance(frame, Error):
                    outcomes["refused" if frame.code == "rate_limited" else frame.code] += 1
        return time.monotonic() - began

    await arena.start()
    seconds = await arena.while_held(flood())
    await ws.close()
    growth = arena.db_bytes() - db_before
    accepted = outcomes["accepted"]
    arena.expect(outcomes["refused"] > 0, "no message was refused")
    arena.expect(accepted <= budget(arena, seconds), f"{accepted} messages accepted in {seconds:.1f} s")
    return {
        "outcome": f"{accepted} accepted (answered), {outcomes['refused']:,} refused (rate_limited); "
        f"database +{growth / MIB:.1f} MiB",
        "messages": count,
        "outcomes": dict(outcomes),
        "answers_complete": len(complete),
        "database_growth_bytes": growth,
        "flood_seconds": round(seconds, 2),
    }


# --- Running several, printing ---------------------------------------------------------------


def _cell(latency: dict[str, Any], window: str) -> str:
    """``before p50/p99 -> during p50/p99 (ratios, n)`` in ms, ``window`` being ``during`` or ``whole_attack``."""
    before, during = latency["before_ms"], latency[f"{window}_ms"]
    if not during.get("count"):
        return "no samples"
    prefix = "" if window == "during" else "whole_attack_"
    return (
        f"{before.get('p50')}/{before.get('p99')} -> {during.get('p50')}/{during.get('p99')} "
        f"(x{latency[prefix + 'p50_ratio']}/x{latency[prefix + 'p99_ratio']}, n={during.get('count')})"
    )


def table(reports: list[AttackReport]) -> str:
    """The figures as a Markdown table (the one in docs/reliability.md)."""
    lines = [
        "| attack | outcome | server RSS MiB: before -> peak (growth; bound) "
        "| victim `list_chats` ms p50/p99: before -> during the attack's active part (ratios, n) "
        "| victim first chunk ms p50/p99: before -> during the whole attack (ratios, n) | victim lost | clean |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        v = r.victim
        requests = _cell(v["request_round_trip"], "during") if v else "-"
        answers = _cell(v["first_chunk"], "whole_attack") if v else "-"
        lines.append(
            f"| {r.attack} | {r.outcome} "
            f"| {r.rss_before_mib} -> {r.rss_peak_mib} (+{r.rss_growth_mib}; {r.rss_bound_mib}) "
            f"| {requests} | {answers} | {v.get('lost', '-')} of {v.get('messages', '-')} "
            f"| {'yes' if r.clean else 'NO: ' + '; '.join(r.failures)} |"
        )
    return "\n".join(lines)


async def run_all(
    names: list[str], workdir: Path, *, scale: float, server_args: list[str], victim_interval: float, watch: float
) -> list[AttackReport]:
    reports = []
    samples = FULL_SAMPLES if scale >= 0.5 else CI_SAMPLES
    for name in names:
        print(f"attack {name} ...", file=sys.stderr, flush=True)
        report = await run_attack(
            name,
            workdir / name,
            scale=scale,
            server_args=server_args,
            victim_interval=victim_interval,
            samples=samples,
            watch_seconds=watch,
        )
        print(f"attack {name}: {report.outcome} ({report.seconds} s)", file=sys.stderr, flush=True)
        reports.append(report)
    return reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attack", action="append", choices=sorted(ATTACKS), help="repeatable; default: all")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every count and size (default 1)")
    parser.add_argument("--server-args", default="", help="extra flags for mfu-chat serve, as one string")
    parser.add_argument("--victim-interval", type=float, default=1.05, help="seconds between the victim's questions")
    parser.add_argument("--watch", type=float, default=15.0, help="seconds to watch the half-open sockets")
    parser.add_argument("--json", action="store_true", help="print the JSON figures only")
    args = parser.parse_args()
    names = args.attack or list(ATTACKS)
    with tempfile.TemporaryDirectory() as workdir:
        reports = asyncio.run(
            run_all(
                names,
                Path(workdir),
                scale=args.scale,
                server_args=shlex.split(args.server_args),
                victim_interval=args.victim_interval,
                watch=args.watch,
            )
        )
    if not args.json:
        print(table(reports))
        print()
    print(json.dumps([{**dataclasses.asdict(r), "clean": r.clean} for r in reports], indent=2))
    raise SystemExit(0 if all(r.clean for r in reports) else 1)


if __name__ == "__main__":
    main()
