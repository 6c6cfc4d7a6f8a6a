"""Open the terminal app with the settings in effect.

`mfu-chat` with no subcommand lands here: it sets up logging, checks that a
token is there when a server is configured, checks the app's own choices
(theme, key bindings), and runs the app. Every problem of the configuration
is one line on stderr before the screen changes, so the app never starts
half-configured. When no server is configured, the app joins the local
server after its first frame, in a thread (starting it if no other
`mfu-chat` of this user runs it): a cold start takes seconds, and a start
that fails is said in the app, where the reconnect key tries again.

What the app writes is its user's only: the data dir (the outbox of
messages not yet sent, in remote mode too) is made 0700 before the app
starts, and the log file is 0600, after each rotation too.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import stat
import sys
import time
from functools import partial
from pathlib import Path
from typing import IO

from mfu_tui.config import ConfigError, Settings
from mfu_tui.config.app_choices import check_app_choices
from mfu_tui.config.credentials import save_login
from mfu_tui.config.edit import remember_choice
from mfu_tui.config.paths import PRIVATE_FILE, file_kind, private_dir
from mfu_tui.local_server import LOCAL_ACCOUNT, LocalServer, LocalServerError, LocalUse, local_user
from mfu_tui.redaction import redact
from mfu_tui.tui.advice import Advice
from mfu_tui.tui.settings import AppSettings, ServerNotStarted, StartedServer

#: A log file is rotated at this size, keeping this many old ones.
LOG_BYTES = 1024 * 1024
LOG_BACKUPS = 3

EXIT_CONFIG = 2


def run_app(settings: Settings) -> int:
    """Run the app until the user quits; returns the exit status."""
    try:
        check_app_choices(settings)
        if not settings.embedded and not settings.token:
            raise ConfigError(
                f"no token for {settings.server}: store one with `mfu-chat login --server {settings.server}`, "
                "or pass --token (or set MFU_TOKEN)"
            )
        _make_data_dir(settings)
        log_file = _start_logging(settings)
    except ConfigError as error:
        print(f"mfu-chat: {redact(str(error))}", file=sys.stderr)
        return EXIT_CONFIG
    local: LocalUse | None = None
    if settings.embedded:  # joined by the app, after its first frame
        local = LocalUse(
            partial(
                LocalServer.join,
                settings.paths,
                provider=settings.provider,
                probe_url=settings.probe_url,
                log=log_file,
                debug=settings.debug,
            )
        )
    try:
        from mfu_tui.tui import ChatApp

        app = ChatApp(app_settings(settings, local))
        app.run()
        if waiting := app.messages_waiting:
            # Said on the terminal the app gives back: quitting with messages queued loses none of them.
            print(f"mfu-chat: {waiting} message(s) not sent yet: they go at the next start of mfu-chat.")
        return app.return_code or 0
    finally:
        if local is not None:
            local.leave()


def app_settings(settings: Settings, local: LocalUse | None) -> AppSettings:
    """What the app starts with: the server (or how to start ``local``), and the settings in effect.

    The client's settings and the app's choices are handed over whole, as
    the config built them: no field is copied, so none has a second default.
    """
    return AppSettings(
        url=None if local else settings.server,
        token=None if local else settings.token,
        client=settings.client,
        choices=settings.app,
        # The local server's port changes with each start: its outbox must not.
        account=LOCAL_ACCOUNT if local else None,
        # The user the local server's tokens name: its outbox opens before there is a token.
        user=local_user() if local else None,
        relocate=local.relocate if local else None,
        start_server=partial(start_local, local) if local else None,
        server_label="local" if local else None,
        remember=partial(remember_choice, settings),
        save_token=None if local else partial(keep_signed_in_token, settings),
        report_crash=partial(log_crash, settings.log_file or settings.paths.default_log_file),
    )


def keep_signed_in_token(settings: Settings, server: str, token: str) -> str:
    """Keep a token the app's sign-in took (``AppSettings.save_token``); say what the next run will use.

    A token given with ``--token`` or ``MFU_TOKEN`` comes before the saved one
    at the next run too: saying "saved" alone, the expired one came back.
    """
    save_login(settings.paths.credentials_file, server, token)
    kind, _, name = settings.sources.get("token", "").partition(" ")
    if kind == "env":
        return f"It is saved, but {name} comes first at the next run: unset it to use the saved one."
    if kind == "flag":
        return f"It is saved, but {name} comes first at the next run: start without it to use the saved one."
    return "The token is saved for the next runs."


def start_local(local: LocalUse) -> StartedServer:
    """Join the local server, starting it if none runs: what the app needs of it (``AppSettings.start_server``).

    Raises:
        ServerNotStarted: it could not be started or joined; the message says why, in one line.
    """
    try:
        server = local.start()
    except LocalServerError as error:
        raise ServerNotStarted(str(error)) from None
    except OSError as error:  # the secret or the data dir cannot be written
        raise ServerNotStarted(f"cannot start the local server ({error})") from None
    notice = Advice(*server.notice) if server.notice else None
    return StartedServer(server.url, server.token, server.label, notice)


def _make_data_dir(settings: Settings) -> None:
    """Make the data dir private (0700): the outbox keeps the text of unsent messages there, remote mode too."""
    try:
        private_dir(settings.paths.data_dir)
    except OSError as error:
        raise ConfigError(f"{settings.paths.data_dir}: cannot make the data dir ({error.strerror or error})") from None


def _start_logging(settings: Settings) -> IO[str] | None:
    """With ``--debug`` or a log file, log connection events to a rotated file (0600); never tokens.

    Returns:
        The open log file, for the embedded server's own lines, or ``None``.

    Raises:
        ConfigError: the log file cannot be one (a directory, a FIFO...) or cannot be written.
    """
    if not settings.debug and settings.log_file is None:
        return None
    from mfu_tui.redaction import install_redaction

    path = settings.log_file or settings.paths.default_log_file
    try:
        # Our own log dir is tightened; a directory the user chose stays as it is.
        private_dir(path.parent, tighten=settings.log_file is None)
        handler = PrivateRotatingFileHandler(path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS)
    except OSError as error:
        raise ConfigError(f"{path}: cannot write the log file there ({error.strerror or error})") from None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    install_redaction(handler)
    logger = logging.getLogger("mfu_tui")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if settings.debug else logging.INFO)
    return handler.stream


def log_crash(path: Path, report: str) -> str:
    """Append the report of an error that stopped the app (its traceback) to the log file, 0600.

    The same file as ``--debug`` logs to (made if it is not there), so one
    file says what happened; tokens are taken out as from every log line.

    Returns:
        Where it went, for the line the app prints on its way out.

    Raises:
        OSError: the file cannot be written.
    """
    private_dir(path.parent, tighten=False)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    with open_log(path) as file:
        file.write(f"{stamp} CRITICAL mfu_tui.tui: the app stopped on an unexpected error\n{redact(report)}")
    return str(path)


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotated log file only its owner may read: created 0600, and each new one after a rotation too."""

    def _open(self) -> io.TextIOWrapper:
        return open_log(Path(self.baseFilename), self.encoding, self.errors)


def open_log(path: Path, encoding: str | None = None, errors: str | None = None) -> io.TextIOWrapper:
    """Open ``path`` to append to it, created 0600 (an older, wider one is tightened).

    Only a regular file: ``O_NONBLOCK`` keeps the open of a FIFO from
    waiting for a reader, and the descriptor is checked before use.

    Raises:
        OSError: it is not a regular file, or cannot be opened.
    """
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NONBLOCK", 0)
    try:
        kind = os.stat(path).st_mode
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISREG(kind):  # opening a FIFO without a reader fails with a puzzling ENXIO
            raise OSError(f"it is {file_kind(kind)}, not a regular file")
    descriptor = os.open(path, flags, PRIVATE_FILE)
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise OSError(f"it is {file_kind(status.st_mode)}, not a regular file")
        if hasattr(os, "fchmod") and status.st_mode & 0o077:
            os.fchmod(descriptor, PRIVATE_FILE)
        return open(descriptor, "a", encoding=encoding or "utf-8", errors=errors)
    except BaseException:
        os.close(descriptor)
        raise
