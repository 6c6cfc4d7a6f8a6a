"""Network faults through the loopback fault proxy while the client sends and streams.

Each round sends a question (in a new chat, or a follow-up in the last one)
through ``tests/support/proxy.py``
and, either right after the send (before the ``ack``) or after a random
number of chunks, breaks the network: a reset (RST to open and new
connections) or a blackhole (nothing forwarded, sockets left open; half of
them also lose what was sent meanwhile) that lasts a random time up to ``--max-outage`` seconds; sometimes another
message is written while the network is down. Then the network comes back
and the round waits for the answers to end. Figures:

- lost / repeated / reordered chunks, text mismatches, unacked and
  duplicated user messages (targets 0), as in ``server_kills``;
- for blackholes longer than the heartbeat bound, the time the client took
  to notice (leave ``CONNECTED``), against ``ping_interval + ping_timeout``;
- time back to green: from the end of the fault to ``CONNECTED`` again.

Run by hand::

    python -m tests.reliability.network_faults --rounds 40 --max-outage 30

CI runs a short version (``tests/reliability/test_network_faults.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sqlite3
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mfu_tui.client import Backoff, ChatClient, ConnectionState, Status
from tests.reliability.server_kills import ROUND_TIMEOUT, Recorder, _check
from tests.support.figures import percentiles
from tests.support.proxy import FaultProxy
from tests.support.server import running_server


@dataclass
class FaultReport:
    """Figures of one run."""

    rounds: int = 0
    follow_ups: int = 0
    """Rounds that asked in the previous round's chat rather than a new one."""
    sent_during_faults: int = 0
    """Extra messages written while the network was down (they wait in the outbox)."""
    resets: int = 0
    blackholes: int = 0
    lossy_blackholes: int = 0
    """Blackholes that also lost what was sent during them (the proxy's ``drop``)."""
    answers: int = 0
    chunks: int = 0
    lost: int = 0
    repeated: int = 0
    reordered: int = 0
    text_mismatches: int = 0
    unacked: int = 0
    missing: int = 0
    duplicated_messages: int = 0
    stuck: int = 0
    heartbeat_bound: float = 0.0
    """``ping_interval + ping_timeout``: a blackhole must be noticed within it."""
    blackholes_noticed: int = 0
    blackholes_expected_noticed: int = 0
    """Blackholes that lasted over twice the bound (shorter ones may go unnoticed, rightly;
    the margin keeps a loaded machine's scheduling delays from failing the run)."""
    notice_seconds: list[float] = field(default_factory=list)
    back_to_green_seconds: list[float] = field(default_factory=list)
    finish_reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    incidents: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return (
            self.lost == self.repeated == self.reordered == self.text_mismatches == 0
            and self.unacked == self.missing == self.duplicated_messages == self.stuck == 0
            and self.blackholes_noticed >= self.blackholes_expected_noticed
        )

    def summary(self) -> dict[str, object]:
        """The figures with percentiles instead of the raw lists."""
        figures = asdict(self)
        for name in ("notice_seconds", "back_to_green_seconds"):
            values = sorted(figures.pop(name))
            figures[name.replace("_seconds", "")] = percentiles(values)
        figures["clean"] = self.clean
        return figures


class StateLog:
    """When the client's connection state changed, on the event loop's clock."""

    def __init__(self, client: ChatClient) -> None:
        self.changes: list[tuple[float, Status]] = []
        self.changed = asyncio.Event()
        client.on_state(self._add)

    def _add(self, state: ConnectionState) -> None:
        self.changes.append((asyncio.get_running_loop().time(), state.status))
        self.changed.set()

    def first(self, status: Status, after: float, *, negate: bool = False) -> float | None:
        """The first time at or after ``after`` the state was (or, with ``negate``, left) ``status``."""
        for when, seen in self.changes:
            if when >= after and ((seen is not status) if negate else (seen is status)):
                return when
        return None


