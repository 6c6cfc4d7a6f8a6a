"""Logging of `mfu-chat serve`: stderr, tokens redacted (see ``mfu_tui.redaction``), controls escaped, floods cut."""

from __future__ import annotations

import asyncio
import logging
import math
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from mfu_tui.redaction import install_redaction

log = logging.getLogger(__name__)


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


#: What asyncio's context says when ``accept()`` fails for want of file descriptors or memory.
ACCEPT_FAILED = "socket.accept() out of system resource"


class AcceptErrorLog:
    """An event loop exception handler that logs failed ``accept()`` calls at most once per ``interval``.

    Out of file descriptors, asyncio reports every failed ``accept()`` with
    a traceback, up to 100 in a row per listening socket and loop turn (and
    retries each): megabytes of log a second, 216 MB in 80 s were seen, which
    can fill the disk the database is on. Here one line says what failed and
    how many failures were not logged since the previous line. Every other
    context goes to the handler that was there before.

    Args:
        previous: The loop's handler before this one (None: the default one).
        interval: Seconds between two lines.
    """

    def __init__(
        self, previous: Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object] | None, interval: float = 1.0
    ) -> None:
        self.previous = previous
        self._interval = interval
        self._last = -math.inf
        #: Failures not logged since the last line.
        self._suppressed = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != ACCEPT_FAILED:
            if self.previous is None:
                loop.default_exception_handler(context)
            else:
                self.previous(loop, context)
            return
        now = time.monotonic()
        if now - self._last < self._interval:
            self._suppressed += 1
            return
        log.error(
            "cannot accept connections: %s (%d more such failures since the last line); "
            "check the open-files limit (ulimit -n)",
            context.get("exception"),
            self._suppressed,
        )
        self._last = now
        self._suppressed = 0
