"""The door: /healthz, and HTTP 401 before the upgrade for every bad token."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import jwt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from mfu_tui.protocol import Error, Ping, Pong
from mfu_tui.server import ConfigError, ServerConfig
from mfu_tui.server.auth import AuthError, TokenKeys, mint_token, verify_token
from tests.server.peer import peer
from tests.support.server import http_get, running_server


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def bad_tokens(secret: str) -> dict[str, str]:
    now = int(time.time())
    return {
        "garbage": "not-a-jwt",
        "expired": jwt.encode({"sub": "alice", "iat": now - 7200, "exp": now - 3600}, secret, algorithm="HS256"),
        "bad signature": jwt.encode({"sub": "alice", "iat": now, "exp": now + 3600}, "y" * 40, algorithm="HS256"),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({'sub': 'alice', 'iat': now, 'exp': now + 3600})}.",
        "missing exp": jwt.encode({"sub": "alice", "iat": now}, secret, algorithm="HS256"),
        "missing iat": jwt.encode({"sub": "alice", "exp": now + 3600}, secret, algorithm="HS256"),
        "no user": jwt.encode({"iat": now, "exp": now + 3600}, secret, algorithm="HS256"),
        "HS512": jwt.encode({"sub": "alice", "iat": now, "exp": now + 3600}, secret + "x" * 30, algorithm="HS512"),
        "exp too large": jwt.encode({"sub": "alice", "iat": now, "exp": 10**400}, secret, algorithm="HS256"),
        "iat a boolean": jwt.encode({"sub": "alice", "iat": True, "exp": now + 3600}, secret, algorithm="HS256"),
        "nbf a string": jwt.encode({"sub": "a", "iat": now, "exp": now + 60, "nbf": "now"}, secret, algorithm="HS256"),
    }


async def test_two_authorization_headers_are_refused_with_401_not_an_error(tmp_path, caplog):
    async with running_server(tmp_path) as srv:
        headers = [("Authorization", f"Bearer {srv.token('alice')}"), ("Authorization", f"Bearer {srv.token('bob')}")]
        with pytest.raises(InvalidStatus) as refused:
            async with connect(srv.url, additional_headers=headers, proxy=None):
                pass
    assert refused.value.response.status_code == 401
    assert b"more than one Authorization header" in refused.value.response.body
    assert "Traceback" not in caplog.text and not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_healthz_answers_without_auth(tmp_path):
    async with running_server(tmp_path) as srv:
        status, body = await asyncio.to_thread(http_get, f"http://127.0.0.1:{srv.port}/healthz")
    assert (status, body.strip()) == (200, "ok")


async def test_unknown_path_is_404(tmp_path):
    async with running_server(tmp_path) as srv:
        with pytest.raises(InvalidStatus) as refused:
            async with peer(srv.url.replace("/ws", "/other"), srv.token()):
                pass
    assert refused.value.response.status_code == 404


async def test_every_bad_token_is_refused_with_401_before_the_upgrade(tmp_path):
    async with running_server(tmp_path) as srv:
        cases = {"no token": None, **bad_tokens(srv.secret)}
        for name, token in cases.items():
            for header in (True, False):
                with pytest.raises(InvalidStatus) as refused:
                    async with peer(srv.url, token, header=header):
                        pass
                assert refused.value.response.status_code == 401, (name, header)
                assert b"unauthorized" in refused.value.response.body, name
        assert not srv.server.connections


@pytest.mark.parametrize("header", [True, False], ids=["authorization header", "query parameter"])
async def test_a_good_token_is_accepted_from_header_or_query(tmp_path, header):
    async with running_server(tmp_path) as srv:
        async with peer(srv.url, srv.token("alice"), header=header) as alice:
            await alice.send(Ping(ts=1.5))
            pong = await alice.expect(Pong)
    assert pong.ts == 1.5


async def test_the_header_wins_over_the_query(tmp_path):
    async with running_server(tmp_path) as srv:
        good, bad = srv.token("alice"), "garbage"
        async with peer(srv.url, good, query=f"token={bad}") as alice:
            await alice.send(Ping())
            await alice.expect(Pong)


def test_username_claim_is_the_identity_when_there_is_no_sub():
    secret = "s" * 40
    now = int(time.time())
    token = jwt.encode({"username": "bob", "iat": now, "exp": now + 60}, secret, algorithm="HS256")
    assert verify_token(token, TokenKeys(secret)).user == "bob"
    both = jwt.encode({"sub": "carol", "username": "bob", "iat": now, "exp": now + 60}, secret, algorithm="HS256")
    assert verify_token(both, TokenKeys(secret)).user == "carol"


def test_leeway_accepts_a_token_that_just_expired_and_no_more():
    secret = "s" * 40
    just_expired = mint_token(secret, "alice", ttl=-5)
    assert verify_token(just_expired, TokenKeys(secret), leeway=30).user == "alice"
    with pytest.raises(AuthError):
        verify_token(just_expired, TokenKeys(secret), leeway=0)


def test_short_secrets_are_refused():
    with pytest.raises(ConfigError, match="32 bytes"):
        ServerConfig(secret="short")


async def test_token_expiring_while_connected_closes_with_4401(tmp_path):
    async with running_server(tmp_path, token_leeway=0) as srv:
        async with peer(srv.url, srv.token("alice", ttl=2)) as alice:
            code = await alice.close_code(timeout=10)
        assert not srv.server.connections or all(c.closing.is_set() for c in srv.server.connections)
    assert code == 4401
    (notice,) = alice.received
    assert isinstance(notice, Error) and notice.code == "unauthorized"


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("garbage", "the token is not a valid JWT"),
        ("expired", "the token expired at "),
        ("bad signature", "the token is signed with another key (a token of another server?)"),
        ("missing exp", 'the token is not acceptable: token is missing the "exp" claim'),
    ],
)
def test_a_refused_token_is_said_in_words_not_an_exception_name(kind, words):
    secret = "x" * 40
    with pytest.raises(AuthError) as refused:
        verify_token(bad_tokens(secret)[kind], TokenKeys(secret), leeway=0)
    assert str(refused.value).startswith(words)
    assert "Error" not in str(refused.value)
    if kind == "expired":
        assert str(refused.value).endswith(" UTC")
