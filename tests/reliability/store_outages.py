"""Take the server's database away under connected clients, bring it back, and check every message.

Several real clients (``ChatClient``, each its own user, outbox and chat)
send messages continuously to a real ``mfu-chat serve`` (demo provider)
while its store goes away and comes back, ``--outages`` times:

- ``--backend postgres``: PostgreSQL stopped (``pg_ctl stop``, ``-m fast``
  and ``-m immediate`` in turn) and started again;
- ``--backend sqlite``: the SQLite file on a small tmpfs of its own that is
  filled to the last byte (a file system that refuses writes: "database or
  disk is full"), then emptied. Mounting it needs root.

Each message must end in one of two ways: acknowledged once, its answer
ended at its client (``complete`` or ``cancel``; the finish reasons are
counted), or refused for good with an ``error`` the user sees (by code).
Then, against the stored chats: nothing lost (every message stored or
refused), nothing stored twice, every chat's messages in the order sent,
every answer's chunks ``1..n`` once each in order and its text as stored,
and nothing left in an outbox (``stuck``). After each return of the
database: the seconds until every message queued meanwhile is acknowledged
(``drain_seconds``) and until their answers ended (``answered_seconds``).

Run by hand::

    python -m tests.reliability.store_outages --backend postgres --outages 10 --outage-seconds 5
    python -m tests.reliability.store_outages --backend sqlite --outages 10 --outage-seconds 5
    python -m tests.reliability.store_outages --backend postgres --outage-seconds 8 --lease 2  # past the lease

CI runs two short PostgreSQL outages and one SQLite one (``tests/reliability/test_store_outages.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from mfu_tui.client import Backoff, ChatClient, ClientError, MessageReloaded
from mfu_tui.client.errors import REFUSED_FOR_GOOD
from mfu_tui.protocol import Ack, Cancelled, Chunk, Complete
from tests.reliability.server_kills import _retried
from tests.support.postgres import PostgresServer, running_postgres
from tests.support.server import ServerProcess

#: Seconds the messages queued during an outage may take to be answered once it is over,
#: and the last messages at the end: past it what is left counts as stuck.
SETTLE_TIMEOUT = 30.0


@dataclass
class OutageReport:
    """Figures of one run."""

    backend: str = ""
    outages: int = 0
    clients: int = 0
    messages: int = 0
    acked: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    """Messages refused for good, by the ``error`` code their user saw."""
    deferred: dict[str, int] = field(default_factory=dict)
    """Refusals for now (the client sent the message again), by code."""
    answer_errors: dict[str, int] = field(default_factory=dict)
    """``error`` frames about an answer (not a message), by code."""
    acked_twice: int = 0
    unanswered: int = 0
    stuck: int = 0
    lost: int = 0
    stored_twice: int = 0
    out_of_order: int = 0
    chunks: int = 0
    chunks_lost: int = 0
    chunks_repeated: int = 0
    chunks_reordered: int = 0
    text_mismatches: int = 0
    reloaded: int = 0
    left_streaming: int = 0
    finish_reasons: dict[str, int] = field(default_factory=dict)
    drain_seconds: list[float] = field(default_factory=list)
    """Per outage: from the database's return to the ack of the last message queued before it."""
    answered_seconds: list[float] = field(default_factory=list)
    """Per outage: from the database's return to the end of the last of those messages' answers."""
    outage_log_lines: int = 0
    """The server's log lines saying the database went away or came back (two per outage at best)."""
    tracebacks: int = 0
    """Tracebacks in the server's log (an outage is not a bug: 0 at best)."""
    seconds: float = 0.0
    incidents: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when every message was acknowledged once and answered, or refused; none lost, doubled or stuck."""
        return (
            self.acked + sum(self.refused.values()) == self.messages
            and self.acked_twice == self.unanswered == self.stuck == self.lost == 0
            and self.stored_twice == self.out_of_order == self.left_streaming == 0
            and self.chunks_lost == self.chunks_repeated == self.chunks_reordered == self.text_mismatches == 0
        )


class Fault(Protocol):
    """A way to take the store away and give it back."""

    def cut(self, round_number: int) -> None: ...

    def heal(self) -> None: ...


class PostgresStopped:
    """PostgreSQL stopped, ``-m fast`` (clients told, transactions rolled back) and ``-m immediate`` in turn."""

    def __init__(self, postgres: PostgresServer) -> None:
        self.postgres = postgres

    def cut(self, round_number: int) -> None:
        self.postgres.stop(mode=("fast", "immediate")[round_number % 2])

    def heal(self) -> None:
        self.postgres.launch()


class DiskFull:
    """A tmpfs of its own for the SQLite file, filled to its last byte by a filler file, emptied by removing it."""

    def __init__(self, mountpoint: Path) -> None:
        self.filler = mountpoint / "filler"

    def cut(self, round_number: int) -> None:
        block = b"\0" * 65536
        with open(self.filler, "wb", buffering=0) as filler:
            while True:  # bounded by the file system's size
                try:
                    filler.write(block)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    if len(block) == 1:
                        return
                    block = block[: len(block) // 2]  # to the last byte

    def heal(self) -> None:
        self.filler.unlink()


@contextlib.contextmanager
def small_file_system(mountpoint: Path, size_mib: int) -> Iterator[Path]:
    """A tmpfs of ``size_mib`` MiB mounted at ``mountpoint`` (root only), unmounted at the end."""
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(mountpoint)], check=True)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


class Writer:
    """One user writing to their chat: what was sent, and what their client handed over."""

    def __init__(self, number: int, client: ChatClient, clock: Callable[[], float]) -> None:
        self.number = number
        self.client = client
        self.clock = clock
        self.chat_id: str | None = None
        #: clientMessageId -> (text, time sent), in the order sent.
        self.sent: dict[str, tuple[str, float]] = {}
        self.acks: dict[str, list[Ack]] = {}
        self.acked_at: dict[str, float] = {}
        self.refused: dict[str, str] = {}
        self.deferred: dict[str, int] = {}
        self.answer_errors: dict[str, int] = {}
        self.seqs: dict[str, list[int]] = {}
        self.texts: dict[str, list[str]] = {}
        self.reloaded: dict[str, str] = {}
        self.ends: dict[str, Complete | Cancelled] = {}
        self.ended_at: dict[str, float] = {}
        self.changed = asyncio.Event()
        client.on_message(self._frame)
        client.on_error(self._error)

    def _frame(self, frame: object) -> None:
        now = self.clock()
        if isinstance(frame, Ack):
            self.acks.setdefault(frame.client_message_id, []).append(frame)
            self.acked_at.setdefault(frame.client_message_id, now)
        elif isinstance(frame, Chunk):
            self.seqs.setdefault(frame.message_id, []).append(frame.seq)
            self.texts.setdefault(frame.message_id, []).append(frame.content)
        elif isinstance(frame, (Complete, Cancelled)):
            self.ends[frame.message_id] = frame
            self.ended_at.setdefault(frame.message_id, now)
        elif isinstance(frame, MessageReloaded):  # a resync: the stored text replaces what was handed over
            self.reloaded[frame.message_id] = frame.content
            if frame.status != "streaming":
                self.ended_at.setdefault(frame.message_id, now)
        self.changed.set()

    def _error(self, error: ClientError) -> None:
        if error.client_message_id is not None and error.code in REFUSED_FOR_GOOD:
            self.refused[error.client_message_id] = error.code or ""
        elif error.client_message_id is not None:
            self.deferred[error.code or ""] = self.deferred.get(error.code or "", 0) + 1
        elif error.message_id is not None:
            self.answer_errors[error.code or ""] = self.answer_errors.get(error.code or "", 0) + 1
        self.changed.set()

    def reply(self, client_message_id: str) -> str | None:
        acks = self.acks.get(client_message_id)
        return acks[0].reply_id if acks else None

    def answered(self, client_message_id: str) -> bool:
        """Refused, or acknowledged with its answer ended at this client."""
        if client_message_id in self.refused:
            return True
        reply = self.reply(client_message_id)
        return reply is not None and reply in self.ended_at

    async def until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``condition()`` holds, re-checked on each frame or error; False at the timeout."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not condition():
                    self.changed.clear()
                    await self.changed.wait()
        return condition()

    async def write(self, interval: float, stop: asyncio.Event) -> None:
        """Open a chat, then send a message to it every ``interval`` seconds until ``stop``."""
        first = await self._send(None)
        if not await self.until(lambda: first in self.acks or first in self.refused, SETTLE_TIMEOUT):
            return
        self.chat_id = self.acks[first][0].chat_id if first in self.acks else None
        while not stop.is_set() and self.chat_id is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)  # the pace of a user typing, not a wait on a state
            if not stop.is_set():
                await self._send(self.chat_id)

    async def _send(self, chat_id: str | None) -> str:
        text = f"writer {self.number} message {len(self.sent)}"
        client_message_id = await self.client.send_message(chat_id, text)
        self.sent[client_message_id] = (text, self.clock())
        return client_message_id


async def run(
    backend: str,
    outages: int,
    outage_seconds: float,
    workdir: Path,
    *,
    clients: int = 5,
    interval: float = 1.0,
    between: float = 3.0,
    words: int = 20,
    delay_ms: float = 20.0,
    lease: float = 10.0,
    server_log: Path | None = None,
) -> OutageReport:
    """Take the store away ``outages`` times for ``outage_seconds`` under ``clients`` writers; the figures."""
    report = OutageReport(backend=backend, clients=clients)
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        server = ServerProcess(
            workdir,
            "--demo-words", str(words), "--demo-delay-ms", str(delay_ms),
            "--rate-limit", "100000", "--lease", str(lease),
        )  # fmt: skip
        fault: Fault
        if backend == "postgres":
            postgres = stack.enter_context(running_postgres())
            server.args += ["--db", postgres.new_database()]
            fault = PostgresStopped(postgres)
        else:
            disk = stack.enter_context(small_file_system(workdir / "disk", size_mib=16))
            server.db_path = disk / "server.sqlite3"
            fault = DiskFull(disk)
        server.start()
        if server_log is not None:
            stack.callback(lambda: server_log.write_text(server.stderr))
        stack.callback(server.kill)
        await _drive(server, fault, report, outages, outage_seconds, workdir, clients, interval, between)
        server.kill()  # its log is whole once it is gone
        lines = server.stderr.splitlines()
        report.outage_log_lines = sum(1 for line in lines if " mfu_tui.server.store.outage: " in line)
        report.tracebacks = sum(1 for line in lines if line.startswith("Traceback "))
    report.seconds = round(time.monotonic() - started, 1)
    return report


async def _drive(
    server: ServerProcess,
    fault: Fault,
    report: OutageReport,
    outages: int,
    outage_seconds: float,
    workdir: Path,
    clients: int,
    interval: float,
    between: float,
) -> None:
    loop = asyncio.get_running_loop()
    writers = []
    for number in range(clients):
        client = ChatClient(
            server.url,
            server.token(f"user{number}"),
            data_dir=workdir / f"client{number}",
            backoff=Backoff(base=0.05, cap=0.5),
            ping_interval=1.0,
            ping_timeout=2.0,
        )
        writers.append(Writer(number, client, loop.time))
    stop = asyncio.Event()
    try:
        for writer in writers:
            await writer.client.connect()
        tasks = [asyncio.create_task(writer.write(interval, stop)) for writer in writers]
        for round_number in range(outages):
            await asyncio.sleep(between)  # traffic with the database up: a pace, not a wait on a state
            await asyncio.to_thread(fault.cut, round_number)
            await asyncio.sleep(outage_seconds)  # how long the outage lasts
            await asyncio.to_thread(fault.heal)
            back = loop.time()
            report.outages += 1
            await _measure_drain(writers, back, report)
            _progress(f"outage {report.outages}: back to all queued messages acked in {report.drain_seconds[-1]} s")
        await asyncio.sleep(between)
        stop.set()
        await asyncio.gather(*tasks)
        for writer in writers:
            settled = await writer.until(lambda w=writer: all(map(w.answered, w.sent)), SETTLE_TIMEOUT)
            if not settled:
                report.incidents.append(f"writer {writer.number}: not all settled; state {writer.client.state}")
        for writer in writers:
            await _check(writer, report)
    finally:
        for writer in writers:
            await writer.client.close()


def _progress(line: str) -> None:
    """One line on stderr for whoever watches a long run (stdout is for the figures)."""
    print(line, file=sys.stderr, flush=True)


async def _measure_drain(writers: list[Writer], back: float, report: OutageReport) -> None:
    """Wait until the messages sent before the database's return are answered; record how long it took."""
    queued = {writer: [cid for cid, (_, at) in writer.sent.items() if at < back] for writer in writers}
    for writer, waiting in queued.items():
        if not await writer.until(lambda w=writer, c=waiting: all(map(w.answered, c)), SETTLE_TIMEOUT):
            report.incidents.append(
                f"writer {writer.number}: messages of outage {report.outages} not answered {SETTLE_TIMEOUT} s after"
            )
    acks = [writer.acked_at.get(cid, back) for writer, waiting in queued.items() for cid in waiting]
    ends = [writer.ended_at.get(writer.reply(cid) or "", back) for writer, waiting in queued.items() for cid in waiting]
    report.drain_seconds.append(round(max(acks, default=back) - back, 2))
    report.answered_seconds.append(round(max(ends, default=back) - back, 2))


