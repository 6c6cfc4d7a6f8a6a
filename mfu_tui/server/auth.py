"""JWT checks at the door, and tokens for operators and tests.

Only HS256 is accepted (the algorithm list is pinned, so ``alg: none`` and
key-confusion tricks fail), ``exp`` and ``iat`` must be present, and the
user is ``sub``, else ``username`` (the original service's claim).
"""

from __future__ import annotations

import dataclasses
import time
from urllib.parse import parse_qs, urlsplit

import jwt
from websockets.datastructures import Headers

from mfu_tui.protocol import user_of

ALGORITHM = "HS256"
#: Later than any real token's times (2**53 s is 285 million years), small enough to be exact as a float.
MAX_TIME = 2**53


class AuthError(Exception):
    """The token is missing or not acceptable; the message is safe to log (no token)."""


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who a verified token speaks for, and until when."""

    user: str
    expires_at: float
    """``exp`` of the token, in seconds since the epoch."""


def verify_token(token: str, secret: str, *, leeway: float = 30.0) -> Identity:
    """Check a token and return the identity it carries.

    Raises:
        AuthError: the token is malformed, wrongly signed, expired, lacks
            ``exp``/``iat``, or names no user.
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            leeway=leeway,
            options={"require": ["exp", "iat"], "verify_signature": True},
        )
    except jwt.ExpiredSignatureError:
        raise AuthError(f"the token expired{_expiry(token)}") from None
    except jwt.InvalidSignatureError:
        raise AuthError("the token is signed with another key (a token of another server?)") from None
    except jwt.DecodeError:
        raise AuthError("the token is not a valid JWT") from None
    except jwt.InvalidTokenError as error:
        # The rest name a claim: missing exp/iat, iat or nbf in the future, a bad algorithm.
        raise AuthError(f"the token is not acceptable: {_words(error)}") from None
    for name in ("exp", "iat", "nbf"):
        if name in claims and not _is_time(claims[name]):
            # PyJWT lets ``exp: 10**400`` and ``iat: true`` through; neither is a time.
            raise AuthError(f"invalid token: '{name}' is not a time in seconds")
    user = user_of(claims)
    if user is None or len(user) > 256:
        raise AuthError("invalid token: no user in 'sub' or 'username'")
    return Identity(user=user, expires_at=float(claims["exp"]))


def _expiry(token: str) -> str:
    """`` at 2026-12-05 03:00 UTC`` for an expired token (its exp, read unverified for the words only)."""
    exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    if not _is_time(exp):
        return ""
    return " at " + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(exp))


def _words(error: jwt.InvalidTokenError) -> str:
    """PyJWT's message, lower-cased, or the class name spelled as words when it has none."""
    message = str(error).strip().rstrip(".")
    return message[:1].lower() + message[1:] if message else type(error).__name__


def _is_time(value: object) -> bool:
    """A number of seconds since the epoch that a float holds exactly (no bool, no 10**400)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < MAX_TIME


def mint_token(secret: str, user: str, ttl: float = 3600.0) -> str:
    """A token for ``user`` valid for ``ttl`` seconds (negative: already expired)."""
    now = int(time.time())
    return jwt.encode({"sub": user, "iat": now, "exp": now + int(ttl)}, secret, algorithm=ALGORITHM)


def token_from_request(path: str, headers: Headers) -> str | None:
    """The token of an upgrade request: ``Authorization: Bearer``, then ``?token=``.

    Args:
        path: The request target, with its query string.
        headers: The request headers.

    Raises:
        AuthError: more than one ``Authorization`` header: which one would we believe?
    """
    values = headers.get_all("Authorization")
    if len(values) > 1:
        raise AuthError("more than one Authorization header")
    token = bearer_token(values[0]) if values else None
    if token is not None:
        return token
    tokens = parse_qs(urlsplit(path).query).get("token")
    return tokens[0] if tokens else None


def bearer_token(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header value (None: another scheme, or empty)."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None
