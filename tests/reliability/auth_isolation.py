"""Auth and isolation: nobody gets in without a good token, nobody sees another user's chats.

Three parts, all against the real server in this process, with every log
record of the run (server AND client, root logger at DEBUG) captured:

1. The bad-token matrix: none, garbage, expired, not yet valid (``nbf`` or
   ``iat`` in the future), wrong signature, ``alg: none`` (any case), HS/RS
   confusion (an RS256 or ES256 header; HS256 keyed with an RSA public key),
   other HMAC algorithms, missing ``exp``/``iat``/``sub``, a ``sub`` that is
   not a string. Each one in the ``Authorization`` header and in ``?token=``:
   HTTP 401 before the upgrade. A bad header with a good query token is
   refused too (the header is found first).
2. Guessing: Mallory sends every client frame type with Alice's chat and
   message ids (alone, and mixed with her own chat), while both chats stream.
   Each answer must equal, code and text, the answer to the same frame with
   ids that do not exist; Mallory gets no frame about Alice's chat, and
   Alice's chat is unchanged. Reusing Alice's ``clientMessageId`` makes a new
   chat of Mallory's own.
3. The log capture: no token (nor its payload or signature part) and no
   secret in any record, while DEBUG records of websockets on both sides
   prove the capture saw the handshakes.

Run by hand::

    python -m tests.reliability.auth_isolation

CI runs it once (``tests/reliability/test_auth_isolation.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jwt
import msgspec
from websockets.exceptions import InvalidStatus

from mfu_tui.client import Backoff, ChatClient, Status
from mfu_tui.protocol import (
    Ack,
    Cancel,
    ChatCreated,
    ChatUpdated,
    Chunk,
    Complete,
    DeleteChat,
    EditMessage,
    Error,
    GetChat,
    ListChats,
    Message,
    MessageEdited,
    RenameChat,
    Result,
    Resume,
    Subscribe,
)
from tests.server.peer import Peer, peer
from tests.support.server import running_server

#: Slow answers, so that both chats are still streaming while Mallory guesses.
SLOW = {"demo_words": 3000, "demo_delay_ms": 5.0}
#: The test peers' own websockets logs are not the product's (they print the
#: headers the test itself sent): keep them out of the capture.
_quiet = logging.getLogger("tests.reliability.peer")
_quiet.propagate = False

#: Any RSA public key: the classic confusion attack uses it as an HMAC secret.
RSA_PUBLIC_KEY = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf\n"
    "9Cnzj4p4WGeKLs1Pt8QuKUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQ==\n"
    "-----END PUBLIC KEY-----\n"
)


@dataclass
class AuthReport:
    """Figures of one run."""

    token_cases: int = 0
    refused_401: int = 0
    accepted_bad_tokens: list[str] = field(default_factory=list)
    guesses: int = 0
    distinguishable: list[str] = field(default_factory=list)
    """Guesses whose answer differed from the answer about ids that do not exist."""
    leaked_frames: int = 0
    victim_changed: bool = False
    log_records: int = 0
    debug_records_server: int = 0
    debug_records_client: int = 0
    token_hits_in_logs: int = 0

    @property
    def clean(self) -> bool:
        return (
            self.refused_401 == self.token_cases > 0
            and not self.accepted_bad_tokens
            and self.guesses > 0
            and not self.distinguishable
            and self.leaked_frames == 0
            and not self.victim_changed
            and self.debug_records_server > 0
            and self.debug_records_client > 0
            and self.token_hits_in_logs == 0
        )


def _b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _forged(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A token with any header, assembled by hand (libraries refuse to sign these)."""
    return f"{_b64(header)}.{_b64(claims)}.{_b64(signature) if signature else ''}"


