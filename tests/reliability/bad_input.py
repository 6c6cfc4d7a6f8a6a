"""Bad input against a live server, and a hostile server against the real client.

Server side (the real ``mfu-chat serve`` process):

- Hypothesis generates frames: JSON objects whose ``type`` and fields are
  drawn from the protocol's names with values of any JSON kind (ids include
  another user's real chat and message ids), arbitrary JSON values, text
  and binary frames. After each one a ``ping`` with a fresh ``ts`` must come
  back as ``pong``: the server neither crashed nor stalled. A frame the
  protocol decoder refuses must get exactly one ``error``, with code
  ``bad_request`` (``too_large`` for a frame over its limit); any other
  answer must be one the protocol allows.
- Raw fuzzing: valid frames with random byte mutations (flips, cuts,
  insertions, repeats), deep nesting, invalid UTF-8 in a text frame (close
  1007), oversize frames (``too_large`` over 64 KiB, close 1009 over 1 MiB). The connection is opened again after a
  close; the server process must still be alive at the end.
- Garbage on the wire: random bytes instead of an HTTP request, or after
  the upgrade (random bytes, or a frame header with random flags, opcode,
  mask bit and length).
- Another user, Bob, is connected the whole time: he must receive nothing
  but his own pongs, and his chat must be unchanged.

Client side (``ChatClient``): a hostile server sends malformed JSON, unknown
types, wrong field types, binary frames, frames over the client's limit,
chunks out of order, repeated and for unknown messages, answers to requests
never made; the client must stay up and still deliver a well-formed answer
sent after the garbage once, in order (see ``hostile_server.py``).

Run by hand::

    python -m tests.reliability.bad_input --examples 100000 --mutations 100000 --raw 10000

CI runs fewer (``tests/reliability/test_bad_input.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import socket
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Response
from websockets.protocol import State
from websockets.sync.client import ClientConnection, connect
from websockets.uri import parse_uri

from mfu_tui.protocol import (
    Ack,
    Complete,
    Error,
    FrameTooLarge,
    Ping,
    Pong,
    ProtocolError,
    decode_client,
    decode_server,
    encode,
)
from tests.protocol.examples import CLIENT_FRAMES
from tests.support.server import ServerProcess

#: A safety net: the server answers a ping in milliseconds, this bounds a stall.
STALL_TIMEOUT = 15.0
TYPES = ["ping", "message", "cancel", "resume", "edit_message", "subscribe", "list_chats", "get_chat",
         "rename_chat", "delete_chat", "list_models", "pong", "ack", "chunk", "error", "", "PING"]  # fmt: skip
FIELDS = ["type", "chatId", "messageId", "content", "clientMessageId", "modelId", "messages", "ts",
          "lastSeq", "regenerate", "requestId", "limit", "before", "title", "role", "chat_id"]  # fmt: skip
#: Error codes a structurally valid frame may get (a semantic refusal, another user's id...).
ALLOWED_CODES = {
    "bad_request",
    "not_found",
    "rate_limited",
    "conflict",
    "too_large",
    "forbidden",
}


@dataclass
class FuzzReport:
    """Figures of one run."""

    examples: int = 0
    mutations: int = 0
    raw_connections: int = 0
    refused_by_decoder: int = 0
    bad_request_answers: int = 0
    reconnects: dict[str, int] = field(default_factory=dict)
    """Closes the server chose, by code (1007 invalid UTF-8, 1009 too large)."""
    wrong_answers: list[str] = field(default_factory=list)
    stalls: int = 0
    bystander_frames: int = 0
    bystander_chat_changed: bool = False
    server_alive: bool = False
    server_tracebacks: int = 0
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return (
            not self.wrong_answers
            and self.stalls == 0
            and self.bystander_frames == 0
            and not self.bystander_chat_changed
            and self.server_alive
            and self.server_tracebacks == 0
        )


class Fuzzer:
    """One connection of Mallory's that sends anything and checks each answer."""

    def __init__(self, server: ServerProcess, report: FuzzReport) -> None:
        self.server = server
        self.report = report
        self.ws: ClientConnection | None = None
        self._connection = contextlib.ExitStack()
        self._ts = 0

    def open(self) -> ClientConnection:
        if self.ws is None:
            self._connection = contextlib.ExitStack()
            self.ws = self._connection.enter_context(
                connect(
                    self.server.url,
                    additional_headers={"Authorization": f"Bearer {self.server.token('mallory')}"},
                    proxy=None,
                    max_size=None,
                    open_timeout=STALL_TIMEOUT,
                )
            )
        return self.ws

    def close(self) -> None:
        self.ws = None
        self._connection.close()

    def check(self, data: str | bytes, *, as_text: bool | None = None) -> None:
        """Send ``data``, then a ping; judge everything that came back before the pong."""
        ws = self.open()
        refusal = _refusal(data)
        self.report.refused_by_decoder += refusal is not None
        self._ts += 1
        ts = float(self._ts)
        try:
            ws.send(data, text=as_text)
            ws.send(encode(Ping(ts=ts)).decode())
            answers = self._until_pong(ws, ts)
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
            self.report.reconnects[str(code)] = self.report.reconnects.get(str(code), 0) + 1
            if code not in (1007, 1009):
                self.report.wrong_answers.append(f"closed with {code} after {data[:80]!r}")
            self.close()
            return
        except TimeoutError:
            self.report.stalls += 1
            self.report.wrong_answers.append(f"no pong within {STALL_TIMEOUT} s after {data[:80]!r}")
            self.close()
            return
        # Only an error answers a refused frame at once; chunks, acks, chat events
        # and results may belong to an earlier valid frame (``list_models`` is
        # answered off the frame path, a ``message`` streams on).
        direct = [a for a in answers if isinstance(a, Error)]
        self.report.bad_request_answers += sum(a.code == "bad_request" for a in direct)
        if refusal is not None and [a.code for a in direct] != [refusal]:
            self.report.wrong_answers.append(f"{data[:80]!r} -> {direct!r:.200}")
        for answer in answers:
            if isinstance(answer, Error) and answer.code not in ALLOWED_CODES:
                self.report.wrong_answers.append(f"{data[:80]!r} -> error {answer.code}: {answer.message}")

    def _until_pong(self, ws: ClientConnection, ts: float) -> list[Any]:
        answers: list[Any] = []
        deadline = time.monotonic() + STALL_TIMEOUT
        while True:
            frame = decode_server(ws.recv(timeout=max(0.0, deadline - time.monotonic())))
            if isinstance(frame, Pong) and frame.ts == ts:
                return answers
            if not isinstance(frame, Pong):
                answers.append(frame)


