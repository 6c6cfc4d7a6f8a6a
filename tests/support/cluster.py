"""Several server nodes on one PostgreSQL and one Redis, behind nginx: the deployment of issue 9, for real.

``Cluster`` starts N ``mfu-chat serve`` processes (``ServerProcess``) that
share one JWT secret, each with ``--db <postgres> --broker <redis> --node-id
node-<i> --lease <seconds>``, then nginx in front of them. Clients connect
through the load balancer (``cluster.url``) or to one node directly
(``cluster.nodes[i].url``) when a test must know where it is. Everything is
stopped at the end, even after a failure::

    with Cluster(workdir, postgres_url, redis_url, nodes=3) as cluster:
        token = cluster.token("alice")
        ...                      # cluster.url, cluster.nodes[0].kill(), ...

The database and the broker are given, not started here: tests take them from
the ``postgres_url`` and ``redis_url`` fixtures, benches from
``running_redis`` and ``PostgresServer``. This module needs no pytest.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from mfu_tui.server.auth import mint_token
from tests.support.nginx import Nginx, find_nginx
from tests.support.server import ServerProcess, new_secret

#: Demo answers slow enough for a test to act while one streams, and over in about 1.2 s.
DEMO_WORDS = 60
DEMO_DELAY_MS = 20
DEMO_ARGS = ("--demo-words", str(DEMO_WORDS), "--demo-delay-ms", str(DEMO_DELAY_MS))

#: A short lease, so that a killed node's answers end within about a second.
TEST_LEASE = 1.0


class Cluster:
    """N server nodes sharing a database, a broker and a secret, with nginx in front.

    Args:
        workdir: A directory for the nodes' and nginx's files.
        database_url: ``postgresql://`` URL every node stores into.
        broker_url: ``redis://`` URL every node fans out through.
        nodes: How many nodes.
        lease: ``--lease`` of every node, in seconds.
        args: More ``mfu-chat serve`` flags for every node (the demo answer's size by default).
    """

    def __init__(
        self,
        workdir: Path,
        database_url: str,
        broker_url: str,
        *,
        nodes: int = 3,
        lease: float = TEST_LEASE,
        args: Sequence[str] = DEMO_ARGS,
    ) -> None:
        self.secret = new_secret()
        self.nodes: list[ServerProcess] = []
        for index in range(nodes):
            node_args = ("--broker", broker_url, "--node-id", f"node-{index}", "--lease", str(lease), *args)
            node = ServerProcess(workdir / f"node-{index}", *node_args, secret=self.secret)
            node.db_path = database_url  # passed as --db
            self.nodes.append(node)
        self.nginx = Nginx(find_nginx(), [], workdir / "nginx")

    @property
    def url(self) -> str:
        """The WebSocket URL through the load balancer."""
        return self.nginx.url

    def token(self, user: str = "alice", ttl: float = 3600) -> str:
        """A token every node accepts."""
        return mint_token(self.secret, user, ttl)

    def start(self) -> None:
        """Start the nodes together (they migrate the database under a lock), then nginx in front."""
        try:
            with concurrent.futures.ThreadPoolExecutor(len(self.nodes)) as pool:
                for started in [pool.submit(node.start) for node in self.nodes]:
                    started.result()
            self.nginx.upstream_ports = [node.port for node in self.nodes]
            self.nginx.workdir.mkdir(parents=True, exist_ok=True)
            self.nginx.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop nginx and kill every node still running."""
        self.nginx.stop()
        for node in self.nodes:
            if node.process is not None:
                node.kill()

    def nodes_with_clients(self) -> list[int]:
        """The indexes of the running nodes that hold an open client connection right now.

        What a test asks after connecting through nginx, to learn which node
        it landed on (with no other connection open to the nodes).
        """
        return [
            index
            for index, node in enumerate(self.nodes)
            if node.process is not None
            and node.process.poll() is None
            and accepted_connections(node.process.pid, node.port)
        ]

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def accepted_connections(pid: int, port: int) -> int:
    """How many established TCP connections process ``pid`` accepted on ``port`` (IPv4, from ``/proc``).

    Matching the sockets' inodes to the process matters: once a node is
    gone, the kernel may hand its port to any outgoing connection.
    """
    inodes = set()
    for descriptor in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            target = os.readlink(f"/proc/{pid}/fd/{descriptor}")
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    established = "01"
    count = 0
    with open("/proc/net/tcp") as table:
        next(table)  # the header
        for line in table:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            count += fields[3] == established and local_port == port and fields[9] in inodes
    return count
