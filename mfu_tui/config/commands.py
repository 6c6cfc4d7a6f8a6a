"""Handlers of `mfu-chat login`, `logout`, `config path` and `config show`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import tempfile
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

from mfu_tui.config.app_choices import check_app_choices
from mfu_tui.config.credentials import Credentials, CredentialsError
from mfu_tui.config.settings import ConfigError, load_settings
from mfu_tui.protocol.tokens import token_problem, unverified_claims, user_of
from mfu_tui.redaction import redact

EXIT_USAGE = 2
#: Exit status of a login the server did not confirm (refused, unreachable...).
EXIT_NOT_CHECKED = 1
#: Seconds the check of a login waits for the server.
CHECK_TIMEOUT = 10.0


def run_login(args: argparse.Namespace) -> int:
    """Ask for a token without echo and keep it for the server (mode 0600)."""
    try:
        settings = load_settings({"server": args.server})
    except ConfigError as error:
        return _fail("login", str(error))
    if settings.server is None and "server" in settings.sources:  # local, asked for
        return _fail(
            "login", "the local server needs no login (it signs you in by itself); give --server wss://HOST/ws"
        )
    if settings.server is None:
        return _fail("login", "which server? give --server wss://HOST/ws (or set it in the config file)")
    token = _ask_token(settings.server)
    problem = token_problem(token, time.time())
    if problem is not None:
        return _fail("login", f"{problem}; nothing was saved")
    claims = unverified_claims(token) or {}
    expires = claims.get("exp")
    try:
        credentials = Credentials.load(settings.paths.credentials_file)  # a broken file is said before any check
    except CredentialsError as error:
        return _fail("login", str(error))
    if args.check:
        refused = asyncio.run(check_token(settings.server, token))
        if refused is not None:
            print(f"mfu-chat login: {redact(refused)}; nothing was saved", file=sys.stderr)
            return EXIT_NOT_CHECKED
    try:
        credentials.store(settings.server, token)
    except CredentialsError as error:
        return _fail("login", str(error))
    user = user_of(claims) or "?"
    until = f", valid until {_when(expires)}" if isinstance(expires, (int, float)) else ""
    checked = "" if args.check else " (not checked with the server: --no-check)"
    print(f"Logged in to {redact(settings.server)} as {user}{until}{checked}.")
    return 0


async def check_token(server: str, token: str, timeout: float = CHECK_TIMEOUT) -> str | None:
    """Connect to ``server`` with ``token`` as the app would; ``None`` if it signed in, else why not, in one line.

    The same client as the app's, so what passes here connects there. It
    runs with a scratch data directory: a check sends nothing and keeps nothing.
    """
    from mfu_tui.client import ChatClient, ConnectionState, Problem, Status

    with tempfile.TemporaryDirectory(prefix="mfu-login-") as scratch:
        client = ChatClient(server, token, data_dir=Path(scratch), open_timeout=timeout)
        outcome: asyncio.Future[ConnectionState] = asyncio.get_running_loop().create_future()

        def settled(state: ConnectionState) -> None:
            # The first answer decides: signed in, refused, or the first attempt failed.
            if state.status is not Status.CONNECTING and not outcome.done():
                outcome.set_result(state)

        client.on_state(settled)
        await client.connect()
        try:
            state = await asyncio.wait_for(outcome, timeout + 1)
        except TimeoutError:
            return f"could not check the token: no answer from {server} within {timeout:g} s"
        finally:
            await client.close()
    if state.status is Status.CONNECTED:
        return None
    if state.problem is Problem.TOKEN_REFUSED:
        return f"the server at {server} refused that token ({state.reason})"
    if state.status is Status.RECONNECTING:
        return (
            f"could not check the token: server unreachable at {server} ({state.last_error}); "
            "start the server or fix the address, or save it unchecked with --no-check"
        )
    return f"could not check the token: {state.reason}"


def run_logout(args: argparse.Namespace) -> int:
    """Forget the stored token of a server (default: the last one logged in to)."""
    try:
        settings = load_settings({"server": args.server})
        credentials = Credentials.load(settings.paths.credentials_file)
    except (ConfigError, CredentialsError) as error:
        return _fail("logout", str(error))
    if args.server and settings.server is None:  # local: forgetting "the default" would log out of another
        return _fail("logout", "the local server has no stored token; nothing was deleted")
    server = args.server and settings.server
    if not credentials.forget(server):
        print("Not logged in; nothing to forget.")
        return 0
    print(f"Logged out of {redact(server) if server else 'the default server'}; its token is deleted.")
    return 0


def run_config_path(args: argparse.Namespace) -> int:
    """Print where the config file is (it may not exist yet)."""
    from mfu_tui.config.paths import Paths

    print(Paths.for_user().config_file)
    return 0


def run_config_show(args: argparse.Namespace) -> int:
    """Print every setting in effect, where it came from, tokens masked."""
    try:
        settings = load_settings({"server": args.server, "token": args.token, "provider": args.provider})
        check_app_choices(settings)  # what the app would refuse is not shown as in effect
    except ConfigError as error:
        return _fail("config", str(error))
    rows = settings.shown()
    width = max(len(name) for name, _, _ in rows)
    value_width = min(max(len(value) for _, value, _ in rows), 48)
    for name, value, source in rows:
        print(f"{name:<{width}}  {value:<{value_width}}  ({source})")
    # Where the chats go is the one setting whose meaning is not in its value.
    for note in settings.notes():
        print()
        print(textwrap.fill(note, width=100, subsequent_indent="  ", break_on_hyphens=False))
    return 0


def _ask_token(server: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(f"Token for {redact(server)} (input hidden): ").strip()
    # Scripts pipe it in: `pass show mfu | mfu-chat login --server ...`.
    return sys.stdin.readline().strip()


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _fail(command: str, message: str) -> int:
    # Messages may quote the server's URL, and a URL may carry ?token=.
    print(f"mfu-chat {command}: {redact(message)}", file=sys.stderr)
    return EXIT_USAGE