def _refusal(data: str | bytes) -> str | None:
    """The error code the server must answer ``data`` with, or None if it decodes."""
    if isinstance(data, bytes):
        return "bad_request"  # binary frames are refused whatever they hold
    try:
        decode_client(data)
    except FrameTooLarge:
        return "too_large"
    except (ProtocolError, UnicodeDecodeError):
        return "bad_request"
    return None


def _text() -> st.SearchStrategy[str]:
    """Text that a WebSocket text frame can carry (no lone surrogates)."""
    return st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


def frames(bob_ids: list[str]) -> st.SearchStrategy[str | bytes]:
    """Anything a client could send, weighted towards almost-valid frames."""
    ids = st.sampled_from([*bob_ids, "", "x" * 129, "../../etc/passwd", "' OR 1=1 --"]) | _text() | st.uuids().map(str)
    leaf = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | _text()
    anything = st.recursive(
        leaf,
        lambda c: st.lists(c, max_size=4) | st.dictionaries(_text(), c, max_size=4),
        max_leaves=12,
    )
    objects = st.builds(
        lambda kind, fields: json.dumps({"type": kind, **fields}),
        st.sampled_from(TYPES) | _text(),
        st.dictionaries(st.sampled_from(FIELDS), ids | anything, max_size=6),
    )
    return objects | anything.map(json.dumps) | _text() | st.binary(max_size=64)


