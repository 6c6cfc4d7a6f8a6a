"""The server `mfu-chat` starts for itself when no server is configured.

``mfu_tui.local_server.LocalServer`` runs this module as a child process::

    MFU_PROVIDER=auto python -m mfu_tui.server.embedded --db PATH --secret-file PATH --user NAME [--log-level L]

It picks a provider as the user's ``provider`` setting says (``MFU_PROVIDER``,
kept out of argv because a URL may carry a password): ``auto`` uses an
OpenAI-compatible server such as Ollama at ``MFU_OPENAI_BASE_URL`` (default
``127.0.0.1:11434``) if one answers a short probe, else ``demo``; ``demo``
probes nothing; a URL is that model server, used even if it does not answer
now (the demo never stands in for a server the user chose). It listens on a
free 127.0.0.1 port and prints one JSON line for its parent::

    {"url": "ws://127.0.0.1:PORT/ws", "token": "...", "provider": "demo", "models_url": null, "answered": false}

``answered`` says whether the model server listed its models at start.

It stops cleanly when its stdin closes, which happens when the parent quits
*or dies*: the child never outlives the app. A separate process keeps model
streaming and SQLite writes off the app's event loop.
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

from mfu_tui.redaction import redact_password
from mfu_tui.server import logs
from mfu_tui.server.app import ChatServer
from mfu_tui.server.auth import mint_token
from mfu_tui.server.config import ServerConfig, env_defaults

log = logging.getLogger(__name__)

#: Where Ollama listens by default; MFU_OPENAI_BASE_URL names another server.
DEFAULT_LOCAL_MODELS = "http://127.0.0.1:11434"
#: How long the probe may delay start-up when nothing is there.
PROBE_SECONDS = 0.5
#: How long a model server the user chose gets to answer at start (it may be remote, behind TLS).
PINNED_PROBE_SECONDS = 2.0
#: The local user's token outlives any session; the secret never leaves this machine.
TOKEN_TTL = 30 * 24 * 3600


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


async def serve_embedded(db: Path, secret: str, user: str, provider_setting: str = "auto") -> None:
    """Run the local server until stdin closes or SIGTERM/SIGINT arrives."""
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
    # The app speaks WebSocket only; a REST listener on a fixed MFU_API_PORT could clash with a `serve`.
    settings.pop("api_port", None)
    settings.pop("cors_origins", None)
    config = ServerConfig(secret=secret, host="127.0.0.1", port=0, provider=provider, **settings)
    server = ChatServer(config)
    await server.start()
    ready = {
        "url": server.url,
        "token": mint_token(secret, user, TOKEN_TTL),
        "provider": provider,
        "models_url": choice.models_url,
        "answered": choice.answered,
    }
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    def on_stdin() -> None:
        # stdin reaches EOF when the parent closes it or exits in any way.
        if not os.read(sys.stdin.fileno(), 4096):
            stop.set()

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    await stop.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mfu_tui.server.embedded")
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--secret-file", type=Path, required=True)
    parser.add_argument("--user", required=True)
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
    asyncio.run(serve_embedded(args.db, secret, args.user, args.provider))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
