"""Logging set-up of `mfu-chat serve`: stderr, tokens redacted (see ``mfu_tui.redaction``), controls escaped."""

from __future__ import annotations

import logging
import re
import sys

from mfu_tui.redaction import install_redaction


def configure(level: str) -> None:
    """Log to stderr at ``level`` for ``mfu-chat serve``, tokens redacted.

    At ``debug`` websockets' own frame-level logs are shown too.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(EscapingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    install_redaction(handler)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


#: Control characters but newline and tab (tracebacks have those).
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class EscapingFormatter(logging.Formatter):
    """Writes control characters as ``\\x1b``: log lines quote users' names and models' words.

    An operator reading the log in a terminal must not have it retitled or
    cleared by a user named ``ESC ] 2 ; ...`` in a token's ``sub``.
    """

    def format(self, record: logging.LogRecord) -> str:
        return _CONTROLS.sub(lambda match: f"\\x{ord(match.group()):02x}", super().format(record))
