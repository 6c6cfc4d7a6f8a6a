"""Kill the server with SIGKILL at random moments while it streams, and count what was lost.

Each round sends a question in a new chat and kills the server at a random
point: before the ``ack``, in the middle of the answer, or after it ended.
The server restarts on the same database and port; the real client
reconnects, resends its outbox and resumes. At the end every message is
checked against the database:

- lost / repeated / reordered: chunks the client handed over, compared with
  ``1..n`` for each answer (target 0, 0, 0);
- text mismatches: the text the client built against the stored text;
- unacked: user messages sent but never acknowledged (target 0);
- missing: acknowledged user messages not in the database (target 0);
- integrity: SQLite's ``PRAGMA integrity_check``.

After each kill, before the restart, the dead server's database is opened
and checked (issue 7, crash safety of data): every user message the client
saw acknowledged and every chunk the client received must be in it, and the
integrity check must pass (``durable_checks``, ``acked_missing_after_kill``,
``chunks_missing_after_kill``, ``integrity_failures``; targets 0).

Run by hand::

    python -m tests.reliability.server_kills --kills 200 --seed 7
    python -m tests.reliability.server_kills --kills 50 --workers 2   # the supervisor of two workers

CI runs 20 kills (``tests/reliability/test_server_kills.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sqlite3
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mfu_tui.client import Backoff, ChatClient, ClientError
from mfu_tui.protocol import Ack, Cancelled, Chunk, Complete
from tests.support.server import ServerProcess

#: Seconds one round may take before it counts as stuck.
ROUND_TIMEOUT = 60.0


@dataclass
class KillReport:
    """Figures of one run."""

    kills: int = 0
    answers: int = 0
    chunks: int = 0
    lost: int = 0
    repeated: int = 0
    reordered: int = 0
    text_mismatches: int = 0
    unacked: int = 0
    missing: int = 0
    stuck: int = 0
    integrity: str = ""
    durable_checks: int = 0
    acked_missing_after_kill: int = 0
    chunks_missing_after_kill: int = 0
    integrity_failures: int = 0
    seconds: float = 0.0
    finish_reasons: dict[str, int] = field(default_factory=dict)
    incidents: list[str] = field(default_factory=list)
    """What went wrong, one line each, to start the debugging from."""

    @property
    def clean(self) -> bool:
        """True when nothing was lost, doubled, reordered or left unfinished."""
        return (
            self.lost == self.repeated == self.reordered == self.text_mismatches == 0
            and self.unacked == self.missing == self.stuck == 0
            and self.integrity == "ok"
            and self.acked_missing_after_kill == self.chunks_missing_after_kill == self.integrity_failures == 0
        )


class Recorder:
    """What the client hands over, per assistant message."""

    def __init__(self) -> None:
        self.seqs: dict[str, list[int]] = {}
        self.texts: dict[str, list[str]] = {}
        self.replies: dict[str, str] = {}  # clientMessageId -> replyId
        self.ends: dict[str, Complete | Cancelled] = {}
        self.changed = asyncio.Event()

    def __call__(self, frame: object) -> None:
        if isinstance(frame, Ack):
            self.replies[frame.client_message_id] = frame.reply_id
        elif isinstance(frame, Chunk):
            self.seqs.setdefault(frame.message_id, []).append(frame.seq)
            self.texts.setdefault(frame.message_id, []).append(frame.content)
        elif isinstance(frame, (Complete, Cancelled)):
            self.ends[frame.message_id] = frame
        else:
            return
        self.changed.set()

    def reached(self, client_message_id: str, kill_at: int) -> bool:
        """True once the answer to ``client_message_id`` is at its kill point (see ``kill_point``), or ended."""
        reply = self.replies.get(client_message_id)
        if reply is None:
            return kill_at == 0
        return reply in self.ends or self.words(reply) >= kill_at

    def words(self, reply: str) -> int:
        """Words of ``reply`` received: a model's pieces, which the server joins into fewer chunks when fast."""
        return len("".join(self.texts.get(reply, ())).split())

    def finished(self, client_message_id: str) -> bool:
        """True once the answer to ``client_message_id`` has ended."""
        reply = self.replies.get(client_message_id)
        return reply is not None and reply in self.ends

    def progress(self, client_message_id: str) -> str:
        """Where the answer to ``client_message_id`` stands, for an incident line."""
        reply = self.replies.get(client_message_id)
        return f"reply {reply}, {len(self.seqs.get(reply, ()))} chunks"  # type: ignore[arg-type]

    async def until(self, condition, timeout: float) -> bool:
        """Wait until ``condition()`` holds (re-checked on each recorded frame)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():
            self.changed.clear()
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except asyncio.TimeoutError:
                return condition()
        return True


def harness_client(url: str, token: str, workdir: Path, recorder: Recorder, ping_interval: float) -> ChatClient:
    """The real client of a kill harness, handing every frame to ``recorder``.

    Quick retries: the harness measures loss, not backoff.
    """
    client = ChatClient(
        url,
        token,
        data_dir=workdir / "client",
        backoff=Backoff(base=0.05, cap=0.3),
        ping_interval=ping_interval,
        ping_timeout=2.0,
    )
    client.on_message(recorder)
    return client


#: The kill point of a round that kills once the answer has ended.
AFTER_THE_END = sys.maxsize


def kill_point(rng: random.Random, words: int) -> int:
    """Where a round kills: before the ``ack`` (0), at a word mid-answer, or after the end."""
    return rng.choice([0, rng.randint(1, words // 2), rng.randint(1, words // 2), AFTER_THE_END])


async def run(
    kills: int, seed: int, workdir: Path, words: int = 200, delay_ms: float = 2.0, workers: int = 1
) -> KillReport:
    """Run ``kills`` rounds and return the figures (``workers``: ``serve --workers``, the supervisor killed)."""
    rng = random.Random(seed)
    report = KillReport()
    started = time.monotonic()
    server = ServerProcess(
        workdir, "--demo-words", str(words), "--demo-delay-ms", str(delay_ms), "--workers", str(workers)
    )
    server.start()
    recorder = Recorder()
    client = harness_client(server.url, server.token("alice"), workdir, recorder, ping_interval=2.0)
    sent: list[str] = []
    try:
        await client.connect()
        await client.wait_connected(timeout=20)
        for round_number in range(kills):
            client_message_id = await client.send_message(None, f"Question {round_number}: tell me about seq {seed}")
            sent.append(client_message_id)
            kill_at = kill_point(rng, words)
            await recorder.until(lambda: recorder.reached(client_message_id, kill_at), ROUND_TIMEOUT)
            server.kill()
            report.kills += 1
            _check_durable(server.db_path, recorder, report)
            server.start()
            if not await recorder.until(lambda: recorder.finished(client_message_id), ROUND_TIMEOUT):
                report.stuck += 1
                report.incidents.append(
                    f"round {round_number}: killed at {kill_at}; "
                    f"{recorder.progress(client_message_id)}, state {client.state}"
                )
        # Let the last answers finish, then compare with the database.
        stored = await _check(client, recorder, sent, report)
    finally:
        await client.close()
        server.kill()
    report.integrity = _integrity(server.db_path)
    report.missing = _missing(server.db_path, stored)
    report.seconds = round(time.monotonic() - started, 1)
    return report


async def _check(client: ChatClient, recorder: Recorder, sent: list[str], report: KillReport) -> list[str]:
    """Compare every answer the client built with the stored one; returns the acked ids."""
    acked = [cid for cid in sent if cid in recorder.replies]
    report.unacked = len(sent) - len(acked)
    page = await _retried(lambda: client.list_chats(limit=200), client)
    chats = list(page.chats)
    while page.next_cursor:
        cursor = page.next_cursor
        page = await _retried(lambda: client.list_chats(limit=200, before=cursor), client)
        chats.extend(page.chats)
    stored_text: dict[str, str] = {}
    for chat in chats:
        detail = await _retried(lambda: client.get_chat(chat.id), client)
        for message in detail.messages:
            if message.role == "assistant":
                stored_text[message.id] = message.content
    for client_message_id in acked:
        reply = recorder.replies[client_message_id]
        seqs = recorder.seqs.get(reply, [])
        report.answers += 1
        report.chunks += len(seqs)
        end = recorder.ends.get(reply)
        if end is not None:
            reason = end.finish_reason if isinstance(end, Complete) else "cancelled"
            report.finish_reasons[reason] = report.finish_reasons.get(reason, 0) + 1
        expected = end.seq if end is not None else max(seqs, default=0)
        report.repeated += len(seqs) - len(set(seqs))
        report.lost += len(set(range(1, expected + 1)) - set(seqs))
        report.reordered += sum(1 for a, b in zip(seqs, seqs[1:]) if b < a)
        if "".join(recorder.texts.get(reply, [])) != stored_text.get(reply):
            report.text_mismatches += 1
    return acked


async def _retried(request, client: ChatClient, attempts: int = 5):
    """A request, asked again if the connection dropped under it (as a UI would)."""
    for attempt in range(attempts):
        try:
            return await request()
        except ClientError:
            if attempt == attempts - 1:
                raise
            await client.wait_connected(timeout=20)


def _check_durable(db_path: Path, recorder: Recorder, report: KillReport) -> None:
    """Right after a kill: what the client was told is stored must be in the database."""
    with contextlib.closing(sqlite3.connect(db_path)) as connection:
        if connection.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            report.integrity_failures += 1
        stored_users = {
            row[0] for row in connection.execute("SELECT client_message_id FROM messages WHERE role = 'user'")
        }
        report.acked_missing_after_kill += sum(1 for cid in recorder.replies if cid not in stored_users)
        for reply, seqs in recorder.seqs.items():
            stored = dict(connection.execute("SELECT seq, content FROM chunks WHERE message_id = ?", (reply,)))
            for seq, content in zip(seqs, recorder.texts[reply]):
                if stored.get(seq) != content:
                    report.chunks_missing_after_kill += 1
    report.durable_checks += 1


def _integrity(db_path: Path) -> str:
    with sqlite3.connect(db_path) as connection:
        return connection.execute("PRAGMA integrity_check").fetchone()[0]


def _missing(db_path: Path, acked: list[str]) -> int:
    """Acknowledged user messages that are not in the database."""
    with sqlite3.connect(db_path) as connection:
        stored = {row[0] for row in connection.execute("SELECT client_message_id FROM messages WHERE role = 'user'")}
    return sum(1 for client_message_id in acked if client_message_id not in stored)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--words", type=int, default=200)
    parser.add_argument("--delay-ms", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=1, help="serve --workers N: the supervisor is killed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        report = asyncio.run(run(args.kills, args.seed, Path(workdir), args.words, args.delay_ms, args.workers))
    print(json.dumps({**asdict(report), "clean": report.clean}, indent=2))
    raise SystemExit(0 if report.clean else 1)


if __name__ == "__main__":
    main()