def run_hypothesis(fuzzer: Fuzzer, bob_ids: list[str], examples: int, seed: int) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(frames(bob_ids))
    def one(data: str | bytes) -> None:
        fuzzer.report.examples += 1
        fuzzer.check(data)

    one._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]
    one()


def run_mutations(fuzzer: Fuzzer, bob_ids: list[str], count: int, seed: int) -> None:
    """Byte-level mutations of valid frames, plus a few hand-made monsters."""
    rng = random.Random(seed)
    seeds = [encode(frame) for frame in CLIENT_FRAMES]
    seeds = [s.replace(b'"c1"', json.dumps(rng.choice(bob_ids)).encode()) for s in seeds]
    monsters: list[tuple[bytes | str, bool | None]] = [
        ("[" * 30000 + "]" * 30000, None),
        ('{"type":"ping","ts":' + "9" * 5000 + "}", None),
        ('{"type":"ping","ts":1e999}', None),
        ('{"type":"ping","type":"message"}', None),
        ('{"type":"ping"}\x00', None),
        ("\ufeff" + '{"type":"ping"}', None),
        (
            b'{"type":"ping","ts":"\xff\xfe"}',
            True,
        ),  # invalid UTF-8 in a text frame: 1007
        (
            '{"type":"get_chat","requestId":"r","chatId":"' + "a" * 70000 + '"}',
            None,
        ),  # over 64 KiB: too_large
        (
            '{"type":"message","chatId":"","messages":[{"role":"user","content":"' + "a" * 1_100_000 + '"}]}',
            None,
        ),  # over 1 MiB: 1009
    ]
    for data, as_text in monsters:
        fuzzer.report.mutations += 1
        fuzzer.check(data, as_text=as_text)
    for _ in range(count):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            where = rng.randrange(len(data) + 1)
            action = rng.randrange(4)
            if action == 0 and data:
                data[min(where, len(data) - 1)] ^= 1 << rng.randrange(8)
            elif action == 1:
                del data[where : where + rng.randint(1, 8)]
            elif action == 2:
                data[where:where] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
            else:
                data[where:where] = data[max(0, where - 8) : where]
        fuzzer.report.mutations += 1
        try:
            fuzzer.check(bytes(data).decode())
        except UnicodeDecodeError:
            fuzzer.check(bytes(data))  # not UTF-8: a binary frame


def run_raw_sockets(server: ServerProcess, count: int, seed: int, report: FuzzReport) -> None:
    """Garbage on the TCP connection itself: instead of an HTTP request, or after the upgrade.

    After the upgrade the bytes are random, or a WebSocket frame header with
    random flags, opcode, mask bit and length followed by random bytes. The
    server may answer, close or wait for more; it must not crash, and the
    connection is dropped after each attempt (bounded: one at a time).
    """
    rng = random.Random(seed)
    uri = parse_uri(server.url)
    token = server.token("mallory")
    for _ in range(count):
        report.raw_connections += 1
        with socket.create_connection((uri.host, uri.port), timeout=STALL_TIMEOUT) as sock:
            upgrade = rng.random() < 0.7
            if upgrade:
                protocol = ClientProtocol(uri)
                request = protocol.connect()
                request.headers["Authorization"] = f"Bearer {token}"
                protocol.send_request(request)
                sock.sendall(b"".join(protocol.data_to_send()))
                if not _read_response(sock, protocol):
                    report.wrong_answers.append("raw: the upgrade failed")
                    continue
            sock.sendall(_raw_garbage(rng, upgrade))
            sock.settimeout(0.05)
            with contextlib.suppress(OSError):
                sock.recv(65536)  # whatever came back; the point is what the server does next


def _read_response(sock: socket.socket, protocol: ClientProtocol) -> bool:
    """Complete the opening handshake; True on 101."""
    while protocol.state is State.CONNECTING:
        data = sock.recv(65536)
        if not data:
            return False
        protocol.receive_data(data)
    responses = [event for event in protocol.events_received() if isinstance(event, Response)]
    return bool(responses) and responses[0].status_code == 101