def _hmac_signed(claims: dict[str, Any], key: str) -> str:
    """HS256 by hand: PyJWT rightly refuses a PEM public key as an HMAC secret, an attacker does not."""
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(claims)}"
    signature = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def bad_tokens(secret: str) -> dict[str, str | None]:
    """Every kind of token the server must refuse, by name."""
    now = int(time.time())
    good = {"sub": "alice", "iat": now, "exp": now + 3600}

    def hs256(claims: dict[str, Any], key: str = secret, algorithm: str = "HS256") -> str:
        return jwt.encode(claims, key, algorithm=algorithm)

    return {
        "none": None,
        "empty": "",
        "garbage": "not-a-jwt",
        "three garbage parts": "a.b.c",
        "expired": hs256({**good, "iat": now - 7200, "exp": now - 3600}),
        "not yet valid (nbf)": hs256({**good, "nbf": now + 3600, "exp": now + 7200}),
        "not yet valid (iat)": hs256({**good, "iat": now + 3600, "exp": now + 7200}),
        "wrong signature": hs256(good, "w" * 48),
        "signature cut off": hs256(good).rsplit(".", 1)[0] + ".",
        "payload swapped": ".".join(
            [
                hs256(good).split(".")[0],
                _b64({**good, "sub": "root"}),
                hs256(good).split(".")[2],
            ]
        ),
        "alg none": _forged({"alg": "none", "typ": "JWT"}, good),
        "alg None": _forged({"alg": "None", "typ": "JWT"}, good),
        "alg NONE with signature": _forged({"alg": "NONE", "typ": "JWT"}, good, b"x" * 32),
        "RS256 header": _forged({"alg": "RS256", "typ": "JWT"}, good, b"\x01" * 256),
        "ES256 header": _forged({"alg": "ES256", "typ": "JWT"}, good, b"\x02" * 64),
        "HS256 keyed with an RSA public key": _hmac_signed(good, RSA_PUBLIC_KEY),
        "HS384": hs256(good, secret + "x" * 20, "HS384"),
        "HS512": hs256(good, secret + "x" * 40, "HS512"),
        "missing exp": hs256({"sub": "alice", "iat": now}),
        "missing iat": hs256({"sub": "alice", "exp": now + 3600}),
        "missing sub and username": hs256({"iat": now, "exp": now + 3600}),
        "empty sub": hs256({**good, "sub": ""}),
        "sub not a string": hs256({**good, "sub": 42}),
        "exp not a number": hs256({**good, "exp": "tomorrow"}),
    }


async def _refused(url: str, token: str | None, **options: Any) -> bool:
    """True when the server answers HTTP 401 (body ``unauthorized``) instead of upgrading."""
    try:
        async with peer(url, token, logger=_quiet, **options):
            return False
    except InvalidStatus as refused:
        return refused.response.status_code == 401 and b"unauthorized" in refused.response.body


async def check_tokens(url: str, secret: str, good: str, report: AuthReport) -> None:
    """Part 1: the matrix, in the header and in the query."""
    cases: list[tuple[str, dict[str, Any]]] = []
    for name, token in bad_tokens(secret).items():
        cases.append((f"{name} (header)", {"token": token}))
        if token is not None:
            cases.append((f"{name} (query)", {"token": token, "header": False}))
    cases += [
        ("bad header, good query", {"token": "garbage", "query": f"token={good}"}),
        (
            "expired header, good query",
            {"token": jwt.encode({"sub": "a", "iat": 1, "exp": 2}, secret), "query": f"token={good}"},
        ),
        ("two query tokens, bad first", {"token": None, "query": f"token=garbage&token={good}"}),
    ]  # fmt: skip
    for name, options in cases:
        report.token_cases += 1
        token = options.pop("token")
        if await _refused(url, token, **options):
            report.refused_401 += 1
        else:
            report.accepted_bad_tokens.append(name)


def _answer(frame: Error | Result) -> tuple[str, ...]:
    """What a guess taught Mallory: the kind of answer and its words, without the ids she sent."""
    if isinstance(frame, Error):
        return ("error", frame.code, frame.message)
    return ("result", json.dumps(frame.data, sort_keys=True))


async def _ask(mallory: Peer, frame: Any) -> tuple[str, ...]:
    """Send a frame that answers with an error (or a result) and return that answer."""
    await mallory.send(frame)
    request_id = getattr(frame, "request_id", None)
    while True:
        answer = await mallory.recv()
        if isinstance(answer, Error) and (request_id is None or answer.request_id == request_id):
            return _answer(answer)
        if isinstance(answer, Result) and answer.request_id == request_id:
            return _answer(answer)


