"""``mfu-chat serve --workers 2`` on the SQLite default, for real: two processes on one port, one server.

The supervisor runs as a subprocess on a free loopback port; clients are
real WebSocket connections, put on a given worker by opening connections
until the kernel hands one to it (``SO_REUSEPORT`` spreads them). Every
guarantee of the several-node mode is checked across the workers: a user's
frames reach the user's connections on the other worker, an answer streams
to a follower there, a worker killed with SIGKILL is started again and ends
its answer (followers elsewhere get the stored partial, resumable anywhere),
SIGTERM drains them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from mfu_tui.protocol import ChatUpdated, Chunk, Complete, ListModels, Result, Resume
from mfu_tui.server.providers.demo import demo_answer
from mfu_tui.server.workers import DIRECTORY_PREFIX, SUPERVISOR_LOCK
from tests.server.fake_openai import FakeOpenAI
from tests.server.peer import Peer, peer, text_of
from tests.server.test_cli import run_cli
from tests.server.test_generation import get_chat, send_message
from tests.support.cluster import DEMO_ARGS, DEMO_WORDS
from tests.support.server import ServerProcess, http_get, new_secret
from tests.support.workers import holder_of, worker_pids

#: Connections a test opens at most to land on a given worker (each lands on one of two about half the time).
ATTEMPTS = 60
#: Safety net for waits on frames and log lines.
WAIT = 30.0


@contextlib.contextmanager
def running_workers(tmp_path, *args: str) -> Iterator[ServerProcess]:
    """``mfu-chat serve --workers 2`` (JSON logs, the demo answers of ``DEMO_ARGS``) with ``args``."""
    server = ServerProcess(tmp_path, "--workers", "2", "--log-format", "json", *DEMO_ARGS, *args)
    server.start()
    try:
        yield server
    finally:
        server.terminate()  # a graceful stop: the workers are gone when it returns
        server.wait(WAIT)


@pytest.fixture
def workers(tmp_path) -> Iterator[ServerProcess]:
    with running_workers(tmp_path) as server:
        yield server


@contextlib.asynccontextmanager
async def peer_on(server: ServerProcess, worker: int, user: str = "alice") -> AsyncIterator[Peer]:
    """A connection of ``user`` that the kernel gave to the worker of pid ``worker``."""
    for _ in range(ATTEMPTS):
        async with peer(server.url, server.token(user)) as client:
            if holder_of(server, client.ws.local_address[1]) == worker:
                yield client
                return
    raise AssertionError(f"no connection landed on worker {worker} in {ATTEMPTS} attempts")


def log_events(server: ServerProcess, event: str) -> list[dict[str, object]]:
    """The JSON log lines of ``event`` written so far, by the supervisor and its workers."""
    lines = [json.loads(line) for line in server.stderr_lines if line.startswith("{")]
    return [line for line in lines if line.get("event") == event]


def log_says(server: ServerProcess, words: str) -> list[str]:
    return [line for line in server.stderr_lines if words in line]


async def until(condition: Callable[[], object], timeout: float = WAIT) -> None:
    """Check ``condition`` again (every 0.05 s: it reads a log or ``/proc``) until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def test_both_workers_answer_on_the_one_port_each_a_node_of_its_own(workers):
    seen = set()
    for _ in range(ATTEMPTS):  # every request is a new connection, spread by the kernel
        status, body = http_get(f"http://127.0.0.1:{workers.port}/version")
        assert status == 200
        seen.add(json.loads(body)["node"])
        if len(seen) == 2:
            break
    assert seen == {f"{socket.gethostname()}:{workers.port}/worker-{i}" for i in (0, 1)}
    assert len(worker_pids(workers)) == 2
    starts = log_events(workers, "start")
    assert sorted(start["node"] for start in starts) == sorted(seen)
    assert {start["broker"] for start in starts} == {"none: the 2 workers linked over Unix sockets"}


async def test_an_answer_and_a_users_events_cross_to_the_other_worker(workers):
    await answer_crosses_to_the_other_worker(workers)


