"""Settings of one server instance.

``ServerConfig`` holds every knob of ``mfu-chat serve`` in one place, with the
defaults of issue 3. The command line fills it from flags and environment
variables; tests build it directly with small limits and short intervals.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TypedDict, TypeVar
from urllib.parse import urlsplit

from mfu_tui.protocol import DEFAULT_MAX_ATTACHMENT_BYTES
from mfu_tui.server.auth import TokenKeys
from mfu_tui.server.store.rows import MAX_SENT_MESSAGE_CHARS

#: URL schemes ``--broker`` accepts.
BROKER_SCHEMES = ("redis://", "rediss://", "unix://")

#: The smallest HMAC secret we accept, in bytes (RFC 7518 asks for >= 256 bits).
MIN_SECRET_BYTES = 32
#: Characters a key id (``kid``) may have.
MAX_KEY_ID_CHARS = 64

#: A browser origin as the ``Origin`` header carries it: ``scheme://host[:port]``, nothing after.
_ORIGIN = re.compile(r"https?://[^\s/?#]+")


class ConfigError(ValueError):
    """The configuration cannot work; the message is one line for the operator."""


@dataclasses.dataclass
class ServerConfig:
    """Everything ``ChatServer`` needs to run."""

    secret: str
    """HS256 secret of the tokens without a key id (``MFU_JWT_SECRET``); at least 32 bytes.

    Empty only with ``jwt_keys``: then every token must name its key."""

    jwt_keys: dict[str, str] = dataclasses.field(default_factory=dict)
    """HS256 secrets by key id (``kid`` in a token's header), from ``--jwt-keys-file`` or
    ``MFU_JWT_KEYS_FILE``; each at least 32 bytes. Several at once let a secret be rotated."""

    jwt_issuer: str | None = None
    """The ``iss`` every token must carry (``--jwt-issuer``, ``MFU_JWT_ISSUER``); ``None``: not checked."""

    jwt_audience: str | None = None
    """An ``aud`` every token must carry (``--jwt-audience``, ``MFU_JWT_AUDIENCE``); ``None``: not checked."""

    jwt_jwks_url: str | None = None
    """The JWKS URL of an identity provider whose tokens (RS256, ES256, naming their key) are let in
    (``--jwt-jwks-url``, ``MFU_JWT_JWKS_URL``): ``https://``, or ``http://`` on a loopback address."""

    host: str = "127.0.0.1"
    """Address to listen on."""

    port: int = 5001
    """Port to listen on; 0 picks a free one (read it back from ``ChatServer.port``)."""

    api_port: int | None = None
    """Port of the REST API for the seed's browser page (``--api-port``, ``MFU_API_PORT``), on ``host`` too.

    ``None``: no REST listener; 0 picks a free one (read it back from ``ChatServer.api_port``).
    """

    cors_origins: tuple[str, ...] = ()
    """Browser origins allowed to call the REST API (``--cors-origin``, ``MFU_CORS_ORIGINS``); none by default."""

    db_path: Path | str | None = None
    """SQLite file or ``postgresql://`` URL (``--db``, ``MFU_DATABASE_URL``); ``None``: the user data dir's."""

    broker: str | None = None
    """``redis://`` URL of the fan-out between nodes (``--broker``, ``MFU_BROKER_URL``); ``None``: one node."""

    node_id: str | None = None
    """This node's name (``--node-id``, ``MFU_NODE_ID``); ``None`` means ``HOST:PORT`` (random for port 0)."""

    broker_heartbeat: float = 5.0
    """Seconds of silence on the link to Redis before a PING; no PONG within as long again: the link is lost."""

    lease: float = 10.0
    """Seconds a node's claim on its running answers lasts unless renewed (renewed every third of it)."""

    provider: str = "demo"
    """Where answers come from: ``demo`` (offline) or ``openai`` (any compatible endpoint)."""

    demo_words: int = 120
    """Length of a demo answer, in words (``--demo-words``, ``MFU_DEMO_WORDS``)."""

    demo_delay_ms: float = 30.0
    """Pause between two demo words (``--demo-delay-ms``, ``MFU_DEMO_DELAY_MS``)."""

    openai_base_url: str = "http://127.0.0.1:11434"
    """Root of the OpenAI-compatible API, without ``/v1`` (``MFU_OPENAI_BASE_URL``)."""

    openai_api_key: str | None = None
    """Bearer key for the OpenAI-compatible API (``MFU_OPENAI_API_KEY``), if it needs one."""

    openai_model: str | None = None
    """Model used when a message names none (``MFU_OPENAI_MODEL``); else the first listed."""

    upstream_idle_timeout: float = 300.0
    """Seconds the model server may take to connect or send the next piece of an answer
    (``--upstream-idle-timeout``, ``MFU_UPSTREAM_IDLE_TIMEOUT``); long enough for a cold model load."""

    ping_interval: float | None = 25.0
    """Seconds between protocol-level pings; ``None`` turns keepalive off."""

    ping_timeout: float | None = 10.0
    """Seconds a peer has to answer a ping before it is closed and freed."""

    close_timeout: float = 5.0
    """Seconds to wait for the peer's close frame before dropping the TCP connection."""

    drain_timeout: float = 0.0
    """Seconds a stopping node lets its running answers end by themselves after moving its clients
    (``--drain-timeout``, ``MFU_DRAIN_TIMEOUT``); what still runs then is stored as interrupted."""

    handshake_timeout: float = 5.0
    """Seconds a new connection has to finish its opening handshake (``--handshake-timeout``,
    ``MFU_HANDSHAKE_TIMEOUT``); then it is dropped."""

    max_handshakes: int = 200
    """Connections that may be in their opening handshake at once (``--max-handshakes``,
    ``MFU_MAX_HANDSHAKES``); past it the oldest of them is dropped."""

    max_frame_bytes: int = 1024 * 1024
    """Largest inbound frame (the codec's ``MAX_MESSAGE_FRAME_BYTES``); a bigger one closes with 1009."""

    send_queue_bytes: int = 1024 * 1024
    """Bytes a connection may have waiting to be sent before it is closed with 4000."""

    reply_bytes_per_user: int = 8 * 1024 * 1024
    """Bytes of replies waiting to be written across one user's connections on this node
    (``--reply-bytes-per-user``, ``MFU_REPLY_BYTES_PER_USER``); past it the user's frames wait to be read."""

    max_answer_chars: int = 1_000_000
    """Characters after which an answer ends with ``finish_reason: "length"`` (``--max-answer-chars``)."""

    connections_per_user: int = 20
    """Open WebSocket connections one user may hold on this node; one more is refused with HTTP 429."""

    answers_per_user: int = 3
    """Answers one user may have generating at once on this node, across chats (``--answers-per-user``,
    ``MFU_ANSWERS_PER_USER``); one more ``message`` gets ``rate_limited`` (the client sends it again later)."""

    storage_per_user_mib: float = 200.0
    """MiB of text one user's chats may hold before new messages and edits are refused with
    ``quota_exceeded`` (``--storage-per-user``, ``MFU_STORAGE_PER_USER``); 0: no quota."""

    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES
    """Bytes the files attached to one message may hold together (``--max-attachment-bytes``,
    ``MFU_MAX_ATTACHMENT_BYTES``); a larger file or message is refused with ``too_large``."""

    messages_per_minute: float = 60.0
    """Sustained rate of messages and edits per user."""

    message_burst: int = 20
    """How many generation requests a user may send at once before the rate applies."""

    replay_window: float = 600.0
    """Seconds after a message ends during which ``resume`` can still replay its chunks."""

    token_leeway: float = 30.0
    """Clock skew allowed on ``exp`` and ``iat``, in seconds (at most 30)."""

    @property
    def token_keys(self) -> TokenKeys:
        """The keys and claims tokens are checked with."""
        return TokenKeys(self.secret or None, self.jwt_keys, self.jwt_issuer, self.jwt_audience)

    def __post_init__(self) -> None:
        if not self.secret and not self.jwt_keys and not self.jwt_jwks_url:
            raise ConfigError(
                "MFU_JWT_SECRET is not set; set it to a secret of at least 32 bytes (or give a keys file, "
                "MFU_JWT_KEYS_FILE, or an identity provider's MFU_JWT_JWKS_URL)"
            )
        if self.jwt_jwks_url is not None and not _fetched_safely(self.jwt_jwks_url):
            raise ConfigError(
                "MFU_JWT_JWKS_URL must be an https:// URL (keys fetched in clear could be replaced on the way); "
                "http:// only on a loopback address"
            )
        if self.secret:
            _check_secret("MFU_JWT_SECRET", self.secret)
        for key_id, secret in self.jwt_keys.items():
            _check_secret(f"the key {key_id!r} of the keys file", secret)
        if not 0 <= self.token_leeway <= 30:
            raise ConfigError("token leeway must be between 0 and 30 seconds")
        if self.broker is not None and not self.broker.startswith(BROKER_SCHEMES):
            raise ConfigError(f"--broker must be a redis:// or rediss:// URL, got {self.broker.split('://')[0]}://")
        if self.lease <= 0:
            raise ConfigError("the lease must be a positive number of seconds")
        if not 1 <= self.max_answer_chars <= MAX_SENT_MESSAGE_CHARS:
            # A longer answer could be stored but never sent whole to a client.
            raise ConfigError(f"--max-answer-chars must be from 1 to {MAX_SENT_MESSAGE_CHARS}")
        if self.connections_per_user < 1:
            raise ConfigError("--connections-per-user must be at least 1")
        if self.handshake_timeout <= 0:
            raise ConfigError("--handshake-timeout must be a positive number of seconds")
        if self.max_handshakes < 1:
            raise ConfigError("--max-handshakes must be at least 1")
        if self.upstream_idle_timeout <= 0:
            raise ConfigError("--upstream-idle-timeout must be a positive number of seconds")
        if self.answers_per_user < 1:
            raise ConfigError("--answers-per-user must be at least 1")
        if self.storage_per_user_mib < 0:
            raise ConfigError("--storage-per-user must not be negative (0: no quota)")
        if self.max_attachment_bytes < 0:
            raise ConfigError("--max-attachment-bytes must not be negative (0: no attachments)")
        if self.reply_bytes_per_user < 1:
            raise ConfigError("--reply-bytes-per-user must be at least 1")
        if self.provider not in ("demo", "openai"):
            raise ConfigError(f"unknown provider {self.provider!r}: use demo or openai")
        if self.api_port is not None:
            if not 0 <= self.api_port <= 65535:
                raise ConfigError(f"--api-port must be a port number from 0 to 65535, got {self.api_port}")
            if self.api_port and self.api_port == self.port:
                raise ConfigError("--api-port must differ from --port: the REST API is a listener of its own")
        for origin in self.cors_origins:
            if not _ORIGIN.fullmatch(origin):
                # A browser sends exactly scheme://host[:port]; anything else would silently never match.
                raise ConfigError(f"a CORS origin is scheme://host[:port] with no path, got {origin!r}")

    @property
    def storage_quota(self) -> int | None:
        """Bytes of text one user may store, or None for no quota."""
        return int(self.storage_per_user_mib * 1024 * 1024) or None

    def database(self) -> Path | str:
        """The SQLite file (resolving the default location), or the PostgreSQL URL as given."""
        if isinstance(self.db_path, str) and self.db_path.startswith(("postgresql://", "postgres://")):
            return self.db_path
        if self.db_path is not None:
            return Path(self.db_path)
        import platformdirs

        return Path(platformdirs.user_data_dir("mfu-chat")) / "chat.sqlite3"

    def node_name(self) -> str:
        """This node's name: ``node_id``, else ``HOST:PORT``, else (port 0) a random one."""
        if self.node_id:
            return self.node_id
        if self.port:
            import socket

            return f"{socket.gethostname()}:{self.port}"
        import secrets

        return f"node-{secrets.token_hex(4)}"


class EnvSettings(TypedDict, total=False):
    """The ``ServerConfig`` keywords that environment variables can set (see ``env_defaults``)."""

    demo_words: int
    demo_delay_ms: float
    db_path: Path | str
    broker: str
    node_id: str
    openai_base_url: str
    openai_api_key: str
    openai_model: str
    upstream_idle_timeout: float
    api_port: int
    cors_origins: tuple[str, ...]
    reply_bytes_per_user: int
    answers_per_user: int
    storage_per_user_mib: float
    max_attachment_bytes: int
    handshake_timeout: float
    drain_timeout: float
    max_handshakes: int
    jwt_keys: dict[str, str]
    jwt_issuer: str
    jwt_audience: str
    jwt_jwks_url: str


def _fetched_safely(url: str) -> bool:
    """An ``https://`` URL, or ``http://`` to this machine (nothing on the way to tamper with it)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return bool(parts.hostname)
    if parts.scheme != "http" or not parts.hostname:
        return False
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return parts.hostname == "localhost"


def _check_secret(name: str, secret: str) -> None:
    """Refuse a secret shorter than ``MIN_SECRET_BYTES``, naming it (never showing it)."""
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"{name} must hold at least {MIN_SECRET_BYTES} bytes "
            f"(got {len(secret.encode())}); generate one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )


def read_jwt_keys(path: Path) -> dict[str, str]:
    """The secrets by key id of a keys file: TOML lines of ``"KEY_ID" = "SECRET"``.

    Raises:
        ConfigError: the file is missing, readable by others, not TOML, or holds
            something else than key ids and secrets (never shown).
    """
    try:
        mode = path.stat().st_mode
        text = path.read_text() if stat.S_ISREG(mode) else None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the keys file ({error.strerror or error})") from None
    if text is None:
        raise ConfigError(f"{path}: the keys file is not a regular file")
    if mode & 0o077:
        raise ConfigError(f"{path}: the keys file may be read by others (mode {mode & 0o777:o}): chmod 600 {path}")
    try:
        keys = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not TOML ({error})") from None
    for key_id, secret in keys.items():
        if not isinstance(secret, str) or not key_id.isprintable() or not 1 <= len(key_id) <= MAX_KEY_ID_CHARS:
            raise ConfigError(
                f'{path}: each line must be "KEY_ID" = "SECRET", an id of 1 to {MAX_KEY_ID_CHARS} characters'
            )
    if not keys:
        raise ConfigError(f"{path}: the keys file holds no key")
    return keys


def env_defaults(environ: os._Environ[str] | dict[str, str] = os.environ) -> EnvSettings:
    """Settings that come from environment variables, as ``ServerConfig`` keywords.

    Flags given on the command line win over these.
    """
    values: EnvSettings = {}
    if "MFU_DEMO_WORDS" in environ:
        values["demo_words"] = _number(environ, "MFU_DEMO_WORDS", int)
    if "MFU_DEMO_DELAY_MS" in environ:
        values["demo_delay_ms"] = _number(environ, "MFU_DEMO_DELAY_MS", float)
    # URLs that may carry a password are better kept out of argv (``ps`` shows it).
    if environ.get("MFU_DATABASE_URL"):
        values["db_path"] = environ["MFU_DATABASE_URL"]
    if environ.get("MFU_BROKER_URL"):
        values["broker"] = environ["MFU_BROKER_URL"]
    if environ.get("MFU_NODE_ID"):
        values["node_id"] = environ["MFU_NODE_ID"]
    if environ.get("MFU_OPENAI_BASE_URL"):
        values["openai_base_url"] = environ["MFU_OPENAI_BASE_URL"]
    if environ.get("MFU_OPENAI_API_KEY"):
        values["openai_api_key"] = environ["MFU_OPENAI_API_KEY"]
    if environ.get("MFU_OPENAI_MODEL"):
        values["openai_model"] = environ["MFU_OPENAI_MODEL"]
    if environ.get("MFU_UPSTREAM_IDLE_TIMEOUT"):
        values["upstream_idle_timeout"] = _number(environ, "MFU_UPSTREAM_IDLE_TIMEOUT", float)
    if environ.get("MFU_API_PORT"):
        values["api_port"] = _number(environ, "MFU_API_PORT", int)
    if environ.get("MFU_REPLY_BYTES_PER_USER"):
        values["reply_bytes_per_user"] = _number(environ, "MFU_REPLY_BYTES_PER_USER", int)
    if environ.get("MFU_ANSWERS_PER_USER"):
        values["answers_per_user"] = _number(environ, "MFU_ANSWERS_PER_USER", int)
    if environ.get("MFU_STORAGE_PER_USER"):
        values["storage_per_user_mib"] = _number(environ, "MFU_STORAGE_PER_USER", float)
    if environ.get("MFU_MAX_ATTACHMENT_BYTES"):
        values["max_attachment_bytes"] = _number(environ, "MFU_MAX_ATTACHMENT_BYTES", int)
    if environ.get("MFU_DRAIN_TIMEOUT"):
        values["drain_timeout"] = _number(environ, "MFU_DRAIN_TIMEOUT", float)
    if environ.get("MFU_HANDSHAKE_TIMEOUT"):
        values["handshake_timeout"] = _number(environ, "MFU_HANDSHAKE_TIMEOUT", float)
    if environ.get("MFU_MAX_HANDSHAKES"):
        values["max_handshakes"] = _number(environ, "MFU_MAX_HANDSHAKES", int)
    if environ.get("MFU_JWT_KEYS_FILE"):
        values["jwt_keys"] = read_jwt_keys(Path(environ["MFU_JWT_KEYS_FILE"]))
    if environ.get("MFU_JWT_ISSUER"):
        values["jwt_issuer"] = environ["MFU_JWT_ISSUER"]
    if environ.get("MFU_JWT_JWKS_URL"):
        values["jwt_jwks_url"] = environ["MFU_JWT_JWKS_URL"]
    if environ.get("MFU_JWT_AUDIENCE"):
        values["jwt_audience"] = environ["MFU_JWT_AUDIENCE"]
    if environ.get("MFU_CORS_ORIGINS"):
        values["cors_origins"] = split_origins(environ["MFU_CORS_ORIGINS"])
    return values


def split_origins(listed: str) -> tuple[str, ...]:
    """The origins of a comma-separated list (``MFU_CORS_ORIGINS``), blanks and spaces dropped."""
    return tuple(origin.strip() for origin in listed.split(",") if origin.strip())


_Number = TypeVar("_Number", int, float)


def _number(environ: os._Environ[str] | dict[str, str], name: str, kind: Callable[[str], _Number]) -> _Number:
    try:
        value = kind(environ[name])
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {environ[name]!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative")
    return value