async def _check(writer: Writer, report: OutageReport) -> None:
    """Count what ``writer`` sent and was handed over, against its chat as stored."""
    client = writer.client
    report.messages += len(writer.sent)
    report.stuck += len(client.session.pending) + len(client.outbox.pending())
    for code in writer.refused.values():
        report.refused[code] = report.refused.get(code, 0) + 1
    for code, count in writer.deferred.items():
        report.deferred[code] = report.deferred.get(code, 0) + count
    for code, count in writer.answer_errors.items():
        report.answer_errors[code] = report.answer_errors.get(code, 0) + count
    stored = await _retried(lambda: client.get_whole_chat(writer.chat_id), client) if writer.chat_id else None
    messages = stored.messages if stored is not None else []
    stored_users = [message.client_message_id for message in messages if message.role == "user"]
    answers = {message.id: message for message in messages if message.role == "assistant"}
    report.left_streaming += sum(1 for message in answers.values() if message.status == "streaming")
    report.stored_twice += len(stored_users) - len(set(stored_users))
    sent_order = [cid for cid in writer.sent if cid in set(stored_users)]
    if [cid for cid in stored_users if cid in writer.sent] != sent_order:
        report.out_of_order += 1
        report.incidents.append(f"writer {writer.number}: messages stored out of the order sent")
    for client_message_id in writer.sent:
        acks = writer.acks.get(client_message_id, [])
        if client_message_id in writer.refused:
            continue
        if client_message_id not in stored_users:
            report.lost += 1
            report.incidents.append(f"writer {writer.number}: {client_message_id} neither refused nor stored")
        if not acks:
            continue
        report.acked += 1
        report.acked_twice += len(acks) - 1
        _check_answer(writer, acks[0].reply_id, answers, report)


