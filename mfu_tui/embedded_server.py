"""The server `mfu-chat` starts for itself when no server is configured.

``mfu_tui.local_server.LocalServer`` runs this module as a process of its own::

    MFU_PROVIDER=auto python -m mfu_tui.embedded_server --db PATH --secret-file PATH --user NAME \
        --discovery DIR [--grace SECONDS] [--log-level L]

It picks a provider as the user's ``provider`` setting says (``MFU_PROVIDER``,
kept out of argv because a URL may carry a password): ``auto`` uses an
OpenAI-compatible server such as Ollama at ``MFU_OPENAI_BASE_URL`` (default
``127.0.0.1:11434``) if one answers a short probe, else ``demo``; ``demo``
probes nothing; a URL is that model server, used even if it does not answer
now (the demo never stands in for a server the user chose). It listens on a
free 127.0.0.1 port, writes ``server.json`` in the discovery dir (see
``mfu_tui.local_discovery``) for the apps that join it later, and prints the
same JSON line for the app that started it::

    {"url": "ws://127.0.0.1:PORT/ws", "port": PORT, "pid": PID, "token": "...", "provider": "demo",
     "models_url": null, "answered": false, "setting": "auto"}

``answered`` says whether the model server listed its models at start.

It is shared by every app of the user on this database, so it does not stop
with the app that started it: it stops ``--grace`` seconds after the last app
let go of the discovery dir's ``apps.lock`` (quit, or died: the kernel drops
a dead process's locks), or on SIGTERM/SIGINT. It holds the database's
``.lock`` while it runs, so a second server on the same database refuses to start. A separate
process also keeps model streaming and SQLite writes off the app's event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from mfu_tui.file_lock import DatabaseInUse, Lock, hold_database, is_free
from mfu_tui.local_discovery import Discovery
from mfu_tui.redaction import redact_password
from mfu_tui.server import logs
from mfu_tui.server.app import ChatServer, freeze_what_lives
from mfu_tui.server.auth import mint_token
from mfu_tui.server.config import ServerConfig, env_defaults
from mfu_tui.server.store.base import StoreUnavailable
from mfu_tui.server.store.schema import SchemaTooNew
from mfu_tui.server.store.sqlite import unusable_file

log = logging.getLogger(__name__)

#: Where Ollama listens by default; MFU_OPENAI_BASE_URL names another server.
DEFAULT_LOCAL_MODELS = "http://127.0.0.1:11434"
#: How long the probe may delay start-up when nothing is there.
PROBE_SECONDS = 0.5
#: How long a model server the user chose gets to answer at start (it may be remote, behind TLS).
PINNED_PROBE_SECONDS = 2.0
#: The local user's token outlives any session; the secret never leaves this machine.
TOKEN_TTL = 30 * 24 * 3600
#: Seconds the server stays after the last app left, for the next one to find it warm.
GRACE_SECONDS = 5.0
#: How often the server looks whether an app still uses it (a lock taken for an instant).
APPS_POLL_SECONDS = 0.25
#: How long stopping waits for an app that is busy joining (it holds start.lock for a moment).
START_LOCK_SECONDS = 30.0
#: The same on a signal: the app that sent it, to start another server, holds start.lock meanwhile.
SIGNAL_START_LOCK_SECONDS = 1.0


async def probe_models(base_url: str, timeout: float = PROBE_SECONDS, api_key: str | None = None) -> bool:
    """True if an OpenAI-compatible server at ``base_url`` lists at least one model."""
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        # A bare TCP connect first: refusing is instant, and aiohttp is imported only if
        # something listens.
        _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, port), timeout)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    from mfu_tui.server.providers import ProviderError
    from mfu_tui.server.providers.openai import OpenAIProvider

    provider = OpenAIProvider(base_url, api_key, timeout=timeout)
    try:
        return bool(await provider.models())
    except ProviderError:
        return False
    finally:
        await provider.aclose()


@dataclass(frozen=True)
class Choice:
    """Where the answers come from, as the ``provider`` setting decided."""

    provider: str
    """``demo`` or ``openai``."""
    models_url: str | None = None
    """The OpenAI-compatible server, for ``openai``."""
    answered: bool = False
    """The model server listed its models at start."""


async def choose_provider(setting: str, probe_url: str, api_key: str | None = None) -> Choice:
    """The provider for the ``provider`` setting: ``auto``, ``demo`` or a model server's URL.

    Args:
        setting: The user's choice, already checked by the app's settings.
        probe_url: What ``auto`` probes.
        api_key: Sent with the probe of a URL the user chose (``MFU_OPENAI_API_KEY``), for a
            server that wants one; never to whatever answers ``auto``'s probe.
    """
    if setting == "demo":
        return Choice("demo")  # nothing is probed: nothing else on this machine learns of us
    if setting == "auto":
        if await probe_models(probe_url):
            return Choice("openai", probe_url, answered=True)
        return Choice("demo")
    # A server the user chose is used even when it is down: falling back to the demo would
    # hide that from them. The probe only lets the app say so at start.
    return Choice("openai", setting, answered=await probe_models(setting, PINNED_PROBE_SECONDS, api_key))


class AlreadyServing(RuntimeError):
    """Another local server holds this database's lock (``local.sqlite3.lock``)."""


