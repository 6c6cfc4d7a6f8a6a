"""Settings of one server instance.

``ServerConfig`` holds every knob of ``mfu-chat serve`` in one place, with the
defaults of issue 3. The command line fills it from flags and environment
variables; tests build it directly with small limits and short intervals.
"""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import os
import re
import socket
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TypedDict, TypeVar, cast
from urllib.parse import urlsplit

from mfu_tui.protocol import DEFAULT_MAX_ATTACHMENT_BYTES, SENT_MESSAGE_CHARS
from mfu_tui.server.auth import TokenKeys
from mfu_tui.server.client_address import parse_networks

#: URL schemes ``--broker`` accepts.
BROKER_SCHEMES = ("redis://", "rediss://", "unix://")

#: The smallest HMAC secret we accept, in bytes (RFC 7518 asks for >= 256 bits).
MIN_SECRET_BYTES = 32
#: The smallest ``--send-queue-bytes``: what a client reading at full speed may have waiting.
MIN_SEND_QUEUE_BYTES = 16 * 1024
#: Characters a key id (``kid``) may have.
MAX_KEY_ID_CHARS = 64

#: The start of a URL (``mysql://``), where ``--db`` takes a path.
_URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
#: A browser origin as the ``Origin`` header carries it: ``scheme://host[:port]``, nothing after.
_ORIGIN = re.compile(r"https?://[^\s/?#]+")


class ConfigError(ValueError):
    """The configuration cannot work; the message is one line for the operator."""


class CannotListen(OSError):
    """A listener cannot be opened where its flags say; one line naming them and what to do."""


def cannot_listen(error: OSError, host: tuple[str, str], port: tuple[str, int]) -> CannotListen:
    """``error``, met opening a listener, as one line naming its flags (``host`` and ``port``: flag and value)."""
    (host_flag, address), (port_flag, number) = host, port
    if isinstance(error, socket.gaierror) or error.errno == errno.EADDRNOTAVAIL:
        advice = f"give an address of this machine in {host_flag} (0.0.0.0: every interface)"
    elif error.errno == errno.EADDRINUSE:
        advice = f"another program listens there: stop it, or give another {port_flag}"
    else:
        advice = f"check {host_flag} and {port_flag}"
    # asyncio words its errors "error while attempting to bind on address ...": the system's words are enough.
    reason = error.strerror if isinstance(error, socket.gaierror) or not error.errno else os.strerror(error.errno)
    return CannotListen(
        f"cannot listen on {address}:{number} ({host_flag} {address} {port_flag} {number}): {reason}; {advice}"
    )


