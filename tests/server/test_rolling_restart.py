"""A rolling restart of three nodes under streaming clients cuts no answer that ends within the drain timeout.

Three ``mfu-chat serve`` processes on one PostgreSQL and one Redis behind
nginx, with ``--drain-timeout 20``; six real ``ChatClient``\\ s, one user
each, ask for one answer after another the whole time. The nodes get
SIGTERM one at a time, as docs/deploy.md's rolling restart does: the test
waits for the node to exit, starts it again on its port and waits for its
``/readyz`` before the next. Each stopping node moves its clients (4012)
while their answers stream; they reconnect through nginx to another node
and follow the rest of the answer there, still written by the stopping node.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from mfu_tui.client import Status
from mfu_tui.protocol import Ack, Chunk, Complete
from mfu_tui.server.providers.demo import demo_answer
from tests.server.test_health_metrics import get, until
from tests.support.cluster import Cluster, accepted_connections
from tests.support.quick_client import quick_client
from tests.support.recorder import Recorder, assert_delivered_once_in_order
from tests.support.server import ServerProcess

#: What every node is given: the deploy docs' drain timeout, far above an answer's length.
DRAIN_TIMEOUT = 20
#: Demo answers of about 2 s (80 words, 25 ms each): a few seconds, so that every stop finds some streaming.
ANSWER_WORDS = 80
NODE_ARGS = ("--demo-words", str(ANSWER_WORDS), "--demo-delay-ms", "25", "--drain-timeout", str(DRAIN_TIMEOUT))
CLIENTS = 6
#: A safety net for one node's stop (the drain, then the flush), well above the drain timeout.
STOP_WAIT = DRAIN_TIMEOUT + 20.0
#: A safety net for the wait on one event (an answer's end, a node's readiness).
WAIT = 30.0


class AskingClient:
    """A ``ChatClient`` asking for one answer after another until told to stop, recording on which connection.

    Args:
        url: The load balancer.
        token: Its own user's token.
        data_dir: Its outbox's directory.
        name: Put in its questions, so that every answer is its own.
    """

    def __init__(self, url: str, token: str, data_dir: Path, name: str) -> None:
        self.name = name
        self.client = quick_client(url, token, data_dir)
        self.events = Recorder(self.client)
        #: The questions asked, by ``clientMessageId``.
        self.questions: dict[str, str] = {}
        #: Their ``ack``\ s, by ``clientMessageId``.
        self.acks: dict[str, Ack] = {}
        #: The answers' ends, by reply id.
        self.ends: dict[str, Complete] = {}
        #: The connections (1 for the first) each answer's chunks arrived on, by reply id.
        self.connections: dict[str, set[int]] = {}
        self.client.on_message(self._seen)

    def _seen(self, frame: object) -> None:
        if isinstance(frame, Ack) and frame.client_message_id is not None:
            self.acks[frame.client_message_id] = frame
        elif isinstance(frame, Chunk):
            self.connections.setdefault(frame.message_id, set()).add(self.events.opens)
        elif isinstance(frame, Complete):
            self.ends[frame.message_id] = frame

    async def ask_until(self, stop: asyncio.Event) -> None:
        """Ask, wait for the whole answer, ask again; until ``stop`` is set (the answer running then ends first)."""
        while not stop.is_set():
            question = f"question {len(self.questions) + 1} of {self.name}"
            client_message_id = await self.client.send_message(None, question)
            self.questions[client_message_id] = question
            await self.events.wait_for(lambda: self.answered(client_message_id), WAIT)

    def answered(self, client_message_id: str) -> bool:
        """The answer to this message has ended at this client."""
        ack = self.acks.get(client_message_id)
        return ack is not None and ack.reply_id in self.ends

    def streaming(self) -> bool:
        """An answer has begun streaming to this client and has not ended."""
        return any(reply_id not in self.ends for reply_id in self.connections)


async def restart(node: ServerProcess) -> tuple[int, float]:
    """SIGTERM, wait for the exit, start again on the same port, wait for ``/readyz``.

    Returns:
        The exit status, and the seconds from SIGTERM to the exit (printed, not checked).
    """
    stopping_since = time.monotonic()
    await asyncio.to_thread(node.terminate)
    status = await asyncio.to_thread(node.wait, STOP_WAIT)
    stop_seconds = time.monotonic() - stopping_since
    await asyncio.to_thread(node.start)
    await until(lambda: get(f"http://127.0.0.1:{node.port}/readyz"), lambda answer: answer[0] == 200, WAIT)
    return status, stop_seconds


def interruptions(cluster: Cluster) -> str:
    """What the nodes logged of answers ended as interrupted, and why (for a failure's message)."""
    return "".join(
        f"node-{index}: {line}"
        for index, node in enumerate(cluster.nodes)
        for line in node.stderr_lines
        if any(word in line for word in ("interrupt", "lease", "deadlock"))
    )


async def test_a_rolling_restart_cuts_no_answer_and_keeps_every_client(tmp_path, postgres_url, redis_url):
    with Cluster(tmp_path, postgres_url, redis_url, args=NODE_ARGS) as cluster:
        askers = [
            AskingClient(cluster.url, cluster.token(f"user-{i}"), tmp_path / f"client-{i}", f"user-{i}")
            for i in range(CLIENTS)
        ]
        stop = asyncio.Event()
        asking: list[asyncio.Task[None]] = []
        try:
            for asker in askers:
                await asker.client.connect()
                await asker.events.wait_status(Status.CONNECTED)
            spread = cluster.nodes_with_clients()
            asking = [asyncio.create_task(asker.ask_until(stop)) for asker in askers]
            exits, stop_seconds, moved = [], [], []
            for node in cluster.nodes:
                # Every client is in the middle of an answer as the node is told to stop.
                for asker in askers:
                    await asker.events.wait_for(asker.streaming, WAIT)
                assert node.process is not None
                moved.append(accepted_connections(node.process.pid, node.port))
                status, seconds = await restart(node)
                exits.append(status)
                stop_seconds.append(f"{seconds:.1f}")
            stop.set()
            await asyncio.gather(*asking)
            for asker in askers:
                await asker.events.wait_status(Status.CONNECTED)
        finally:
            stop.set()
            for task in asking:
                task.cancel()
            await asyncio.gather(*asking, return_exceptions=True)
            for asker in askers:
                await asker.client.close()
    assert spread == [0, 1, 2] and exits == [0, 0, 0]
    kept_streaming = 0
    for asker in askers:
        assert asker.events.opens >= 2  # its node was restarted under it at least once: it moved
        assert not asker.events.errors
        for client_message_id, question in asker.questions.items():
            reply_id = asker.acks[client_message_id].reply_id
            assert asker.ends[reply_id].finish_reason == "stop", interruptions(cluster)
            assert assert_delivered_once_in_order(asker.events, reply_id) == demo_answer(question, ANSWER_WORDS)
            # Chunks on two connections: the answer went on streaming to the client after its move.
            kept_streaming += len(asker.connections[reply_id]) > 1
    answers = sum(len(asker.questions) for asker in askers)
    print(
        f"\n{answers} answers, 0 cut; per stop: {moved} clients moved, {stop_seconds} s from SIGTERM to the exit; "
        f"{kept_streaming} answers kept streaming to their client after it moved"
    )
    assert sum(moved) >= CLIENTS // len(cluster.nodes)  # at least the first node's own clients moved
    assert kept_streaming >= 1  # and an answer that streamed to one of them went on after its move