async def serve_embedded(
    db: Path,
    secret: str,
    user: str,
    discovery: Discovery,
    provider_setting: str = "auto",
    grace: float = GRACE_SECONDS,
) -> None:
    """Run the local server until no app has used it for ``grace`` seconds, or SIGTERM/SIGINT.

    Raises:
        AlreadyServing: another server runs on this database (one writer only).
        StoreUnavailable: the database cannot be used (not SQLite, cannot be written): serve's line.
    """
    try:
        hold_database(discovery.database)  # held until the process ends
    except DatabaseInUse as error:
        raise AlreadyServing(error.says("local server")) from None
    except OSError as error:  # the lock file cannot be made beside the database, as serve says it
        raise StoreUnavailable(unusable_file(db, error)) from None
    settings = env_defaults()
    probe_url = os.environ.get("MFU_OPENAI_BASE_URL") or DEFAULT_LOCAL_MODELS
    choice = await choose_provider(provider_setting, probe_url, settings.get("openai_api_key"))
    provider = choice.provider
    if choice.models_url is not None:
        settings["openai_base_url"] = choice.models_url
    log.info(
        "provider %s: answers come from %s",
        provider_setting if provider_setting in ("auto", "demo") else "pinned",
        redact_password(choice.models_url) if choice.models_url else "the demo model",
    )
    # --db wins over MFU_DATABASE_URL, as flags do: this server keeps the app's own chats.
    settings["db_path"] = db
    # What env_defaults reads for a shared server (`mfu-chat serve`), which a user who also runs one may
    # have in their shell, is not this server's. It speaks WebSocket only: a REST or metrics listener on a
    # fixed port would clash with that server's.
    settings.pop("api_port", None)
    settings.pop("cors_origins", None)
    settings.pop("metrics_port", None)
    settings.pop("metrics_host", None)
    # It mints its own tokens: an issuer, an audience or other keys would refuse them.
    settings.pop("jwt_keys", None)
    settings.pop("jwt_issuer", None)
    settings.pop("jwt_audience", None)
    settings.pop("jwt_jwks_url", None)
    # It is one node, on loopback.
    settings.pop("broker", None)
    settings.pop("node_id", None)
    settings.pop("trusted_proxies", None)
    # The app's own chats are the user's to delete: retention is for a shared server.
    settings.pop("max_chat_age_days", None)
    # No other node takes the app's clients while this one drains, and an app starting
    # the next server waits for this one to let the database go: stop at once.
    settings.setdefault("drain_timeout", 0.0)
    config = ServerConfig(secret=secret, host="127.0.0.1", port=0, provider=provider, **settings)
    server = ChatServer(config)
    await server.start()
    freeze_what_lives()
    info = {
        "url": server.url,
        "port": server.port,
        "pid": os.getpid(),
        "token": mint_token(secret, user, TOKEN_TTL),
        "provider": provider,
        "models_url": choice.models_url,
        "answered": choice.answered,
        "setting": provider_setting,
    }
    # Before anyone learns of it: a SIGTERM from then on stops it cleanly.
    signalled = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, signalled.set)
    discovery.write_info(info)
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()

    unused = asyncio.ensure_future(_wait_unused(discovery, grace))
    signal_wait = asyncio.ensure_future(signalled.wait())
    await asyncio.wait([unused, signal_wait], return_when=asyncio.FIRST_COMPLETED)
    signal_wait.cancel()
    if unused.done():
        log.info("no app has used the local server for %s s: stopping", grace)
    else:
        unused.cancel()
        # Leaving on a signal: an app joining now waits, then starts a new server. The app
        # that replaces an unused server holds start.lock itself: no one else can join then.
        await asyncio.to_thread(Lock(discovery.start_lock).acquire, SIGNAL_START_LOCK_SECONDS)
    # start.lock is held until this process ends: no app reads server.json before it is gone;
    # a new server starts only after this one let the database's lock go.
    discovery.remove_info(os.getpid())
    await server.stop()


