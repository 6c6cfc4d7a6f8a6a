"""Rotating the token secret without signing anyone out, and the optional iss/aud checks.

The steps are those of docs/deploy.md (*Rotating the token secret*), run
against the real server process with tokens printed by the real
``mfu-chat token``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus

from mfu_tui.protocol import Ping, Pong
from mfu_tui.server.auth import AuthError, TokenKeys, mint_token, verify_token
from mfu_tui.server.config import ConfigError, ServerConfig, read_jwt_keys
from tests.server.peer import peer
from tests.support.server import ServerProcess, new_secret


def keys_file(path: Path, keys: dict[str, str], mode: int = 0o600) -> Path:
    path.write_text("".join(f'"{key_id}" = "{secret}"\n' for key_id, secret in keys.items()))
    path.chmod(mode)
    return path


def minted(env: dict[str, str], *args: str) -> str:
    """A token printed by ``mfu-chat token`` with ``env`` (and nothing else of ours in the environment)."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("MFU_JWT")}
    done = subprocess.run(
        [sys.executable, "-m", "mfu_tui", "token", "--user", "alice", *args],
        capture_output=True,
        text=True,
        env=clean | env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def accepted(server: ServerProcess, token: str) -> bool:
    """True if the server lets ``token`` in (and answers a ping); False on its 401."""
    try:
        async with peer(server.url, token) as alice:
            await alice.send(Ping(ts=1.0))
            await alice.expect(Pong)
    except InvalidStatus as refused:
        assert refused.response.status_code == 401
        return False
    return True


def serving(tmp_path: Path, env: dict[str, str], secret: str | None) -> ServerProcess:
    """The server on the same database, with ``env`` and ``MFU_JWT_SECRET`` (``None``: unset)."""
    process = ServerProcess(tmp_path, "--db", str(tmp_path / "chats.sqlite3"), env=env)
    if secret is None:
        del process.env["MFU_JWT_SECRET"]
    else:
        process.env["MFU_JWT_SECRET"] = secret
    process.start()
    return process


async def test_a_secret_is_rotated_with_both_keys_valid_during_the_overlap_and_the_old_one_refused_after(tmp_path):
    old, new = new_secret(), new_secret()
    before = minted({"MFU_JWT_SECRET": old})
    # 1. The new key goes in a keys file beside the old secret: both kinds of token are let in.
    keys = {"MFU_JWT_KEYS_FILE": str(keys_file(tmp_path / "keys.toml", {"2026-12": new}))}
    server = serving(tmp_path, keys, old)
    try:
        during = minted({**keys, "MFU_JWT_SECRET": old}, "--key-id", "2026-12")
        assert verify_token(during, TokenKeys(by_id={"2026-12": new})).user == "alice"
        assert await accepted(server, before) and await accepted(server, during)
    finally:
        server.kill()
    # 2. Once the old tokens have expired: MFU_JWT_SECRET unset, only tokens that name a key get in.
    server = serving(tmp_path, keys, None)
    try:
        assert not await accepted(server, before)
        assert await accepted(server, during)
    finally:
        server.kill()


async def test_a_server_with_an_issuer_and_an_audience_refuses_tokens_without_them(tmp_path):
    secret = new_secret()
    claims = {"MFU_JWT_ISSUER": "https://sso.example.edu", "MFU_JWT_AUDIENCE": "mfu-chat"}
    server = serving(tmp_path, claims, secret)
    try:
        assert await accepted(server, minted({"MFU_JWT_SECRET": secret, **claims}))
        assert not await accepted(server, minted({"MFU_JWT_SECRET": secret}))
        assert not await accepted(server, mint_token(secret, "alice", issuer="https://elsewhere", audience="mfu-chat"))
    finally:
        server.kill()


@pytest.mark.parametrize(
    ("token_keys", "words"),
    [
        (TokenKeys(by_id={"b": "y" * 40}), "the token is signed with key id 'a', which this server does not have"),
        (TokenKeys(secret="x" * 40, issuer="https://sso"), 'the token is not acceptable: token is missing the "iss"'),
        (TokenKeys(secret="x" * 40, audience="mfu-chat"), 'the token is not acceptable: token is missing the "aud"'),
    ],
)
def test_a_token_refused_for_its_key_or_claims_says_which(token_keys, words):
    token = mint_token("x" * 40, "alice", key_id="a" if token_keys.secret is None else None)
    with pytest.raises(AuthError) as refused:
        verify_token(token, token_keys)
    assert str(refused.value).startswith(words)


def test_a_token_without_a_key_id_is_refused_when_the_server_has_only_keys_by_id():
    with pytest.raises(AuthError, match="names no key id"):
        verify_token(mint_token("x" * 40, "alice"), TokenKeys(by_id={"a": "x" * 40}))


@pytest.mark.parametrize(
    ("content", "mode", "words"),
    [
        ('"a" = "' + "s" * 40 + '"\n', 0o644, "may be read by others (mode 644): chmod 600"),
        ("not toml at all", 0o600, "not TOML"),
        ('"a" = 3\n', 0o600, 'each line must be "KEY_ID" = "SECRET"'),
        ("", 0o600, "holds no key"),
    ],
)
def test_a_bad_keys_file_is_one_line_naming_the_file(tmp_path, content, mode, words):
    path = tmp_path / "keys.toml"
    path.write_text(content)
    path.chmod(mode)
    with pytest.raises(ConfigError) as refused:
        read_jwt_keys(path)
    assert str(refused.value).startswith(f"{path}: ") and words in str(refused.value)


def test_a_short_key_in_the_keys_file_is_named_and_not_shown():
    with pytest.raises(ConfigError) as refused:
        ServerConfig(secret="", jwt_keys={"2026-12": "short-secret"})
    assert "the key '2026-12' of the keys file must hold at least 32 bytes" in str(refused.value)
    assert "short-secret" not in str(refused.value)
