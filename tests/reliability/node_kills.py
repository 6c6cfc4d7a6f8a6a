"""Kill server nodes with SIGKILL while a client streams through nginx, and count what was lost.

Three nodes share PostgreSQL and Redis behind nginx (``tests/support/cluster.py``,
``--lease 1``). One real client talks through nginx. Each round sends a
question in a new chat and, at a random point (before the ``ack``, in the
middle of the answer, or after it ended), kills a node: the one the client
is on (two rounds in three), or another. The killed node comes back under
the same ``--node-id`` either at once (it ends its own interrupted answers
as it starts) or only after the round's answer ended (another node ends it
when its lease runs out). The client reconnects through nginx to a live
node, resends its outbox and resumes. The figures are those of
``server_kills.py`` (lost, repeated, reordered, text mismatches, unacked,
missing, stuck), plus, right after each kill, what the client was told is
stored must be in PostgreSQL; at the end no reply may be left streaming.

Run by hand::

    python -m tests.reliability.node_kills --kills 60 --seed 7

CI runs 8 kills (``tests/reliability/test_node_kills.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import asyncpg

from tests.reliability.server_kills import ROUND_TIMEOUT, KillReport, Recorder, _check, harness_client, kill_point
from tests.support.cluster import Cluster
from tests.support.postgres import running_postgres
from tests.support.redis import running_redis


async def run(kills: int, seed: int, workdir: Path, database_url: str, broker_url: str, words: int = 120) -> KillReport:
    """Run ``kills`` rounds against a fresh cluster on ``database_url`` and ``broker_url``."""
    rng = random.Random(seed)
    report = KillReport()
    started = time.monotonic()
    args = ("--demo-words", str(words), "--demo-delay-ms", "3")
    recorder = Recorder()
    with Cluster(workdir / "cluster", database_url, broker_url, args=args) as cluster:
        client = harness_client(cluster.url, cluster.token("alice"), workdir, recorder, ping_interval=1.0)
        sent: list[str] = []
        try:
            await client.connect()
            await client.wait_connected(timeout=20)
            for round_number in range(kills):
                client_message_id = await client.send_message(None, f"Question {round_number} of run {seed}")
                sent.append(client_message_id)
                kill_at = kill_point(rng, words)
                await recorder.until(lambda: recorder.reached(client_message_id, kill_at), ROUND_TIMEOUT)
                on_it = cluster.nodes_with_clients()
                others = [index for index in range(len(cluster.nodes)) if index not in on_it]
                victim = rng.choice(on_it) if on_it and (rng.random() < 2 / 3 or not others) else rng.choice(others)
                node = cluster.nodes[victim]
                node.kill()
                report.kills += 1
                await _check_durable(database_url, recorder, report)
                back_at_once = rng.random() < 0.5
                if back_at_once:
                    node.start()

                if not await recorder.until(lambda: recorder.finished(client_message_id), ROUND_TIMEOUT):
                    report.stuck += 1
                    report.incidents.append(
                        f"round {round_number}: killed node {victim} at {kill_at}; "
                        f"{recorder.progress(client_message_id)}, state {client.state}"
                    )
                if not back_at_once:
                    node.start()
            stored = await _check(client, recorder, sent, report)
        finally:
            await client.close()
    report.missing, report.integrity = await _final_state(database_url, stored)
    report.seconds = round(time.monotonic() - started, 1)
    return report


async def _check_durable(database_url: str, recorder: Recorder, report: KillReport) -> None:
    """Right after a kill: every acknowledged message and every chunk the client got is in PostgreSQL."""
    # What the client had at the kill (it goes on receiving from live nodes meanwhile).
    acked = list(recorder.replies)
    received = {reply: list(zip(seqs, recorder.texts[reply])) for reply, seqs in recorder.seqs.items()}
    db = await asyncpg.connect(database_url)
    try:
        stored_users = {row[0] for row in await db.fetch("SELECT client_message_id FROM messages WHERE role = 'user'")}
        report.acked_missing_after_kill += sum(1 for cid in acked if cid not in stored_users)
        for reply, pieces in received.items():
            rows = await db.fetch("SELECT seq, content FROM chunks WHERE message_id = $1", reply)
            stored = {seq: content for seq, content in rows}
            report.chunks_missing_after_kill += sum(1 for seq, content in pieces if stored.get(seq) != content)
    finally:
        await db.close()
    report.durable_checks += 1


async def _final_state(database_url: str, acked: list[str]) -> tuple[int, str]:
    """Acknowledged user messages missing from PostgreSQL, and "ok" unless a reply was left streaming."""
    db = await asyncpg.connect(database_url)
    try:
        stored = {row[0] for row in await db.fetch("SELECT client_message_id FROM messages WHERE role = 'user'")}
        streaming = await db.fetchval("SELECT COUNT(*) FROM messages WHERE status = 'streaming'")
    finally:
        await db.close()
    missing = sum(1 for client_message_id in acked if client_message_id not in stored)
    return missing, "ok" if streaming == 0 else f"{streaming} replies left streaming"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--words", type=int, default=120)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir, running_postgres() as postgres, running_redis() as redis:
        database_url = postgres.new_database()
        report = asyncio.run(run(args.kills, args.seed, Path(workdir), database_url, redis.url, args.words))
    print(json.dumps({**asdict(report), "clean": report.clean}, indent=2))
    raise SystemExit(0 if report.clean else 1)


if __name__ == "__main__":
    main()