async def test_on_postgresql_and_redis_the_workers_are_nodes_linked_by_redis(tmp_path, postgres_url, redis_url):
    server = ServerProcess(
        tmp_path, "--workers", "2", "--db", postgres_url, "--broker", redis_url, "--log-format", "json", *DEMO_ARGS
    )
    server.start()
    try:
        await answer_crosses_to_the_other_worker(server)
        starts = log_events(server, "start")
    finally:
        server.terminate()
        assert await asyncio.to_thread(server.wait, WAIT) == 0
    assert sorted(start["node"] for start in starts) == [
        f"{socket.gethostname()}:{server.port}/worker-{i}" for i in (0, 1)
    ]
    assert {start["broker"] for start in starts} == {redis_url} and {start["store"] for start in starts} == {
        postgres_url
    }


async def answer_crosses_to_the_other_worker(workers: ServerProcess) -> None:
    """A user's event and an answer's chunks reach the user's connection on the other worker, in order."""
    first, second = worker_pids(workers)
    async with peer_on(workers, first) as alice0, peer_on(workers, second) as alice1:
        ack = await send_message(alice0, "tell me a long story")
        created = await alice1.expect(ChatUpdated)  # the user's channel, from the other worker
        assert created.chat.id == ack.chat_id
        await alice1.send(Resume(chat_id=ack.chat_id, message_id=ack.reply_id, last_seq=0))
        followed, end = await alice1.stream(ack.reply_id, timeout=WAIT)
        sent, own_end = await alice0.stream(ack.reply_id, timeout=WAIT)
        detail = await get_chat(alice1, ack.chat_id)
    assert [chunk.seq for chunk in followed] == list(range(1, len(followed) + 1))
    assert followed == sent and end == own_end
    assert isinstance(end, Complete) and end.finish_reason == "stop"
    assert text_of(followed) == demo_answer("tell me a long story", DEMO_WORDS) == detail.messages[1].content


async def test_a_killed_worker_is_started_again_and_its_answer_is_resumed_on_the_other(workers):
    generating, following = worker_pids(workers)
    async with peer_on(workers, generating) as alice0, peer_on(workers, following) as alice1:
        ack = await send_message(alice0, "tell me a long story")
        await alice1.send(Resume(chat_id=ack.chat_id, message_id=ack.reply_id, last_seq=0))
        await alice1.expect(Chunk, message_id=ack.reply_id, seq=5)
        workers_before = len(log_says(workers, "listening"))
        os.kill(generating, signal.SIGKILL)
        # The supervisor starts it again; it ends its own answer, and the follower on the other worker hears it.
        _, end = await alice1.stream(ack.reply_id, timeout=WAIT)
        seen_before_kill = [f for f in alice0.received if isinstance(f, Chunk) and f.message_id == ack.reply_id]
    followed = [f for f in alice1.received if isinstance(f, Chunk) and f.message_id == ack.reply_id]
    assert [chunk.seq for chunk in followed] == list(range(1, len(followed) + 1))
    assert isinstance(end, Complete) and end.finish_reason == "interrupted" and end.seq == len(followed)
    await until(lambda: len(log_says(workers, "listening")) > workers_before)
    assert log_says(workers, "exited with status -9; starting it again")
    # The other worker goes on, saying which one it is (of --workers N, N - 1 would say it): it links again.
    [started] = log_says(workers, f"(pid {generating}) listening")
    killed = int(started.split('"msg": "worker ', 1)[1].split(" ", 1)[0])
    assert log_says(workers, f"the link of worker {1 - killed} to worker {killed} closed (it stopped); linking again")
    assert generating not in worker_pids(workers) and len(worker_pids(workers)) == 2
    # The client cut off by the kill resumes, wherever it lands now, from what it had.
    last_seq = max((chunk.seq for chunk in seen_before_kill), default=0)
    async with peer(workers.url, workers.token()) as again:
        await again.send(Resume(chat_id=ack.chat_id, message_id=ack.reply_id, last_seq=last_seq))
        rest, resumed_end = await again.stream(ack.reply_id, timeout=WAIT)
        detail = await get_chat(again, ack.chat_id)
    assert [chunk.seq for chunk in rest] == list(range(last_seq + 1, end.seq + 1))
    assert isinstance(resumed_end, Complete) and resumed_end.finish_reason == "interrupted"
    assert detail.messages[1].content == text_of(followed)
    whole = demo_answer("tell me a long story", DEMO_WORDS)
    assert whole.startswith(text_of(followed)) and text_of(followed) != whole  # cut by the kill