@dataclasses.dataclass(frozen=True)
class Siblings:
    """A worker's place among the workers of one ``mfu-chat serve --workers N``.

    Without ``--broker``, worker ``index`` listens for its siblings on
    ``directory / f"{index}.sock"`` and connects to theirs (``peer_hub.PeerHub``);
    on SQLite, their writers take turns through ``directory / "sqlite-writer.lock"``.
    """

    directory: Path
    """The supervisor's private directory (mode 700) of the workers' sockets and lock."""

    index: int
    """This worker's number, 0 to ``count - 1``."""

    count: int
    """How many workers there are."""


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

    metrics_port: int | None = None
    """Port of the Prometheus ``/metrics`` listener (``--metrics-port``, ``MFU_METRICS_PORT``), on ``metrics_host``.

    ``None``: no metrics listener; 0 picks a free one (read it back from ``ChatServer.metrics_port``).
    """

    metrics_host: str = "127.0.0.1"
    """Address of the metrics listener (``--metrics-host``, ``MFU_METRICS_HOST``): loopback unless asked."""

    trusted_proxies: tuple[str, ...] = ()
    """Networks of the proxies whose ``X-Forwarded-For`` names the client in the logs (``--trusted-proxy``,
    ``MFU_TRUSTED_PROXIES``); none by default: the logs name the TCP peer."""

    db_path: Path | str | None = None
    """SQLite file or ``postgresql://`` URL (``--db``, ``MFU_DATABASE_URL``); ``None``: the user data dir's."""

    broker: str | None = None
    """``redis://`` URL of the fan-out between nodes (``--broker``, ``MFU_BROKER_URL``); ``None``: one node."""

    node_id: str | None = None
    """This node's name (``--node-id``, ``MFU_NODE_ID``); ``None`` means ``HOST:PORT`` (random for port 0)."""

    siblings: Siblings | None = None
    """A worker of ``--workers``: its place among the others. It listens with ``SO_REUSEPORT`` (the kernel
    spreads the connections over the workers); on SQLite it marks the answers it generates with its node id
    (a restarted worker ends its own); without ``--broker`` it links to the others for the fan-out."""

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

    drain_timeout: float = 20.0
    """Seconds a stopping node lets its running answers end by themselves after moving its clients
    (``--drain-timeout``, ``MFU_DRAIN_TIMEOUT``); what still runs then is stored as interrupted.
    SIGTERM is how every supervisor asks for a graceful stop, within a grace period of its own
    (Kubernetes 30 s, systemd 90 s): 20 s lets most answers end and still fits in the shortest of
    these; a node with no answer running stops at once all the same. 0 cuts them at once."""

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

    max_chat_age_days: float | None = None
    """Days after its last activity a chat is deleted (``--max-chat-age``, ``MFU_MAX_CHAT_AGE``);
    ``None``: chats are kept until their user deletes them."""

    retention_interval: float = 3600.0
    """Seconds between two runs of the deletion of old chats (with ``max_chat_age_days``)."""

    @property
    def token_keys(self) -> TokenKeys:
        """The keys and claims tokens are checked with."""
        return TokenKeys(self.secret or None, self.jwt_keys, self.jwt_issuer, self.jwt_audience)

    def __post_init__(self) -> None:
        self._check_tokens()
        self._check_bounds()
        self._check_listeners()
        self._check_database()

    def _check_tokens(self) -> None:
        """Some way to check tokens, each secret long enough, keys fetched safely."""
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

    def _check_bounds(self) -> None:
        """Each limit within what works: the first that is not, in one line."""
        bounds = (
            (0 <= self.token_leeway <= 30, "token leeway must be between 0 and 30 seconds"),
            (self.lease > 0, "the lease must be a positive number of seconds"),
            # A longer answer could be stored but never sent whole to a client.
            (
                1 <= self.max_answer_chars <= SENT_MESSAGE_CHARS,
                f"--max-answer-chars must be from 1 to {SENT_MESSAGE_CHARS}",
            ),
            (self.connections_per_user >= 1, "--connections-per-user must be at least 1"),
            # Fewer bytes than a few pushed frames hold would close every client reading at full speed.
            (
                self.send_queue_bytes >= MIN_SEND_QUEUE_BYTES,
                f"--send-queue-bytes must be at least {MIN_SEND_QUEUE_BYTES} (16 KiB)",
            ),
            (self.drain_timeout >= 0, "--drain-timeout must not be negative (0: end the running answers at once)"),
            (
                self.ping_interval is None or self.ping_interval > 0,
                "--ping-interval must be a positive number of seconds (0: no keepalive)",
            ),
            (
                self.ping_timeout is None or self.ping_timeout > 0,
                "--ping-timeout must be a positive number of seconds",
            ),
            (self.messages_per_minute > 0, "--rate-limit must be a positive number of messages per minute"),
            (self.demo_words >= 1, "--demo-words must be at least 1"),
            (self.handshake_timeout > 0, "--handshake-timeout must be a positive number of seconds"),
            (self.max_handshakes >= 1, "--max-handshakes must be at least 1"),
            (self.upstream_idle_timeout > 0, "--upstream-idle-timeout must be a positive number of seconds"),
            (self.answers_per_user >= 1, "--answers-per-user must be at least 1"),
            (self.storage_per_user_mib >= 0, "--storage-per-user must not be negative (0: no quota)"),
            (self.max_attachment_bytes >= 0, "--max-attachment-bytes must not be negative (0: no attachments)"),
            (self.reply_bytes_per_user >= 1, "--reply-bytes-per-user must be at least 1"),
            (
                self.max_chat_age_days is None or self.max_chat_age_days > 0,
                "--max-chat-age must be a positive number of days",
            ),
            (self.provider in ("demo", "openai"), f"unknown provider {self.provider!r}: use demo or openai"),
        )
        for within, problem in bounds:
            if not within:
                raise ConfigError(problem)

    def _check_database(self) -> None:
        """``--db`` a file, or a URL of a database this server knows (``database_location``)."""
        if self.db_path is not None:
            database_location(self.db_path)

    def _check_listeners(self) -> None:
        """The broker's URL, the extra listeners' ports, trusted proxies and CORS origins well formed."""
        for flag, host in (("--host", self.host), ("--metrics-host", self.metrics_host)):
            if not host.strip():
                # "" would listen on every interface: what systemd passes for an unset ${MFU_HOST}.
                raise ConfigError(f"{flag} is empty (an unset variable?): give an address, 0.0.0.0 for every interface")
        if self.broker is not None and not self.broker.startswith(BROKER_SCHEMES):
            raise ConfigError(f"--broker must be a redis:// or rediss:// URL, got {self.broker.split('://')[0]}://")
        for flag, port, taken in (
            ("--port", self.port, ()),
            ("--api-port", self.api_port, (self.port,)),
            ("--metrics-port", self.metrics_port, (self.port, self.api_port)),
        ):
            if port is None:
                continue
            if not 0 <= port <= 65535:
                raise ConfigError(f"{flag} must be a port number from 0 to 65535, got {port}")
            if port and port in taken:
                raise ConfigError(f"{flag} must differ from the server's other ports: it is a listener of its own")
        try:
            parse_networks(self.trusted_proxies)
        except ValueError as error:
            raise ConfigError(f"--trusted-proxy takes an address or a network (10.0.0.0/8): {error}") from None
        for origin in self.cors_origins:
            if not _ORIGIN.fullmatch(origin):
                # A browser sends exactly scheme://host[:port]; anything else would silently never match.
                raise ConfigError(f"a CORS origin is scheme://host[:port] with no path, got {origin!r}")

    @property
    def storage_quota(self) -> int | None:
        """Bytes of text one user may store, or None for no quota."""
        return int(self.storage_per_user_mib * 1024 * 1024) or None

    @property
    def speaks_for_the_workers(self) -> bool:
        """True on a single node and on worker 0 of ``--workers``: what every worker would log alike, it logs once."""
        return self.siblings is None or self.siblings.index == 0

    def database(self) -> Path | str:
        """The SQLite file (resolving the default location), or the PostgreSQL URL as given."""
        return database_location(self.db_path)

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
    metrics_port: int
    metrics_host: str
    trusted_proxies: tuple[str, ...]
    reply_bytes_per_user: int
    answers_per_user: int
    storage_per_user_mib: float
    max_attachment_bytes: int
    handshake_timeout: float
    drain_timeout: float
    max_chat_age_days: float
    max_handshakes: int
    jwt_keys: dict[str, str]
    jwt_issuer: str
    jwt_audience: str
    jwt_jwks_url: str