async def check_guessing(srv_url: str, alice_token: str, mallory_token: str, report: AuthReport) -> None:
    """Part 2: every frame type with Alice's ids answers as if they did not exist."""
    async with (
        peer(srv_url, alice_token, logger=_quiet) as alice,
        peer(srv_url, mallory_token, logger=_quiet) as mallory,
    ):
        alice_cmid = str(uuid.uuid4())
        await alice.send(
            Message(
                chat_id=None,
                content="alice's secret plan",
                client_message_id=alice_cmid,
            )
        )
        a = await alice.expect(Ack)
        await alice.expect(Chunk, message_id=a.reply_id)
        await mallory.send(
            Message(
                chat_id=None,
                content="mallory's chat",
                client_message_id=str(uuid.uuid4()),
            )
        )
        m = await mallory.expect(Ack)
        await mallory.expect(Chunk, message_id=m.reply_id)
        before = await _ask(alice, GetChat(request_id="before", chat_id=a.chat_id))

        def rid() -> str:
            return uuid.uuid4().hex

        unknown_chat, unknown_msg = str(uuid.uuid4()), str(uuid.uuid4())
        # (name, frame with Alice's ids, the same frame with ids that exist nowhere)
        guesses: list[tuple[str, Any, Any]] = [
            ("message", Message(chat_id=a.chat_id, content="hi", client_message_id=str(uuid.uuid4())),
             Message(chat_id=unknown_chat, content="hi", client_message_id=str(uuid.uuid4()))),
            ("cancel chat", Cancel(chat_id=a.chat_id), Cancel(chat_id=unknown_chat)),
            ("cancel message", Cancel(chat_id=a.chat_id, message_id=a.reply_id),
             Cancel(chat_id=unknown_chat, message_id=unknown_msg)),
            ("cancel her reply in my chat", Cancel(chat_id=m.chat_id, message_id=a.reply_id),
             Cancel(chat_id=m.chat_id, message_id=unknown_msg)),
            ("resume", Resume(chat_id=a.chat_id, message_id=a.reply_id, last_seq=0),
             Resume(chat_id=unknown_chat, message_id=unknown_msg, last_seq=0)),
            ("resume her reply in my chat", Resume(chat_id=m.chat_id, message_id=a.reply_id, last_seq=0),
             Resume(chat_id=m.chat_id, message_id=unknown_msg, last_seq=0)),
            ("edit", EditMessage(chat_id=a.chat_id, message_id=a.message_id, content="pwned"),
             EditMessage(chat_id=unknown_chat, message_id=unknown_msg, content="pwned")),
            ("edit regenerate", EditMessage(chat_id=a.chat_id, message_id=a.message_id, content="x", regenerate=True),
             EditMessage(chat_id=unknown_chat, message_id=unknown_msg, content="x", regenerate=True)),
            ("edit her message in my chat", EditMessage(chat_id=m.chat_id, message_id=a.message_id, content="x"),
             EditMessage(chat_id=m.chat_id, message_id=unknown_msg, content="x")),
            ("subscribe", Subscribe(chat_id=a.chat_id), Subscribe(chat_id=unknown_chat)),
            ("get_chat", GetChat(request_id=rid(), chat_id=a.chat_id), GetChat(request_id=rid(), chat_id=unknown_chat)),
            ("rename_chat", RenameChat(request_id=rid(), chat_id=a.chat_id, title="mine"),
             RenameChat(request_id=rid(), chat_id=unknown_chat, title="mine")),
            ("delete_chat", DeleteChat(request_id=rid(), chat_id=a.chat_id),
             DeleteChat(request_id=rid(), chat_id=unknown_chat)),
        ]  # fmt: skip
        for name, foreign, unknown in guesses:
            report.guesses += 1
            if await _ask(mallory, foreign) != await _ask(mallory, unknown):
                report.distinguishable.append(name)
        # Her list shows her own chat only, whatever cursor she passes.
        forged_cursor = base64.urlsafe_b64encode(f"{time.time() + 60!r}|{a.chat_id}".encode()).decode().rstrip("=")
        for before_cursor in (None, forged_cursor, a.chat_id):
            report.guesses += 1
            answer = await _ask(mallory, ListChats(request_id=rid(), before=before_cursor))
            if answer[0] == "result" and a.chat_id in answer[1]:
                report.distinguishable.append(f"list_chats before={before_cursor}")
        # Alice's clientMessageId, replayed by Mallory: a new chat of her own, not Alice's ack.
        report.guesses += 1
        await mallory.send(Message(chat_id=None, content="replay", client_message_id=alice_cmid))
        replayed = await mallory.expect(Ack, client_message_id=alice_cmid)
        if replayed.chat_id == a.chat_id or replayed.message_id == a.message_id:
            report.distinguishable.append("clientMessageId replay")
        for chat in (m.chat_id, replayed.chat_id):
            await mallory.send(Cancel(chat_id=chat))
        # The victim's chat is still streaming and unchanged.
        if any(isinstance(f, Complete) and f.message_id == a.reply_id for f in alice.received):
            report.victim_changed = True
        after = await _ask(alice, GetChat(request_id="before", chat_id=a.chat_id))
        report.victim_changed |= _without_progress(before) != _without_progress(after)
        await alice.send(Cancel(chat_id=a.chat_id))
        await alice.stream(a.reply_id)
        report.leaked_frames = sum(
            1
            for f in mallory.received
            if getattr(f, "chat_id", None) == a.chat_id
            and not isinstance(f, Error)
            or isinstance(f, (ChatUpdated, MessageEdited))
            and a.chat_id in json.dumps(msgspec.to_builtins(f))
            or isinstance(f, (Chunk, ChatCreated))
            and f.chat_id not in (m.chat_id, replayed.chat_id)
        )