async def test_workers_exit_with_their_killed_supervisor_and_the_next_start_ends_their_answers(workers):
    pids = worker_pids(workers)
    async with peer(workers.url, workers.token()) as alice:
        ack = await send_message(alice, "tell me a long story")
        await alice.expect(Chunk, message_id=ack.reply_id, seq=5)
        workers.kill()  # SIGKILL: the supervisor cannot pass anything on
        assert await alice.close_code(WAIT) != 4012  # not drained: gone, as if killed
    await until(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in pids))
    seen = [f for f in alice.received if isinstance(f, Chunk) and f.message_id == ack.reply_id]
    workers.start()  # the same database and port
    async with peer(workers.url, workers.token()) as again:
        await again.send(Resume(chat_id=ack.chat_id, message_id=ack.reply_id, last_seq=len(seen)))
        rest, end = await again.stream(ack.reply_id, timeout=WAIT)
        detail = await get_chat(again, ack.chat_id)
    assert [chunk.seq for chunk in seen + rest] == list(range(1, len(seen) + len(rest) + 1))
    assert isinstance(end, Complete) and end.finish_reason == "interrupted" and end.seq == len(seen) + len(rest)
    assert detail.messages[1].content == text_of(seen + rest) and detail.messages[1].seq == end.seq


async def test_sigterm_drains_every_worker_and_the_supervisor_exits_0(workers):
    first, second = worker_pids(workers)
    async with peer_on(workers, first) as alice0, peer_on(workers, second) as alice1:
        workers.terminate()
        codes = await asyncio.gather(alice0.close_code(WAIT), alice1.close_code(WAIT))
    assert codes == [4012, 4012]  # reconnect now: to a node that still runs, behind a load balancer
    assert await asyncio.to_thread(workers.wait) == 0
    names = sorted(start["node"] for start in log_events(workers, "start"))
    # Each worker's stop is told apart as its start is: by its node.
    assert sorted(stopping["node"] for stopping in log_events(workers, "stopping")) == names
    assert sorted(stop["node"] for stop in log_events(workers, "stop")) == names
    closed = sorted((event["node"], event["clients"]) for event in log_events(workers, "stopped_listening"))
    assert closed == [(name, 1) for name in names]
    # websockets' own "server closing" and "server closed" named no node: two such lines a worker.
    assert [line for line in log_says(workers, '"websockets.server"') if '"msg": "server clos' in line] == []
    assert [line for line in workers.stderr_lines if '"level": "error"' in line] == []  # a clean stop
    last = json.loads(workers.stderr_lines[-1])  # the supervisor's, once no worker is left to write
    assert (last["logger"], last["msg"]) == ("mfu_tui.server.workers", "2 workers stopped")


async def test_a_worker_stopping_with_the_others_does_not_say_it_will_link_to_them_again(tmp_path):
    with running_workers(tmp_path, "--drain-timeout", "30") as workers:
        async with peer(workers.url, workers.token()) as alice:
            ack = await send_message(alice, "tell me a long story")
            await alice.expect(Chunk, message_id=ack.reply_id, seq=2)
            workers.terminate()
            assert await alice.close_code(WAIT) == 4012
        assert await asyncio.to_thread(workers.wait, WAIT) == 0
    # The other worker stopped at once, closing its link under the one that drained the answer.
    [draining] = log_events(workers, "draining")
    [drained] = log_events(workers, "drained")
    assert draining["node"] == drained["node"] and (drained["ended"], drained["interrupted"]) == (1, 0)
    assert log_says(workers, "linking again") == []


def free_port_pair() -> int:
    """A port P of 127.0.0.1 such that P and P + 1 are free now."""
    for _ in range(ATTEMPTS):
        with socket.socket() as first, socket.socket() as second:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise AssertionError("no two free ports in a row")


