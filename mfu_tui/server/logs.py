"""Logging set-up of `mfu-chat serve`: stderr, tokens redacted (see ``mfu_tui.redaction``)."""

from __future__ import annotations

import logging
import sys

from mfu_tui.redaction import install_redaction


def configure(level: str) -> None:
    """Log to stderr at ``level`` for ``mfu-chat serve``, tokens redacted.

    At ``debug`` websockets' own frame-level logs are shown too.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    install_redaction(handler)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
