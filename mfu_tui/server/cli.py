"""Handlers of ``mfu-chat serve`` and ``mfu-chat token`` (imported only when they run)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from mfu_tui.file_lock import DatabaseInUse, Lock, hold_database
from mfu_tui.model_server import is_model_server_url
from mfu_tui.server import logs
from mfu_tui.server.auth import MAX_USER_CHARS, mint_token
from mfu_tui.server.config import ConfigError, ServerConfig, Siblings, cannot_listen, env_defaults, read_jwt_keys

log = logging.getLogger(__name__)

EXIT_CONFIG = 2
#: Seconds a thread of a worker of ``--workers`` may keep the GIL while another waits for it.
WORKER_SWITCH_INTERVAL = 0.0005


def run_serve(args: argparse.Namespace) -> int:
    """``mfu-chat serve``: run until SIGTERM or SIGINT; 0 on a clean stop, 2 on bad settings."""
    try:
        config = _config_from(args)
    except ConfigError as error:
        print(f"mfu-chat serve: {error}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        run = _runner(args.loop)
    except ImportError:
        print("mfu-chat serve: --loop uvloop needs uvloop: pip install 'mfu-chat[speed]'", file=sys.stderr)
        return EXIT_CONFIG
    log_format = args.log_format or os.environ.get("MFU_LOG_FORMAT") or "text"
    if log_format not in logs.LOG_FORMATS:
        print(f"mfu-chat serve: MFU_LOG_FORMAT must be text or json, got {log_format!r}", file=sys.stderr)
        return EXIT_CONFIG
    logs.configure(args.log_level, log_format)
    if args.worker_index is None:  # a worker inherits its supervisor's limit, raised or not: said once, by it
        _raise_file_limit()
    try:
        # Before the store ends any answer left streaming: they may be another server's, still running.
        # A worker's supervisor holds the lock for all its workers.
        database_lock = _hold_database(config) if args.worker_index is None else None
    except DatabaseInUse as error:
        refusal = error.says("mfu-chat server")
        print(f"mfu-chat serve: {refusal}: stop it, or give this one another --db", file=sys.stderr)
        return EXIT_CONFIG
    except OSError as error:  # the lock file cannot be made beside the database
        from mfu_tui.server.store.sqlite import unusable_file

        print(f"mfu-chat serve: {unusable_file(Path(config.database()), error)}", file=sys.stderr)
        return 1
    try:
        if args.workers > 1 and args.worker_index is None:
            return _supervise(config, args)
        run(_serve(config, lifeline=args.worker_index is not None))
    except OSError as error:  # the port is taken, the db directory is not writable...
        print(f"mfu-chat serve: {error}", file=sys.stderr)
        return 1
    finally:
        if database_lock is not None:
            database_lock.release()
    return 0


def _hold_database(config: ServerConfig) -> Lock | None:
    """On SQLite, the lock of the one server writing the file (``file_lock.hold_database``); ``None`` on PostgreSQL.

    Raises:
        DatabaseInUse: Another server writes the file.
    """
    from mfu_tui.server.store.postgres import is_postgres_url

    location = config.database()
    return None if is_postgres_url(location) else hold_database(Path(location))


def _supervise(config: ServerConfig, args: argparse.Namespace) -> int:
    """``--workers N``: hold the ports, start the workers on them, keep them running (``workers.py``)."""
    from mfu_tui.server.workers import Supervisor, WorkerFailed, check_metrics_ports, reserve_port

    try:
        check_metrics_ports(config, args.workers)
    except OSError as error:
        print(f"mfu-chat serve: {error}", file=sys.stderr)
        return 1
    holders = []
    ports = []
    for flag, port in (("--port", config.port), ("--api-port", config.api_port)):
        if port is None:
            continue
        try:
            holders.append(reserve_port(config.host, port))
        except OSError as error:
            for holder in holders:
                holder.close()
            print(f"mfu-chat serve: {cannot_listen(error, ('--host', config.host), (flag, port))}", file=sys.stderr)
            return 1
        ports += [flag, str(holders[-1].getsockname()[1])]
    host = f"[{config.host}]" if ":" in config.host else config.host
    url = f"ws://{host}:{ports[1]}/ws"
    # The workers get the same arguments, then the ports resolved (argparse keeps the last of a flag).
    arguments = sys.argv[sys.argv.index("serve") + 1 :] + ports
    try:
        asyncio.run(Supervisor(config, args.workers, arguments).run(url))
    except WorkerFailed:
        print("mfu-chat serve: a worker did not start (its error is above)", file=sys.stderr)
        return 1
    except OSError as error:  # the database cannot be opened...
        print(f"mfu-chat serve: {error}", file=sys.stderr)
        return 1
    finally:
        for holder in holders:
            holder.close()
    return 0


def _runner(loop: str) -> Callable[[Coroutine[Any, Any, None]], None]:
    """What runs the server: uvloop's ``run`` for ``"uvloop"``, or ``"auto"`` with uvloop installed; else asyncio's.

    uvloop's transports read and write in C, so each relayed chunk costs
    less CPU (docs/benchmarks.md). It is optional: the ``speed`` extra.

    Raises:
        ImportError: ``"uvloop"`` without uvloop installed.
    """
    if loop != "asyncio":
        try:
            import uvloop
        except ImportError:
            if loop == "uvloop":
                raise
        else:
            return uvloop.run
    return asyncio.run


def _raise_file_limit() -> None:
    """Allow as many open files as the system lets this process have: every connection is one.

    The soft limit is often 1,024 while the hard one is far higher; a server
    that hits the soft one can no longer accept anyone.
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as error:  # an unlimited hard limit may be more than the kernel allows
        log.warning("could not raise the open-files limit from %d: %s", soft, error)
        return
    log.info("open files allowed: %d (was %d)", hard, soft)


