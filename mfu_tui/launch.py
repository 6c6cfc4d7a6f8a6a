"""Open the terminal app with the settings in effect.

`mfu-chat` with no subcommand lands here: it sets up logging, starts the
embedded server when no server is configured (or checks that a token is
there when one is), checks the app's own choices (theme, key bindings), and
runs the app. Every problem is one line on stderr before the screen
changes, so the app never starts half-configured.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from typing import IO

from mfu_tui.config import ConfigError, Settings
from mfu_tui.local_server import LocalServer, LocalServerError

#: A log file is rotated at this size, keeping this many old ones.
LOG_BYTES = 1024 * 1024
LOG_BACKUPS = 3

EXIT_CONFIG = 2
EXIT_FAILED = 1


def run_app(settings: Settings) -> int:
    """Run the app until the user quits; returns the exit status."""
    try:
        _check_app_choices(settings)
        if not settings.embedded and not settings.token:
            raise ConfigError(
                f"no token for {settings.server}: store one with `mfu-chat login --server {settings.server}`, "
                "or pass --token (or set MFU_TOKEN)"
            )
    except ConfigError as error:
        print(f"mfu-chat: {error}", file=sys.stderr)
        return EXIT_CONFIG
    log_file = _start_logging(settings)
    local: LocalServer | None = None
    if settings.embedded:
        try:
            local = LocalServer.start(settings.paths, log=log_file, debug=settings.debug)
        except LocalServerError as error:
            print(f"mfu-chat: {error}", file=sys.stderr)
            return EXIT_FAILED
    try:
        from mfu_tui.tui import AppSettings, ChatApp

        app = ChatApp(
            AppSettings(
                url=local.url if local else settings.server,  # type: ignore[arg-type]
                token=local.token if local else settings.token,  # type: ignore[arg-type]
                server_label=local.label if local else None,
                data_dir=settings.paths.data_dir,
                theme=settings.theme,
                model=settings.model,
                keymap=settings.keys,
                ping_interval=settings.heartbeat_interval,
                ping_timeout=settings.heartbeat_timeout,
            )
        )
        app.run()
        return app.return_code or 0
    finally:
        if local is not None:
            local.stop()


def _check_app_choices(settings: Settings) -> None:
    """Refuse a theme or a key binding id the app does not have."""
    from textual.theme import BUILTIN_THEMES

    from mfu_tui.tui.keys import binding_ids

    if settings.theme not in BUILTIN_THEMES:
        known = ", ".join(sorted(BUILTIN_THEMES))
        raise ConfigError(f"{settings.where('theme')}: 'theme' {settings.theme!r} is not a theme (themes: {known})")
    unknown = sorted(set(settings.keys) - binding_ids())
    if unknown:
        raise ConfigError(
            f"{settings.where('keys')}: 'keys' has no binding {unknown[0]!r} "
            "(press F1 in the app for the ids, e.g. app.cancel)"
        )


def _start_logging(settings: Settings) -> IO[str] | None:
    """With ``--debug`` or a log file, log connection events to a rotated file; never tokens.

    Returns:
        The open log file, for the embedded server's own lines, or ``None``.
    """
    if not settings.debug and settings.log_file is None:
        return None
    from mfu_tui.redaction import install_redaction

    path = settings.log_file or settings.paths.default_log_file
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    install_redaction(handler)
    logger = logging.getLogger("mfu_tui")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if settings.debug else logging.INFO)
    return handler.stream
