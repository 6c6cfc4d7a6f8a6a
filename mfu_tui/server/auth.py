"""JWT checks at the door, and tokens for operators and tests.

Each key checks tokens of its one algorithm only (HS256 for the secrets,
RS256 or ES256 for an identity provider's public keys), so ``alg: none``
and key-confusion tricks fail; ``exp`` and ``iat`` must be present, and the
user is ``sub``, else ``username`` (the original service's claim).

Several keys may be valid at once, told apart by the key id (``kid``) in
the token's header, so that a secret is rotated without signing everyone
out (docs/deploy.md, *Rotating the token secret*); a token without ``kid``
is checked with ``MFU_JWT_SECRET``. With an issuer or an audience
configured, every token must carry it (``iss``, ``aud``). Tokens of a
campus identity provider name one of its public keys (``kid``), fetched
from its JWKS URL (``mfu_tui/server/jwks.py``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import jwt
from websockets.datastructures import Headers

from mfu_tui.protocol import user_of

if TYPE_CHECKING:
    from mfu_tui.server.jwks import ProviderKeys

ALGORITHM = "HS256"
#: The longest user name a token may carry.
MAX_USER_CHARS = 256
#: The algorithms of an identity provider's public keys that are accepted.
PUBLIC_ALGORITHMS = frozenset({"RS256", "ES256"})
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


@dataclasses.dataclass(frozen=True)
class TokenKeys:
    """What tokens are checked with: the secrets by key id, and the claims every token must carry."""

    secret: str | None = None
    """The secret of tokens without a key id (``MFU_JWT_SECRET``); ``None``: such tokens are refused."""
    by_id: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Secrets by key id (``kid`` in a token's header), from the keys file."""
    issuer: str | None = None
    """The ``iss`` every token must carry; ``None``: not checked."""
    audience: str | None = None
    """An ``aud`` every token must carry; ``None``: not checked."""
    public: Mapping[str, jwt.PyJWK] = dataclasses.field(default_factory=dict)
    """An identity provider's public keys by key id (its JWKS), each of one of ``PUBLIC_ALGORITHMS``."""

    def key_of(self, token: str) -> tuple[str | jwt.PyJWK, str]:
        """The key to check ``token`` with, chosen by the ``kid`` of its header, and its one algorithm.

        Raises:
            AuthError: the token is not a JWT, or names a key this server does not have.
        """
        key_id = key_id_of(token)
        if key_id is None:
            if self.secret is None:
                raise AuthError("the token names no key id (kid), and this server checks tokens by key id")
            return self.secret, ALGORITHM
        if key_id in self.public:
            public = self.public[key_id]
            return public, public.algorithm_name
        secret = self.by_id.get(key_id)
        if secret is None:
            # The id is the token's, not ours: shown cut and only if printable, it is safe to log.
            shown = key_id[:64] if key_id.isprintable() else "?"
            raise AuthError(f"the token is signed with key id {shown!r}, which this server does not have (retired?)")
        return secret, ALGORITHM


def key_id_of(token: str) -> str | None:
    """The ``kid`` of a token's header, read without checking anything else (``None``: none).

    Raises:
        AuthError: the token is not a JWT, or its ``kid`` is not a string.
    """
    try:
        key_id = jwt.get_unverified_header(token).get("kid")
    except jwt.DecodeError:
        raise AuthError("the token is not a valid JWT") from None
    if key_id is not None and not isinstance(key_id, str):
        raise AuthError("the token's key id (kid) is not a string")
    return key_id


class TokenCheck:
    """How both doors (the WebSocket and REST) check a token: the keys configured, and an identity provider's.

    Args:
        keys: The secrets and the claims required.
        leeway: Clock skew allowed on ``exp`` and ``iat``, in seconds.
        provider: The identity provider's public keys, when a JWKS URL is configured.
    """

    def __init__(self, keys: TokenKeys, leeway: float, provider: ProviderKeys | None = None) -> None:
        self.keys = keys
        self.leeway = leeway
        self.provider = provider

    async def identify(self, token: str) -> Identity:
        """The identity ``token`` carries, once checked (a key id new to us is asked of the provider first).

        Raises:
            AuthError: as ``verify_token``.
        """
        keys = self.keys
        if self.provider is not None:
            await self.provider.know(key_id_of(token))
            keys = dataclasses.replace(keys, public=self.provider.keys)
        return verify_token(token, keys, leeway=self.leeway)


def verify_token(token: str, keys: TokenKeys, *, leeway: float = 30.0) -> Identity:
    """Check a token and return the identity it carries.

    Raises:
        AuthError: the token is malformed, wrongly signed (or with a key this
            server does not have), expired, lacks ``exp``/``iat`` (or the
            configured ``iss``/``aud``), or names no user.
    """
    required = ["exp", "iat"] + ["iss"] * (keys.issuer is not None) + ["aud"] * (keys.audience is not None)
    key, algorithm = keys.key_of(token)
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            leeway=leeway,
            issuer=keys.issuer,
            audience=keys.audience,
            options={"require": required, "verify_signature": True},
        )
    except jwt.ExpiredSignatureError:
        raise AuthError(f"the token expired{_expiry(token)}") from None
    except jwt.InvalidSignatureError:
        raise AuthError("the token is signed with another key (a token of another server?)") from None
    except jwt.DecodeError:
        raise AuthError("the token is not a valid JWT") from None
    except jwt.InvalidIssuerError:
        raise AuthError(f"the token is not from {keys.issuer!r} (its 'iss')") from None
    except jwt.InvalidAudienceError:
        raise AuthError(f"the token is not meant for {keys.audience!r} (its 'aud')") from None
    except jwt.InvalidTokenError as error:
        # The rest name a claim: missing exp/iat, iat or nbf in the future, a bad algorithm.
        raise AuthError(f"the token is not acceptable: {_words(error)}") from None
    for name in ("exp", "iat", "nbf"):
        if name in claims and not _is_time(claims[name]):
            # PyJWT lets ``exp: 10**400`` and ``iat: true`` through; neither is a time.
            raise AuthError(f"invalid token: '{name}' is not a time in seconds")
    user = user_of(claims)
    if user is None or len(user) > MAX_USER_CHARS:
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


def mint_token(
    secret: str,
    user: str,
    ttl: float = 3600.0,
    *,
    key_id: str | None = None,
    issuer: str | None = None,
    audience: str | None = None,
) -> str:
    """A token for ``user`` valid for ``ttl`` seconds (negative: already expired).

    Args:
        secret: The key that signs it.
        user: Its subject.
        ttl: Seconds it is valid for.
        key_id: The id of ``secret`` among the server's keys, put in the header as ``kid``.
        issuer: Its ``iss``, when the server checks one.
        audience: Its ``aud``, when the server checks one.
    """
    now = int(time.time())
    claims: dict[str, Any] = {"sub": user, "iat": now, "exp": now + int(ttl)}
    claims |= {name: value for name, value in (("iss", issuer), ("aud", audience)) if value is not None}
    headers = {"kid": key_id} if key_id is not None else None
    return jwt.encode(claims, secret, algorithm=ALGORITHM, headers=headers)


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
