"""Failover on a lost Redis link: the time from the link's loss to the client served by another node.

Two nodes on one PostgreSQL and one Redis, nginx in front, each node reaching
Redis through its own ``FaultProxy``. The real ``ChatClient`` (its default
backoff, as a user runs it) connects through nginx; the bench cuts the link of
the node it landed on, either refused (every connection reset: Redis down or
unreachable) or silent (no answer at all: the node notices with its
heartbeat), and times, from the cut:

- ``closed``: the client's connection was closed by its node (1013);
- ``reconnected``: the client is connected again, through nginx, to the other node;
- ``served``: a message sent then was acknowledged and answered (``complete``).

Run: ``python -m bench.broker_failover --rounds 3 [--heartbeat 5]``; prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from mfu_tui.client import ChatClient, Status
from mfu_tui.protocol import Ack, Complete
from tests.support.nginx import Nginx, find_nginx
from tests.support.postgres import running_postgres
from tests.support.proxy import FaultProxy
from tests.support.recorder import Recorder
from tests.support.redis import running_redis
from tests.support.server import new_secret, running_server

#: Safety net for each wait of a round.
WAIT = 60.0


async def one_round(
    workdir: Path, postgres_url: str, redis_port: int, fault: str, heartbeat: float
) -> dict[str, float]:
    """Cut the client's node's link once (``fault``: ``refused`` or ``silent``); the times in seconds."""
    common: dict[str, Any] = {"db_path": postgres_url, "secret": new_secret(), "broker_heartbeat": heartbeat}
    async with FaultProxy(redis_port) as link_a, FaultProxy(redis_port) as link_b:
        links = {"node-a": link_a, "node-b": link_b}
        async with (
            running_server(workdir, node_id="node-a", broker=f"redis://127.0.0.1:{link_a.port}/0", **common) as a,
            running_server(workdir, node_id="node-b", broker=f"redis://127.0.0.1:{link_b.port}/0", **common) as b,
        ):
            # Started in a thread: its start waits for /healthz through nginx, served by this loop.
            nginx = Nginx(find_nginx(), [a.port, b.port], workdir / "nginx")
            (workdir / "nginx").mkdir()
            await asyncio.to_thread(nginx.start)
            try:
                client = ChatClient(nginx.url, a.token(), data_dir=workdir / "client")
                events = Recorder(client)
                try:
                    await client.connect()
                    await events.wait_status(Status.CONNECTED)
                    (landed,) = [node for node in (a, b) if node.server.hub.connections("alice")]
                    cut = time.monotonic()
                    link = links[landed.server.node_id]
                    if fault == "refused":
                        link.reset()
                    else:
                        link.blackhole()
                    await events.wait_for(lambda: client.state.status is not Status.CONNECTED, WAIT)
                    closed = time.monotonic()
                    await events.wait_for(lambda: events.opens == 2 and client.state.status is Status.CONNECTED, WAIT)
                    reconnected = time.monotonic()
                    (now_on,) = [node for node in (a, b) if node.server.hub.connections("alice")]
                    assert now_on is not landed
                    await client.send_message(None, "still there?")
                    await events.wait_for(lambda: events.of_type(Ack) and events.of_type(Complete), WAIT)
                    served = time.monotonic()
                finally:
                    await client.close()
                    for each in links.values():
                        each.pass_through()
            finally:
                await asyncio.to_thread(nginx.stop)
    return {"closed": closed - cut, "reconnected": reconnected - cut, "served": served - cut}


async def run(rounds: int, heartbeat: float) -> dict[str, Any]:
    report: dict[str, Any] = {"heartbeat_seconds": heartbeat, "rounds": rounds}
    with running_postgres() as postgres, running_redis() as redis:
        for fault in ("refused", "silent"):
            times = []
            for _ in range(rounds):
                with tempfile.TemporaryDirectory() as workdir:
                    database = postgres.new_database()
                    times.append(await one_round(Path(workdir), database, redis.port, fault, heartbeat))
            report[fault] = {
                what: {
                    "median": round(statistics.median(t[what] for t in times), 3),
                    "max": round(max(t[what] for t in times), 3),
                }
                for what in ("closed", "reconnected", "served")
            }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="cuts of each kind (default 3)")
    parser.add_argument("--heartbeat", type=float, default=5.0, help="--broker-heartbeat of the nodes (default 5 s)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.rounds, args.heartbeat)), indent=2))


if __name__ == "__main__":
    main()
