"""A hostile server for the real client: malformed, oversize and out-of-order frames.

Our own server never sends such frames, so it cannot test this; this peer
speaks the real wire format (websockets, JSON text frames) and misbehaves on
purpose:

- ``list_models`` is answered with ``garbage`` frames first, then the real
  ``result``: the request must still complete (the client survived them);
- a ``message`` is acknowledged and answered with its chunks repeated and out
  of order, ``resume`` replays from the asked ``seq``: the client must hand
  over each chunk once, in order;
- ``oversize()`` makes the next connection send a frame over the client's
  16 MiB limit: the client must close it (1009) and connect again.

Run the client part by hand::

    python -m tests.reliability.hostile_server --examples 100000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from mfu_tui.client import Backoff, ChatClient, ClientError, Status
from mfu_tui.protocol import (
    Ack,
    Chunk,
    Complete,
    ModelInfo,
    ModelList,
    Pong,
    Result,
    decode_client,
    encode,
)

SERVER_TYPES = ["pong", "ack", "chat_created", "chunk", "complete", "cancel", "error", "message_edited",
                "chat_updated", "result", "resync", "ping", "", "CHUNK"]  # fmt: skip
SERVER_FIELDS = ["type", "chatId", "messageId", "replyId", "clientMessageId", "seq", "content", "code",
                 "message", "requestId", "data", "chat", "deleted", "ts", "title", "editedAt",
                 "finishReason"]  # fmt: skip
MODELS = ModelList(models=[ModelInfo(id="demo", name="Demo", provider="demo", default=True)])
#: Over the client's limit for one server frame (16 MiB).
OVERSIZE = 17 * 1024 * 1024


class HostileServer:
    """Serves one client at a time on 127.0.0.1, misbehaving as told."""

    def __init__(self, answer_chunks: int = 40, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.answer = [f"piece {n} " for n in range(1, answer_chunks + 1)]
        self.garbage: list[str | bytes] = []
        self.connections = 0
        # Replies this server really started. Garbage acks make the client expect
        # others, and resume them after a reconnect: those get no answer, so this
        # server, which does not read while it writes, cannot deadlock with a
        # client that does not read while it sends its resumes.
        self._answered: set[str] = set()
        #: Called at each new connection.
        self.on_connection: Callable[[], None] | None = None
        self._oversize_next = False
        self._server: Any = None
        self._current: ServerConnection | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def __aenter__(self) -> HostileServer:  # noqa: PYI034
        self._server = await serve(self._handle, "127.0.0.1", 0, max_size=2**20)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    def oversize(self) -> None:
        """The next connection starts with a frame over the client's limit."""
        self._oversize_next = True

    def drop(self) -> None:
        """Cut the connection being served as a network would: reset, no closing handshake."""
        assert self._current is not None, "no connection to drop"
        self._current.transport.abort()

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        self._current = ws
        if self.on_connection is not None:
            self.on_connection()
        if self._oversize_next:
            self._oversize_next = False
            await ws.send("x" * OVERSIZE)
        with contextlib.suppress(ConnectionClosed):  # the client drops it on purpose
            await self._serve(ws)

    async def _serve(self, ws: ServerConnection) -> None:
        async for data in ws:
            frame = decode_client(data)
            kind = type(frame).__name__
            if kind == "Ping":
                await ws.send(encode(Pong(ts=frame.ts)).decode())
            elif kind == "ListModels":
                for junk in self.garbage:
                    await ws.send(junk)
                await ws.send(encode(Result(request_id=frame.request_id, data=MODELS)).decode())
            elif kind == "Message":
                await self._answer_shuffled(ws, frame)
            elif kind == "Resume" and frame.message_id in self._answered:
                await self._stream(
                    ws,
                    frame.chat_id,
                    frame.message_id,
                    range(frame.last_seq + 1, len(self.answer) + 1),
                )
                await ws.send(
                    encode(
                        Complete(
                            chat_id=frame.chat_id,
                            message_id=frame.message_id,
                            seq=len(self.answer),
                        )
                    ).decode()
                )
            elif kind == "GetChat":
                error = {
                    "type": "error",
                    "code": "not_found",
                    "message": "no",
                    "requestId": frame.request_id,
                }
                await ws.send(json.dumps(error))

    async def _answer_shuffled(self, ws: ServerConnection, frame: Any) -> None:
        chat_id = frame.chat_id or "chat-1"
        reply_id = f"reply-{frame.client_message_id}"
        self._answered.add(reply_id)
        ack = Ack(
            client_message_id=frame.client_message_id,
            chat_id=chat_id,
            message_id="user-1",
            reply_id=reply_id,
        )
        await ws.send(encode(ack).decode())
        seqs = list(range(1, len(self.answer) + 1))
        seqs += self.rng.sample(seqs, len(seqs) // 3)  # repeats
        self.rng.shuffle(seqs)
        # Drop a few: only a resume can bring them.
        for dropped in self.rng.sample(range(1, len(self.answer) + 1), 3):
            seqs = [s for s in seqs if s != dropped]
        await self._stream(ws, chat_id, reply_id, seqs)
        # The end before some of its chunks.
        await ws.send(encode(Complete(chat_id=chat_id, message_id=reply_id, seq=len(self.answer))).decode())

    async def _stream(self, ws: ServerConnection, chat_id: str, reply_id: str, seqs: Any) -> None:
        for seq in seqs:
            chunk = Chunk(
                chat_id=chat_id,
                message_id=reply_id,
                seq=seq,
                content=self.answer[seq - 1],
            )
            await ws.send(encode(chunk).decode())


def _text() -> st.SearchStrategy[str]:
    return st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


def server_garbage() -> st.SearchStrategy[list[str | bytes]]:
    """A burst of frames a broken or malicious server could send."""
    ids = st.sampled_from(["chat-1", "reply-x", "user-1", ""]) | _text()
    numbers = st.integers(-(2**70), 2**70) | st.floats()
    leaf = st.none() | st.booleans() | numbers | _text() | ids
    anything = st.recursive(
        leaf,
        lambda c: st.lists(c, max_size=3) | st.dictionaries(_text(), c, max_size=3),
        max_leaves=8,
    )
    objects = st.builds(
        lambda kind, fields: json.dumps({"type": kind, **fields}),
        st.sampled_from(SERVER_TYPES),
        st.dictionaries(st.sampled_from(SERVER_FIELDS), ids | anything, max_size=6),
    )
    one = objects | anything.map(json.dumps) | _text() | st.binary(max_size=32)
    return st.lists(one, min_size=1, max_size=5)


@dataclass
class ClientFuzzReport:
    """Figures of one run against the hostile server."""

    examples: int = 0
    garbage_frames: int = 0
    invalid_frame_errors: int = 0
    failed_requests: list[str] = field(default_factory=list)
    connections_after_drop: int = 0
    """After the drop: the one cut by the oversize frame, then at least one good one."""
    shuffled_answer_ok: bool = False
    final_state: str = ""
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return (
            not self.failed_requests
            and self.connections_after_drop >= 2
            and self.shuffled_answer_ok
            and self.final_state == "connected"
        )


class _Loop:
    """An event loop in a thread, so that Hypothesis (synchronous) can drive async code."""

    def __enter__(self) -> _Loop:  # noqa: PYI034
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        return self

    def run(self, coroutine: Any, timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def __exit__(self, *exc_info: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def run(examples: int, seed: int, workdir: Path) -> ClientFuzzReport:
    """Garbage bursts (Hypothesis), an oversize frame, a shuffled answer; returns the figures."""
    report = ClientFuzzReport()
    started = time.monotonic()
    with _Loop() as loop:
        hostile = HostileServer(seed=seed)
        loop.run(hostile.__aenter__())
        client = ChatClient(
            hostile.url,
            "a.b.c",
            data_dir=workdir,
            backoff=Backoff(base=0.05, cap=0.2),
            request_timeout=20,
        )
        errors: list[ClientError] = []
        client.on_error(errors.append)
        try:
            loop.run(_connect(client))
            _garbage_examples(loop, hostile, client, report, examples, seed)
            report.invalid_frame_errors = sum(1 for e in errors if "invalid frame" in str(e))
            hostile.oversize()
            before = hostile.connections
            loop.run(_reconnect_twice(client, hostile), timeout=150)  # the first new one starts oversize
            report.connections_after_drop = hostile.connections - before
            report.shuffled_answer_ok = loop.run(_shuffled_answer(client, hostile))
            report.final_state = client.state.status.name.lower()
        finally:
            loop.run(client.close())
            loop.run(hostile.__aexit__())
    report.seconds = round(time.monotonic() - started, 1)
    return report


def _garbage_examples(
    loop: _Loop,
    hostile: HostileServer,
    client: ChatClient,
    report: ClientFuzzReport,
    examples: int,
    seed: int,
) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(server_garbage())
    def one(garbage: list[str | bytes]) -> None:
        report.examples += 1
        report.garbage_frames += len(garbage)
        hostile.garbage = garbage
        try:
            models = loop.run(client.list_models(), timeout=30)
            assert models == MODELS
        except Exception as error:  # noqa: BLE001 (recorded; the run goes on)
            report.failed_requests.append(f"{garbage!r:.200} -> {error!r}")

    one._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]
    one()
    hostile.garbage = []


async def _connect(client: ChatClient) -> None:
    await client.connect()
    await client.wait_connected(timeout=20)


async def _reconnect_twice(client: ChatClient, hostile: HostileServer) -> None:
    """Drop the connection as a network would; wait for two new connections and ``CONNECTED``.

    The first new one is cut by the oversize frame, maybe before the client
    finished bringing it up to date (so ``on_open`` is not a reliable count).
    """
    changed = asyncio.Event()
    hostile.on_connection = changed.set
    unsubscribe = client.on_state(lambda state: changed.set())
    target = hostile.connections + 2
    try:
        hostile.drop()
        async with asyncio.timeout(120):
            while hostile.connections < target or client.state.status is not Status.CONNECTED:
                changed.clear()
                await changed.wait()
    finally:
        unsubscribe()
        hostile.on_connection = None


async def _shuffled_answer(client: ChatClient, hostile: HostileServer) -> bool:
    """One message: its answer arrives shuffled, repeated and with holes; is it delivered whole, once, in order?"""
    delivered: list[Any] = []
    done = asyncio.Event()

    def record(frame: Any) -> None:
        if isinstance(frame, (Chunk, Complete)):
            delivered.append(frame)
            if isinstance(frame, Complete):
                done.set()

    client.on_message(record)
    await client.send_message(None, "answer me in pieces")
    await asyncio.wait_for(done.wait(), 30)
    chunks = [f for f in delivered if isinstance(f, Chunk)]
    return (
        [c.seq for c in chunks] == list(range(1, len(hostile.answer) + 1))
        and "".join(c.content for c in chunks) == "".join(hostile.answer)
        and isinstance(delivered[-1], Complete)
        and sum(isinstance(f, Complete) for f in delivered) == 1
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the client warns about every invalid frame: expected here
    with tempfile.TemporaryDirectory() as workdir:
        report = run(args.examples, args.seed, Path(workdir))
    print(
        json.dumps(
            {
                **asdict(report),
                "failed_requests": report.failed_requests[:20],
                "clean": report.clean,
            },
            indent=2,
        )
    )
    raise SystemExit(0 if report.clean else 1)


if __name__ == "__main__":
    main()