def _without_progress(answer: tuple[str, ...]) -> Any:
    """A ``get_chat`` answer without what streaming changes (the reply's text and seq, timestamps)."""
    data = json.loads(answer[1])
    return {
        "title": data["chat"]["title"],
        "messages": [(m["id"], m["role"], m["content"] if m["role"] == "user" else "") for m in data["messages"]],
    }


async def check_client_session(url: str, good: str, expired: str, workdir: Path) -> None:
    """Traffic of the real client, for the log capture: a good session and a refused one."""
    client = ChatClient(url, good, data_dir=workdir / "client", backoff=Backoff(base=0.05, cap=0.2))
    done = asyncio.Event()
    client.on_message(lambda f: isinstance(f, Complete) and done.set())
    try:
        await client.connect()
        await client.wait_connected(timeout=20)
        await client.send_message(None, "hello from the real client")
        await asyncio.wait_for(done.wait(), 30)
        await client.list_chats()
    finally:
        await client.close()
    refused = ChatClient(url, expired, data_dir=workdir / "client-refused")
    try:
        await refused.connect()
        with contextlib.suppress(Exception):
            await refused.wait_connected(timeout=20)
        assert refused.state.status is Status.DISCONNECTED
    finally:
        await refused.close()


class _Capture(logging.Handler):
    """Keeps every record, formatted as a handler would print it (traceback included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))


async def run(workdir: Path) -> AuthReport:
    """All three parts, with one log capture around them."""
    report = AuthReport()
    capture = _Capture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    secrets: list[str] = []
    try:
        async with running_server(workdir, **SLOW) as srv:
            good, mallory = srv.token("alice"), srv.token("mallory")
            secrets += [srv.secret, good, mallory]
            secrets += [t for t in bad_tokens(srv.secret).values() if t and t.count(".") == 2 and len(t) > 20]
            await check_tokens(srv.url, srv.secret, good, report)
            await check_guessing(srv.url, good, mallory, report)
        async with running_server(workdir / "short", demo_words=5) as srv:
            good, expired = srv.token("carol"), srv.token("carol", ttl=-3600)
            secrets += [srv.secret, good, expired]
            await check_client_session(srv.url, good, expired, workdir)
            async with peer(srv.url, good, header=False, logger=_quiet):  # ?token= in the request line
                pass
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)
    text = "\n".join(capture.lines)
    report.log_records = len(capture.records)
    report.debug_records_server = sum(
        1 for r in capture.records if r.levelno == logging.DEBUG and r.name.startswith("websockets.server")
    )
    report.debug_records_client = sum(
        1 for r in capture.records if r.levelno == logging.DEBUG and r.name.startswith("mfu_tui.client")
    )
    # A token leaks if it, its payload or its signature shows up anywhere.
    needles = {secret for secret in secrets}
    for token in secrets:
        needles.update(part for part in token.split(".")[1:] if len(part) >= 16)
    report.token_hits_in_logs = sum(text.count(needle) for needle in needles)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        report = asyncio.run(run(Path(workdir)))
    print(json.dumps({**asdict(report), "clean": report.clean}, indent=2))
    raise SystemExit(0 if report.clean else 1)


if __name__ == "__main__":
    main()
