"""Tokens of a campus identity provider (RS256, ES256), checked with the public keys of its JWKS URL.

The identity provider is outside the project: a small aiohttp app on
loopback stands for it, serving a real JSON Web Key Set of keys made here.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from websockets.exceptions import InvalidStatus

from mfu_tui.protocol import Ping, Pong
from mfu_tui.server.auth import mint_token
from mfu_tui.server.config import ConfigError, ServerConfig
from mfu_tui.server.jwks import usable_keys
from tests.server.peer import peer
from tests.support.server import RunningServer, running_server

ISSUER = "https://sso.example.edu"


@dataclass
class IdentityProvider:
    """The stand-in identity provider: private keys by key id, and the JWKS of their public halves."""

    keys: dict[str, Any] = field(default_factory=dict)
    fetches: int = 0
    up: bool = True

    def add(self, key_id: str, algorithm: str) -> None:
        self.keys[key_id] = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if algorithm == "RS256"
            else ec.generate_private_key(ec.SECP256R1())
        )

    def key_set(self) -> dict[str, Any]:
        entries = []
        for key_id, private in self.keys.items():
            algorithm = (
                jwt.algorithms.RSAAlgorithm if isinstance(private, rsa.RSAPrivateKey) else jwt.algorithms.ECAlgorithm
            )
            public = json.loads(algorithm.to_jwk(private.public_key()))
            entries.append(public | {"kid": key_id, "use": "sig"})
        return {"keys": entries}

    def token(self, key_id: str, user: str = "alice", **claims: Any) -> str:
        private = self.keys[key_id]
        algorithm = "RS256" if isinstance(private, rsa.RSAPrivateKey) else "ES256"
        now = int(time.time())
        body = {"sub": user, "iat": now, "exp": now + 600, "iss": ISSUER} | claims
        return jwt.encode(body, private, algorithm=algorithm, headers={"kid": key_id})

    async def serve_keys(self, request: web.Request) -> web.Response:
        self.fetches += 1
        if not self.up:
            return web.Response(status=503, text="down for maintenance")
        return web.json_response(self.key_set())


@contextlib.asynccontextmanager
async def identity_provider() -> AsyncIterator[tuple[IdentityProvider, str]]:
    provider = IdentityProvider()
    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", provider.serve_keys)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield provider, f"http://127.0.0.1:{port}/.well-known/jwks.json"
    finally:
        await runner.cleanup()


async def accepted(server: RunningServer, token: str) -> bool:
    try:
        async with peer(server.url, token) as alice:
            await alice.send(Ping(ts=1.0))
            await alice.expect(Pong)
    except InvalidStatus as refused:
        assert refused.response.status_code == 401
        return False
    return True


async def test_tokens_signed_by_the_identity_provider_get_in_at_both_doors(tmp_path: Path) -> None:
    async with identity_provider() as (provider, url):
        provider.add("rsa-1", "RS256")
        provider.add("ec-1", "ES256")
        async with running_server(tmp_path, jwt_jwks_url=url, jwt_issuer=ISSUER, api_port=0) as srv:
            assert await accepted(srv, provider.token("rsa-1"))
            assert await accepted(srv, provider.token("ec-1"))
            assert await accepted(srv, mint_token(srv.secret, "bob", issuer=ISSUER))  # MFU_JWT_SECRET's too
            assert not await accepted(srv, provider.token("rsa-1", iss="https://elsewhere"))
            headers = {"Authorization": f"Bearer {provider.token('ec-1')}"}
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{srv.server.api_port}/api/models", headers=headers) as answer:
                    assert answer.status == 200
            assert provider.fetches == 1  # the keys are kept: no request to the provider per token


async def test_a_key_the_provider_adds_is_fetched_when_a_token_names_it_and_made_up_ids_fetch_rarely(
    tmp_path: Path,
) -> None:
    async with identity_provider() as (provider, url):
        provider.add("rsa-1", "RS256")
        async with running_server(tmp_path, jwt_jwks_url=url) as srv:
            provider.add("rsa-2", "RS256")  # rotated after the server fetched its keys
            assert await accepted(srv, provider.token("rsa-2"))  # the first try gets in
            assert provider.fetches == 2
            forged = jwt.encode({"sub": "eve", "iat": 1, "exp": 2**40}, "x" * 40, headers={"kid": "made-up"})
            for _ in range(5):
                assert not await accepted(srv, forged)
            assert provider.fetches == 2  # within the retry window: none of the five asked the provider


async def test_the_provider_down_at_start_stops_no_one_else_and_its_tokens_get_in_once_it_is_back(
    tmp_path: Path,
) -> None:
    async with identity_provider() as (provider, url):
        provider.add("rsa-1", "RS256")
        provider.up = False
        async with running_server(tmp_path, jwt_jwks_url=url) as srv:
            assert await accepted(srv, srv.token())
            assert not await accepted(srv, provider.token("rsa-1"))
            provider.up = True
            assert srv.server.token_check.provider is not None
            srv.server.token_check.provider.retry = 0  # the next token may ask again at once
            assert await accepted(srv, provider.token("rsa-1"))


async def test_a_token_signed_with_the_public_key_as_a_secret_is_refused(tmp_path: Path) -> None:
    async with identity_provider() as (provider, url):
        provider.add("rsa-1", "RS256")
        public_pem = (
            provider.keys["rsa-1"]
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
        now = int(time.time())
        body = jwt.utils.base64url_encode(json.dumps({"sub": "eve", "iat": now, "exp": now + 60}).encode())
        import hashlib
        import hmac

        signature = jwt.utils.base64url_encode(hmac.new(public_pem, header + b"." + body, hashlib.sha256).digest())
        confused = b".".join((header, body, signature)).decode()
        async with running_server(tmp_path, jwt_jwks_url=url) as srv:
            assert not await accepted(srv, confused)


def test_only_signing_keys_of_the_accepted_algorithms_are_kept():
    provider = IdentityProvider()
    provider.add("rsa-1", "RS256")
    listed = provider.key_set()["keys"]
    encryption = listed[0] | {"kid": "enc", "use": "enc"}
    secret = {"kty": "oct", "k": "c2VjcmV0", "kid": "oct"}
    nameless = {key: value for key, value in listed[0].items() if key != "kid"}
    kept = usable_keys({"keys": [*listed, encryption, secret, nameless, "not a key"]})
    assert list(kept) == ["rsa-1"]
    with pytest.raises(ValueError, match="not a JSON Web Key Set"):
        usable_keys({"kid": "rsa-1"})


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://sso.example.edu/jwks.json", True),
        ("http://127.0.0.1:8080/jwks.json", True),
        ("http://localhost/jwks.json", True),
        ("http://sso.example.edu/jwks.json", False),
        ("ftp://sso.example.edu/jwks.json", False),
    ],
)
def test_the_jwks_url_is_fetched_over_tls_unless_it_is_on_this_machine(url: str, allowed: bool) -> None:
    if allowed:
        assert ServerConfig(secret="", jwt_jwks_url=url).token_keys.secret is None
    else:
        with pytest.raises(ConfigError, match="https://"):
            ServerConfig(secret="", jwt_jwks_url=url)