def _raw_garbage(rng: random.Random, upgraded: bool) -> bytes:
    if not upgraded or rng.random() < 0.3:
        return rng.randbytes(rng.randint(1, 2048))
    first = rng.randrange(256)  # FIN, RSV1-3, opcode: anything
    masked = 0x80 if rng.random() < 0.8 else 0  # clients must mask; sometimes they do not
    length = rng.choice([rng.randrange(126), 126, 127])
    header = bytes([first, masked | length])
    if length == 126:
        header += rng.randrange(65536).to_bytes(2, "big")
    elif length == 127:
        header += rng.randrange(2**63).to_bytes(8, "big")
    if masked:
        header += rng.randbytes(4)
    return header + rng.randbytes(rng.randint(0, 512))


def run(examples: int, mutations: int, seed: int, workdir: Path, raw: int = 0) -> FuzzReport:
    """Fuzz a live server while Bob watches; returns the figures."""
    report = FuzzReport()
    started = time.monotonic()
    server = ServerProcess(workdir, "--demo-words", "3", "--demo-delay-ms", "0")
    server.start()
    fuzzer = Fuzzer(server, report)
    try:
        with connect(
            server.url,
            additional_headers={"Authorization": f"Bearer {server.token('bob')}"},
            proxy=None,
        ) as bob:
            bob.send(
                json.dumps(
                    {
                        "type": "message",
                        "chatId": None,
                        "content": "bob's",
                        "clientMessageId": str(uuid.uuid4()),
                    }
                )
            )
            ack = _wait(bob, lambda f: isinstance(f, Ack))
            _wait(bob, lambda f: isinstance(f, Complete) and f.message_id == ack.reply_id)
            bob_before = _get_chat(bob, ack.chat_id)
            bob_ids = [ack.chat_id, ack.message_id, ack.reply_id, ack.client_message_id]
            run_hypothesis(fuzzer, bob_ids, examples, seed)
            run_mutations(fuzzer, bob_ids, mutations, seed)
            fuzzer.close()
            run_raw_sockets(server, raw, seed, report)
            # Bob: a pong first (nothing else queued for him), and his chat as it was.
            bob.send(encode(Ping(ts=-1.0)).decode())
            while not isinstance(frame := decode_server(bob.recv(timeout=STALL_TIMEOUT)), Pong) or frame.ts != -1.0:
                report.bystander_frames += not isinstance(frame, Pong)
            report.bystander_chat_changed = _get_chat(bob, ack.chat_id) != bob_before
    finally:
        fuzzer.close()
        report.server_alive = server.process is not None and server.process.poll() is None
        server.terminate()
        server.wait()
        # websockets logs a refused handshake with its traceback at INFO: not a failure.
        report.server_tracebacks = server.stderr.count("Traceback") - server.stderr.count("opening handshake failed")
        report.seconds = round(time.monotonic() - started, 1)
    return report


def _wait(ws: ClientConnection, wanted: Callable[[Any], bool]) -> Any:
    """Read until a frame ``wanted`` accepts."""
    while True:
        frame = decode_server(ws.recv(timeout=STALL_TIMEOUT))
        if wanted(frame):
            return frame


def _get_chat(ws: ClientConnection, chat_id: str) -> Any:
    request_id = uuid.uuid4().hex
    ws.send(json.dumps({"type": "get_chat", "requestId": request_id, "chatId": chat_id}))
    result = _wait(ws, lambda f: getattr(f, "request_id", None) == request_id)
    return result.data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=100_000, help="Hypothesis examples")
    parser.add_argument("--mutations", type=int, default=100_000, help="raw byte mutations")
    parser.add_argument(
        "--raw",
        type=int,
        default=10_000,
        help="connections with garbage bytes on the wire",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        report = run(args.examples, args.mutations, args.seed, Path(workdir), args.raw)
    print(
        json.dumps(
            {
                **asdict(report),
                "wrong_answers": report.wrong_answers[:20],
                "clean": report.clean,
            },
            indent=2,
        )
    )
    raise SystemExit(0 if report.clean else 1)


if __name__ == "__main__":
    main()
