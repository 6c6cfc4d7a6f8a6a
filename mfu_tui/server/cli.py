"""Handlers of ``mfu-chat serve`` and ``mfu-chat token`` (imported only when they run)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from mfu_tui.server import logs
from mfu_tui.server.auth import mint_token
from mfu_tui.server.config import ConfigError, ServerConfig, env_defaults

log = logging.getLogger(__name__)

EXIT_CONFIG = 2


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
    logs.configure(args.log_level)
    _raise_file_limit()
    try:
        run(_serve(config))
    except OSError as error:  # the port is taken, the db directory is not writable...
        print(f"mfu-chat serve: {error}", file=sys.stderr)
        return 1
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
    """``mfu-chat token``: print a token for ``--user`` signed with ``MFU_JWT_SECRET``."""
    try:
        secret = _secret()
    except ConfigError as error:
        print(f"mfu-chat token: {error}", file=sys.stderr)
        return EXIT_CONFIG
    print(mint_token(secret, args.user, args.ttl))
    return 0


def _secret() -> str:
    secret = os.environ.get("MFU_JWT_SECRET", "")
    if not secret:
        raise ConfigError("MFU_JWT_SECRET is not set; set it to a secret of at least 32 bytes")
    ServerConfig(secret=secret)  # validates the length
    return secret


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
        ("max_handshakes", "max_handshakes"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            values[field] = value
    for field in ("ping_interval", "ping_timeout"):
        if values.get(field) == 0:
            values[field] = None  # 0 turns keepalive off
    # --cors-origin is repeatable: the flags given replace MFU_CORS_ORIGINS as a whole.
    origins = getattr(args, "cors_origin", None)
    if origins:
        values["cors_origins"] = tuple(origins)
    return ServerConfig(
        secret=_secret(),
        host=args.host,
        port=args.port,
        provider=args.provider,
        **values,  # type: ignore[arg-type]
    )


async def _serve(config: ServerConfig) -> None:
    from mfu_tui.server.app import ChatServer

    server = ChatServer(config)
    await server.start()
    # The one line on stdout: tests and the app's embedded mode read the port from it.
    print(f"mfu-chat serve: listening on {server.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    log.info("event loop: %s.%s", type(loop).__module__, type(loop).__qualname__)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("stopping")
    await server.stop()