async def run(
    rounds: int,
    seed: int,
    workdir: Path,
    *,
    max_outage: float = 30.0,
    words: int = 300,
    delay_ms: float = 3.0,
    ping_interval: float = 0.5,
    ping_timeout: float = 1.0,
) -> FaultReport:
    """``rounds`` faults during sends and streams; returns the figures."""
    rng = random.Random(seed)
    # Follow-ups and sends during a fault draw from their own generator, so
    # that a seed gives the same faults with or without them.
    traffic = random.Random(seed + 1)
    report = FaultReport(heartbeat_bound=ping_interval + ping_timeout)
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    # Long outages would exceed the server's own heartbeat and send-queue limits:
    # keep them out of the way, the client is under test here.
    limits = {"ping_interval": None, "messages_per_minute": 6000, "message_burst": 1000}
    async with (
        running_server(workdir, demo_words=words, demo_delay_ms=delay_ms, **limits) as srv,
        FaultProxy(srv.port) as proxy,
    ):
        recorder = Recorder()
        client = ChatClient(
            proxy.url("/ws"),
            srv.token("alice"),
            data_dir=workdir / "client",
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            open_timeout=2.0,
            request_timeout=30.0,
            backoff=Backoff(base=0.1, cap=1.0),
        )
        client.on_message(recorder)
        states = StateLog(client)
        sent: list[str] = []
        try:
            await client.connect()
            await client.wait_connected(timeout=20)
            previous_chat: str | None = None
            for round_number in range(rounds):
                report.rounds += 1
                # A follow-up in the last chat now and then, else a new chat.
                chat = previous_chat if traffic.random() < 0.4 else None
                report.follow_ups += chat is not None
                cid = await client.send_message(chat, f"Round {round_number}: stream through a bad network")
                sent.append(cid)
                round_cids = [cid]
                if rng.random() < 0.5:  # while streaming, else right after the send
                    at = rng.randint(1, words // 2)
                    await recorder.until(lambda cid=cid, at=at: recorder.reached(cid, at), ROUND_TIMEOUT)
                outage = rng.uniform(0, max_outage)
                fault_start = loop.time()
                blackhole = rng.random() < 0.5
                if blackhole and traffic.random() < 0.5:
                    # A silent network that also loses what was sent meanwhile.
                    report.blackholes += 1
                    report.lossy_blackholes += 1
                    proxy.drop()
                elif blackhole:
                    report.blackholes += 1
                    proxy.blackhole()
                else:
                    report.resets += 1
                    proxy.reset()
                if traffic.random() < 0.3:  # a message written while the network is down
                    report.sent_during_faults += 1
                    offline = await client.send_message(None, f"Round {round_number}: sent during the fault")
                    sent.append(offline)
                    round_cids.append(offline)
                await asyncio.sleep(outage)  # the fault's duration is the point here, not a synchronisation
                proxy.pass_through()
                fault_end = loop.time()
                if blackhole:
                    noticed = states.first(Status.CONNECTED, fault_start, negate=True)
                    if outage > 2 * report.heartbeat_bound:
                        report.blackholes_expected_noticed += 1
                    if noticed is not None and noticed <= fault_end:
                        report.blackholes_noticed += 1
                        report.notice_seconds.append(noticed - fault_start)
                if states.first(Status.CONNECTED, fault_start, negate=True) is not None:
                    await client.wait_connected(timeout=ROUND_TIMEOUT)
                    green = states.first(Status.CONNECTED, fault_end)
                    if green is not None:
                        report.back_to_green_seconds.append(green - fault_end)

                def finished(cids: list[str] = round_cids) -> bool:
                    replies = [recorder.replies.get(c) for c in cids]
                    return all(r is not None and r in recorder.ends for r in replies)

                if not await recorder.until(finished, ROUND_TIMEOUT):
                    report.stuck += 1
                    report.incidents.append(f"round {round_number}: no end; state {client.state}")
                else:
                    previous_chat = recorder.ends[recorder.replies[cid]].chat_id
            await _check(client, recorder, sent, report)
        finally:
            await client.close()
    report.missing, report.duplicated_messages = _stored(srv.db_path, [c for c in sent if c in recorder.replies])
    report.seconds = round(time.monotonic() - started, 1)
    return report


def _stored(db_path: Path, acked: list[str]) -> tuple[int, int]:
    """(acknowledged messages not stored, messages stored more than once)."""
    with contextlib.closing(sqlite3.connect(db_path)) as connection:
        counts = dict(
            connection.execute("SELECT client_message_id, COUNT(*) FROM messages WHERE role = 'user' GROUP BY 1")
        )
    return sum(1 for cid in acked if cid not in counts), sum(n - 1 for n in counts.values() if n > 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--max-outage", type=float, default=30.0, help="longest fault, seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ping-interval", type=float, default=0.5)
    parser.add_argument("--ping-timeout", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        report = asyncio.run(
            run(
                args.rounds,
                args.seed,
                Path(workdir),
                max_outage=args.max_outage,
                ping_interval=args.ping_interval,
                ping_timeout=args.ping_timeout,
            )
        )
    print(json.dumps(report.summary(), indent=2))
    raise SystemExit(0 if report.clean else 1)


if __name__ == "__main__":
    main()