def run_token(args: argparse.Namespace) -> int:
    """``mfu-chat token``: print a token for ``--user``, signed as the server would check it.

    With ``--key-id``, with that key of ``MFU_JWT_KEYS_FILE`` (its id in the
    header); else with ``MFU_JWT_SECRET``. ``MFU_JWT_ISSUER`` and
    ``MFU_JWT_AUDIENCE`` go in as ``iss`` and ``aud``.
    """
    try:
        # What the server would refuse: a token naming no user, or one expired as it is printed.
        if not 1 <= len(args.user) <= MAX_USER_CHARS:
            raise ConfigError(f"--user must be a name of 1 to {MAX_USER_CHARS} characters, got {len(args.user)}")
        if args.ttl <= 0:
            raise ConfigError(f"--ttl must be a positive number of seconds, got {args.ttl}")
        settings = env_defaults()
        if not os.environ.get("MFU_JWT_SECRET") and not settings.get("jwt_keys"):
            # Not serve's advice: an identity provider's keys (MFU_JWT_JWKS_URL) check tokens, they cannot sign one.
            raise ConfigError("MFU_JWT_SECRET is not set: set it, or give --key-id with a key of MFU_JWT_KEYS_FILE")
        keys = ServerConfig(secret=os.environ.get("MFU_JWT_SECRET", ""), **settings).token_keys
        secret = keys.secret if args.key_id is None else keys.by_id.get(args.key_id)
        if secret is None and args.key_id is None:
            raise ConfigError(f"MFU_JWT_SECRET is not set: give --key-id, one of {', '.join(keys.by_id)}")
        if secret is None:
            known = ", ".join(keys.by_id) or "none: set MFU_JWT_KEYS_FILE"
            raise ConfigError(f"no key {args.key_id!r} in the keys file (its ids: {known})")
    except ConfigError as error:
        print(f"mfu-chat token: {error}", file=sys.stderr)
        return EXIT_CONFIG
    token = mint_token(secret, args.user, args.ttl, key_id=args.key_id, issuer=keys.issuer, audience=keys.audience)
    print(token)
    return 0


