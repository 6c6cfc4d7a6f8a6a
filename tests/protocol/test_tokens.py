"""The identity rule (``sub``, else ``username``) and reading claims for display."""

import base64
import json

import pytest

from mfu_tui.protocol import unverified_claims, user_of


def token_with(claims: object) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJIUzI1NiJ9.{payload}.signature"


@pytest.mark.parametrize(
    ("claims", "user"),
    [
        ({"sub": "alice", "username": "bob"}, "alice"),
        ({"username": "bob"}, "bob"),
        ({"sub": "", "username": "bob"}, "bob"),
        ({"sub": 7}, None),
        ({}, None),
    ],
)
def test_user_is_sub_else_username(claims, user):
    assert user_of(claims) == user


def test_claims_are_read_without_a_key():
    assert unverified_claims(token_with({"sub": "alice", "exp": 5})) == {"sub": "alice", "exp": 5}


@pytest.mark.parametrize("token", ["", "hunter2", "a.b", "a.!!!.c", token_with([1, 2]), "a.b.c.d"])
def test_anything_else_is_not_a_token(token):
    assert unverified_claims(token) is None
