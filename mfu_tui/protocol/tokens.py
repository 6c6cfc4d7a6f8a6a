"""Who a token names: the protocol's identity rule, and reading claims for display.

The user of a token is its ``sub`` claim, else ``username`` (the original
service's claim). The server applies this rule to tokens it has verified;
the client side reads claims *without* verifying them, only to show
``alice@host`` or an expiry date: it never trusts them.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping
from typing import Any


def user_of(claims: Mapping[str, Any]) -> str | None:
    """The user a token's claims name (``sub``, else ``username``), or ``None``."""
    user = claims.get("sub") or claims.get("username")
    return user if isinstance(user, str) and user else None


def unverified_claims(token: str) -> dict[str, Any] | None:
    """The claims of a JWT, read without checking its signature; ``None`` if it is not a JWT.

    For display only (who, until when): the server is the one that checks tokens.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


def token_problem(token: str, now: float) -> str | None:
    """Why ``token`` cannot be a token worth trying, in one line; ``None`` if it may be one.

    Read without the key (the server checks the signature): the shape, and
    an expiry already past at ``now`` (seconds since the epoch).
    """
    claims = unverified_claims(token)
    if claims is None:
        return "that is not a token (a JWT has three dot-separated parts)"
    expires = claims.get("exp")
    if isinstance(expires, (int, float)) and expires < now:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(expires))
        return f"that token expired on {when}; ask for a new one"
    return None