def _config_from(args: argparse.Namespace) -> ServerConfig:
    values: dict[str, object] = dict(env_defaults())
    # Flags win over the environment.
    for flag, field in (
        ("demo_words", "demo_words"),
        ("demo_delay_ms", "demo_delay_ms"),
        ("ping_interval", "ping_interval"),
        ("ping_timeout", "ping_timeout"),
        ("replay_window", "replay_window"),
        ("rate_limit", "messages_per_minute"),
        ("send_queue_bytes", "send_queue_bytes"),
        ("db", "db_path"),
        ("broker", "broker"),
        ("node_id", "node_id"),
        ("lease", "lease"),
        ("api_port", "api_port"),
        ("max_answer_chars", "max_answer_chars"),
        ("connections_per_user", "connections_per_user"),
        ("reply_bytes_per_user", "reply_bytes_per_user"),
        ("answers_per_user", "answers_per_user"),
        ("storage_per_user", "storage_per_user_mib"),
        ("max_attachment_bytes", "max_attachment_bytes"),
        ("handshake_timeout", "handshake_timeout"),
        ("drain_timeout", "drain_timeout"),
        ("max_chat_age", "max_chat_age_days"),
        ("max_handshakes", "max_handshakes"),
        ("upstream_idle_timeout", "upstream_idle_timeout"),
        ("metrics_port", "metrics_port"),
        ("metrics_host", "metrics_host"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            values[field] = value
    if values.get("ping_interval") == 0:
        values["ping_interval"] = None  # 0 turns keepalive off
    if getattr(args, "jwt_keys_file", None):
        values["jwt_keys"] = read_jwt_keys(Path(args.jwt_keys_file))
    for flag in ("jwt_issuer", "jwt_audience", "jwt_jwks_url"):
        if getattr(args, flag, None):
            values[flag] = getattr(args, flag)
    # --cors-origin is repeatable: the flags given replace MFU_CORS_ORIGINS as a whole.
    origins = getattr(args, "cors_origin", None)
    if origins:
        values["cors_origins"] = tuple(origins)
    proxies = getattr(args, "trusted_proxy", None)
    if proxies:  # repeatable like --cors-origin: the flags replace MFU_TRUSTED_PROXIES
        values["trusted_proxies"] = tuple(proxies)
    provider = args.provider
    if provider not in ("demo", "openai"):  # a URL: the openai provider there, as the app's --provider takes it
        values["openai_base_url"] = _provider_url(provider)
        provider = "openai"
    if getattr(args, "workers", 1) < 1:
        raise ConfigError("--workers must be at least 1")
    if getattr(args, "worker_index", None) is not None:
        _as_worker(values, args)
    return ServerConfig(
        secret=os.environ.get("MFU_JWT_SECRET", ""),
        host=args.host,
        port=args.port,
        provider=provider,
        **values,  # type: ignore[arg-type]
    )


def _provider_url(value: str) -> str:
    """``value``, the ``--provider`` URL of an OpenAI-compatible server.

    Raises:
        ConfigError: It is not an http(s) URL naming a host (and a port, if any, that is a number).
    """
    if not is_model_server_url(value):
        raise ConfigError(
            "--provider must be demo, openai, or the http:// or https:// URL of an OpenAI-compatible server, "
            f"got {value!r}"
        )
    return value


def _as_worker(values: dict[str, object], args: argparse.Namespace) -> None:
    """Settings of worker ``--worker-index`` of ``--workers``: a node of its own, sharing the port."""
    index = args.worker_index
    base = values.get("node_id") or f"{socket.gethostname()}:{args.port}"
    values["node_id"] = f"{base}/worker-{index}"
    values["siblings"] = Siblings(Path(args.worker_dir), index, args.workers)
    metrics_port = values.get("metrics_port")
    if isinstance(metrics_port, int) and metrics_port:  # one listener per worker: its figures are its own
        values["metrics_port"] = metrics_port + index


async def _serve(config: ServerConfig, *, lifeline: bool = False) -> None:
    """Run until SIGTERM or SIGINT; ``lifeline``: a worker of ``--workers``, which exits when its stdin closes."""
    from mfu_tui.server.app import ChatServer, freeze_what_lives

    if lifeline:
        # On SQLite a worker waits for its turn on the file's lock in a thread, which needs the GIL
        # back to hand the turn to the event loop, while the loop holds it up to the switch interval
        # (5 ms): the sibling workers wait that long too. 0.5 ms keeps the turns short.
        sys.setswitchinterval(WORKER_SWITCH_INTERVAL)
    server = ChatServer(config)
    await server.start()
    freeze_what_lives()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if config.speaks_for_the_workers:  # every worker runs the same loop
        log.info("event loop: %s.%s", type(loop).__module__, type(loop).__qualname__)
    interrupts = 0

    def interrupted() -> None:
        nonlocal interrupts
        interrupts += 1
        stop.set()
        # Ctrl-C twice: no more waiting for the answers. Only SIGINT counts: a worker of --workers
        # gets SIGTERM both from systemd and from its supervisor, and one Ctrl-C gives it one of each.
        if interrupts == 2:
            server.end_drain()

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, interrupted)
    # The one line on stdout: tests and the app's embedded mode read the port from it. After the handlers:
    # a SIGTERM sent as soon as it is read stops the server cleanly instead of killing it.
    print(f"mfu-chat serve: listening on {server.url}", flush=True)
    if lifeline:
        await loop.connect_read_pipe(_Lifeline, sys.stdin)
    await stop.wait()
    logs.event(log, "stopping", "stopping", node=server.node_id)
    await server.stop()


class _Lifeline(asyncio.Protocol):
    """A worker's stdin, a pipe from its supervisor: closed, the supervisor is gone and the worker exits at once.

    At once, as if killed, rather than draining: a supervisor started again
    ends every answer the last run left streaming, and on SQLite nothing
    would fence off a chunk that this worker stored after that. What it was
    generating is stored up to its last commit (the store survives a kill),
    and the next start ends it as interrupted.
    """

    def connection_lost(self, exc: Exception | None) -> None:
        log.error("the supervisor is gone: exiting at once")
        logging.shutdown()
        os._exit(1)