def _check_answer(writer: Writer, reply: str, answers: dict, report: OutageReport) -> None:
    """An acknowledged message's answer: ended at its client, chunks once and in order, the text as stored."""
    end = writer.ends.get(reply)
    if reply not in writer.ended_at:
        report.unanswered += 1
        report.incidents.append(f"writer {writer.number}: answer {reply} never ended at its client")
        return
    stored = answers.get(reply)
    if end is None:  # known only from a reload
        report.reloaded += 1
        reason = stored.finish_reason if stored is not None else "gone"
        report.finish_reasons[reason] = report.finish_reasons.get(reason, 0) + 1
        return
    reason = end.finish_reason if isinstance(end, Complete) else "cancelled"
    report.finish_reasons[reason] = report.finish_reasons.get(reason, 0) + 1
    if reply in writer.reloaded:
        report.reloaded += 1
        return
    seqs = writer.seqs.get(reply, [])
    report.chunks += len(seqs)
    report.chunks_repeated += len(seqs) - len(set(seqs))
    report.chunks_lost += len(set(range(1, end.seq + 1)) - set(seqs))
    report.chunks_reordered += sum(1 for a, b in zip(seqs, seqs[1:]) if b < a)
    if stored is None or "".join(writer.texts.get(reply, [])) != stored.content:
        report.text_mismatches += 1
        report.incidents.append(f"writer {writer.number}: answer {reply} ({reason}) differs from the stored one")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--outages", type=int, default=5)
    parser.add_argument("--outage-seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between a writer's messages")
    parser.add_argument("--between", type=float, default=3.0, help="seconds of traffic before each outage")
    parser.add_argument("--words", type=int, default=20, help="words of a demo answer")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="demo pace between words")
    parser.add_argument("--lease", type=float, default=10.0, help="serve --lease (PostgreSQL)")
    parser.add_argument("--server-log", type=Path, help="write the server's log to this file")
    args = parser.parse_args()
    if args.backend == "sqlite" and os.geteuid() != 0:
        parser.error("--backend sqlite mounts a tmpfs of its own: run it as root")
    with tempfile.TemporaryDirectory() as workdir:
        report = asyncio.run(
            run(
                args.backend,
                args.outages,
                args.outage_seconds,
                Path(workdir),
                clients=args.clients,
                interval=args.interval,
                between=args.between,
                words=args.words,
                delay_ms=args.delay_ms,
                lease=args.lease,
                server_log=args.server_log,
            )  # fmt: skip
        )
    print(json.dumps({**asdict(report), "clean": report.clean}, indent=2))
    raise SystemExit(0 if report.clean else 1)


if __name__ == "__main__":
    main()