def test_each_worker_has_its_metrics_and_every_worker_serves_the_rest_api(tmp_path):
    metrics = free_port_pair()
    server = ServerProcess(tmp_path, "--workers", "2", "--metrics-port", str(metrics), "--api-port", "0")
    server.start()
    try:
        figures = [http_get(f"http://127.0.0.1:{port}/metrics") for port in (metrics, metrics + 1)]
        api_ports = {
            int(line.rsplit(" ", 1)[1]) for line in server.stderr_lines if "REST API listening on port" in line
        }
        (api_port,) = api_ports  # both workers on the one port the supervisor chose
        # Each request a new connection, spread by the kernel: both workers answer (and check the token).
        answers = [http_get(f"http://127.0.0.1:{api_port}/api/models") for _ in range(4)]
    finally:
        server.terminate()
        assert server.wait() == 0
    for index, (status, body) in enumerate(figures):
        assert status == 200
        assert f'node="{socket.gethostname()}:{server.port}/worker-{index}"' in body
    assert len(log_says(server, "REST API listening on port")) == 2
    assert {status for status, _ in answers} == {401}


def test_a_port_taken_by_another_program_stops_the_supervisor_at_once(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = ServerProcess(tmp_path, "--workers", "2")
        server.port = port
        with pytest.raises(RuntimeError, match="server did not start"):
            server.start()
    assert server.wait() == 1
    assert "Address already in use" in server.stderr


def test_a_supervisor_removes_the_directories_a_killed_one_left_and_no_other(tmp_path):
    temporary = tmp_path / "tmp"
    left, running, unknown = (temporary / f"{DIRECTORY_PREFIX}{name}" for name in ("left", "running", "unknown"))
    for directory in (left, running, unknown):
        directory.mkdir(parents=True)
    (left / SUPERVISOR_LOCK).touch()  # its supervisor was killed: nobody holds the lock
    held = os.open(running / SUPERVISOR_LOCK, os.O_RDWR | os.O_CREAT)
    fcntl.flock(held, fcntl.LOCK_EX)  # a supervisor that runs
    try:
        server = ServerProcess(tmp_path, "--workers", "2", env={"TMPDIR": str(temporary)})
        server.start()
        try:
            own = [path for path in temporary.iterdir() if path not in (left, running, unknown)]
            assert not left.exists()
            assert running.exists() and unknown.exists()  # a directory with no lock: nothing says it is stale
            assert len(own) == 1 and (own[0] / SUPERVISOR_LOCK).exists()
        finally:
            server.terminate()
            server.wait(WAIT)
        assert not own[0].exists()
    finally:
        os.close(held)


def test_no_workers_is_refused_in_one_line(tmp_path):
    done = run_cli("serve", "--workers", "0", "--db", str(tmp_path / "db.sqlite3"), secret=new_secret())
    assert done.returncode == 2
    assert done.stderr == "mfu-chat serve: --workers must be at least 1\n"


async def test_the_model_servers_list_at_start_is_logged_by_one_worker(tmp_path):
    async with FakeOpenAI() as fake:
        url = f"{fake.base_url}/v1"
        server = ServerProcess(tmp_path, "--workers", "2", "--provider", url)
        await asyncio.to_thread(server.start)
        try:
            # A user's list_models shares a worker's listing at start, logged before it is answered:
            # once each worker answered one, every listing at start was made and logged.
            for pid in worker_pids(server):
                async with peer_on(server, pid) as alice:
                    await alice.send(ListModels(request_id="models"))
                    await alice.expect(Result, request_id="models")
        finally:
            server.terminate()
            assert await asyncio.to_thread(server.wait, WAIT) == 0
    assert len(log_says(server, f"model server {url}: 2 models listed")) == 1


async def test_a_model_server_down_at_start_is_one_warning_for_all_the_workers(tmp_path):
    with socket.socket() as closed:  # bound, never listening: connections to it are refused
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/v1"
        server = ServerProcess(tmp_path, "--workers", "2", "--provider", url)
        server.start()
        try:
            # Each worker lists as it starts, and is refused at once: long before this first line is read.
            await until(lambda: log_says(server, f"model server {url}: cannot list models"))
        finally:
            server.terminate()
            assert await asyncio.to_thread(server.wait, WAIT) == 0
    assert len(log_says(server, f"model server {url}: cannot list models")) == 1


def test_the_event_loop_is_logged_once_per_start_not_once_per_worker(tmp_path):
    server = ServerProcess(tmp_path, "--workers", "2")
    server.start()
    server.terminate()
    assert server.wait(WAIT) == 0
    assert len(log_says(server, "listening on ws://")) == 2  # each worker's own start, told apart by its node
    assert len(log_says(server, "event loop: ")) == 1