def database_location(db_path: Path | str | None) -> Path | str:
    """The database ``--db`` names, or the default SQLite file.

    A ``postgresql://`` URL is kept as given; a SQLite file, or ``sqlite:///`` and its absolute path, is a ``Path``.

    Raises:
        ConfigError: A URL of another scheme, or a ``sqlite://`` one naming a host.
    """
    if isinstance(db_path, str) and db_path.startswith(("postgresql://", "postgres://")):
        return db_path
    if isinstance(db_path, str) and _URL_SCHEME.match(db_path):
        # Read as a path, it would make a directory named after the scheme (./sqlite:/...).
        parts = urlsplit(db_path)
        if parts.scheme != "sqlite" or parts.netloc or not parts.path:
            raise ConfigError(
                f"--db (MFU_DATABASE_URL) takes a SQLite file, sqlite:///ABSOLUTE/PATH or a postgresql:// URL, "
                f"got {db_path.split('://')[0]}://"
            )
        return Path("/" + parts.path.lstrip("/"))  # sqlite:////abs/path too, as SQLAlchemy writes it
    if db_path is not None:
        return Path(db_path)
    import platformdirs

    return Path(platformdirs.user_data_dir("mfu-chat")) / "chat.sqlite3"


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
            "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
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

    Flags given on the command line win over these. A variable set to an
    empty text counts as unset.
    """
    values = {field: read(name, environ[name]) for name, field, read in _ENVIRONMENT if environ.get(name)}
    return cast(EnvSettings, values)


def split_list(listed: str) -> tuple[str, ...]:
    """The items of a comma-separated list (``MFU_CORS_ORIGINS``, ``MFU_TRUSTED_PROXIES``), blanks dropped."""
    return tuple(origin.strip() for origin in listed.split(",") if origin.strip())


def _whole(name: str, text: str) -> int:
    return _number(name, text, int)


def _decimal(name: str, text: str) -> float:
    return _number(name, text, float)


_Number = TypeVar("_Number", int, float)


def _number(name: str, text: str, kind: Callable[[str], _Number]) -> _Number:
    try:
        value = kind(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {text!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative")
    return value


def _as_is(name: str, text: str) -> str:
    return text


def _listed(name: str, text: str) -> tuple[str, ...]:
    return split_list(text)


def _keys_file(name: str, text: str) -> dict[str, str]:
    return read_jwt_keys(Path(text))


#: The environment variables that set ``ServerConfig`` fields: (variable, field, how its text is read).
#: URLs that may carry a password are better kept out of argv (``ps`` shows it): they have variables.
_ENVIRONMENT: tuple[tuple[str, str, Callable[[str, str], object]], ...] = (
    ("MFU_DEMO_WORDS", "demo_words", _whole),
    ("MFU_DEMO_DELAY_MS", "demo_delay_ms", _decimal),
    ("MFU_DATABASE_URL", "db_path", _as_is),
    ("MFU_BROKER_URL", "broker", _as_is),
    ("MFU_NODE_ID", "node_id", _as_is),
    ("MFU_OPENAI_BASE_URL", "openai_base_url", _as_is),
    ("MFU_OPENAI_API_KEY", "openai_api_key", _as_is),
    ("MFU_OPENAI_MODEL", "openai_model", _as_is),
    ("MFU_UPSTREAM_IDLE_TIMEOUT", "upstream_idle_timeout", _decimal),
    ("MFU_API_PORT", "api_port", _whole),
    ("MFU_REPLY_BYTES_PER_USER", "reply_bytes_per_user", _whole),
    ("MFU_ANSWERS_PER_USER", "answers_per_user", _whole),
    ("MFU_STORAGE_PER_USER", "storage_per_user_mib", _decimal),
    ("MFU_MAX_ATTACHMENT_BYTES", "max_attachment_bytes", _whole),
    ("MFU_DRAIN_TIMEOUT", "drain_timeout", _decimal),
    ("MFU_MAX_CHAT_AGE", "max_chat_age_days", _decimal),
    ("MFU_HANDSHAKE_TIMEOUT", "handshake_timeout", _decimal),
    ("MFU_MAX_HANDSHAKES", "max_handshakes", _whole),
    ("MFU_JWT_KEYS_FILE", "jwt_keys", _keys_file),
    ("MFU_JWT_ISSUER", "jwt_issuer", _as_is),
    ("MFU_JWT_JWKS_URL", "jwt_jwks_url", _as_is),
    ("MFU_JWT_AUDIENCE", "jwt_audience", _as_is),
    ("MFU_CORS_ORIGINS", "cors_origins", _listed),
    ("MFU_METRICS_PORT", "metrics_port", _whole),
    ("MFU_METRICS_HOST", "metrics_host", _as_is),
    ("MFU_TRUSTED_PROXIES", "trusted_proxies", _listed),
)
