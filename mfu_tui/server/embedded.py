"""The server `mfu-chat` starts for itself when no server is configured.

``mfu_tui.local_server.LocalServer`` runs this module as a child process::

    python -m mfu_tui.server.embedded --db PATH --secret-file PATH --user NAME [--log-level L]

It picks a provider (an OpenAI-compatible server such as Ollama at
``localhost:11434`` if one answers a short probe, else ``demo``), listens on
a free 127.0.0.1 port, and prints one JSON line for its parent::

    {"url": "ws://127.0.0.1:PORT/ws", "token": "...", "provider": "demo", "models_url": null}

It stops cleanly when its stdin closes, which happens when the parent quits
*or dies*: the child never outlives the app. A separate process keeps model
streaming and SQLite writes off the app's event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from mfu_tui.server import logs
from mfu_tui.server.app import ChatServer
from mfu_tui.server.auth import mint_token
from mfu_tui.server.config import ServerConfig, env_defaults

#: Where Ollama listens by default; MFU_OPENAI_BASE_URL names another server.
DEFAULT_LOCAL_MODELS = "http://127.0.0.1:11434"
#: How long the probe may delay start-up when nothing is there.
PROBE_SECONDS = 0.5
#: The local user's token outlives any session; the secret never leaves this machine.
TOKEN_TTL = 30 * 24 * 3600


async def probe_models(base_url: str, timeout: float = PROBE_SECONDS) -> bool:
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

    provider = OpenAIProvider(base_url, timeout=timeout)
    try:
        return bool(await provider.models())
    except ProviderError:
        return False
    finally:
        await provider.aclose()


async def serve_embedded(db: Path, secret: str, user: str) -> None:
    """Run the local server until stdin closes or SIGTERM/SIGINT arrives."""
    settings = env_defaults()
    base_url = os.environ.get("MFU_OPENAI_BASE_URL") or DEFAULT_LOCAL_MODELS
    provider = "openai" if await probe_models(base_url) else "demo"
    settings["openai_base_url"] = base_url
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
        "models_url": base_url if provider == "openai" else None,
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
    args = parser.parse_args(argv)
    # stderr is the app's log file or /dev/null (never the app's terminal).
    logs.configure(args.log_level)
    secret = args.secret_file.read_text(encoding="utf-8").strip()
    asyncio.run(serve_embedded(args.db, secret, args.user))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