async def _wait_unused(discovery: Discovery, grace: float) -> None:
    """Return, holding ``start.lock``, once no app has held ``apps.lock`` for ``grace`` seconds."""
    loop = asyncio.get_running_loop()
    idle_since: float | None = None
    while True:
        await asyncio.sleep(APPS_POLL_SECONDS)
        if not is_free(discovery.apps_lock):
            idle_since = None
            continue
        idle_since = idle_since or loop.time()
        if loop.time() - idle_since < grace:
            continue
        # Decided under start.lock: an app that found server.json a moment ago holds it
        # until it took apps.lock, so it is either seen here or finds no server.json.
        start_lock = Lock(discovery.start_lock)
        if await asyncio.to_thread(start_lock.acquire, START_LOCK_SECONDS):
            if is_free(discovery.apps_lock):
                return  # start_lock stays held until the process ends
            start_lock.release()
        idle_since = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mfu_tui.embedded_server")
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--secret-file", type=Path, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--discovery", type=Path, required=True, help="the apps' meeting dir (local_discovery)")
    parser.add_argument(
        "--grace",
        type=float,
        default=float(os.environ.get("MFU_LOCAL_GRACE") or GRACE_SECONDS),
        help=f"seconds to stay after the last app left (default: $MFU_LOCAL_GRACE, {GRACE_SECONDS:g})",
    )
    parser.add_argument("--log-level", default="warning")
    parser.add_argument(
        "--provider",
        # The app passes it in the environment: argv is visible to every user (ps).
        default=os.environ.get("MFU_PROVIDER") or "auto",
        help="auto, demo or the http(s) URL of an OpenAI-compatible server (default: $MFU_PROVIDER, auto)",
    )
    args = parser.parse_args(argv)
    if args.provider not in ("auto", "demo") and not args.provider.startswith(("http://", "https://")):
        parser.error(f"--provider must be auto, demo or an http(s) URL, got {args.provider!r}")
    # stderr is the app's log file or /dev/null (never the app's terminal).
    logs.configure(args.log_level)
    secret = args.secret_file.read_text(encoding="utf-8").strip()
    try:
        discovery = Discovery(args.discovery, args.db)
        asyncio.run(serve_embedded(args.db, secret, args.user, discovery, args.provider, args.grace))
    except (AlreadyServing, SchemaTooNew, StoreUnavailable) as error:  # one line in the log the app points to
        log.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
