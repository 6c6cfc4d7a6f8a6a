"""Logging of `mfu-chat serve`: stderr, tokens redacted (see ``mfu_tui.redaction``), controls escaped, floods cut.

Lines an operator searches or feeds to a log pipeline (a connection opened or
closed, an answer ended, the start) are *events*: a short text plus named
fields (``event``), written ``text key=value ...`` by default, or as one JSON
object per line with ``--log-format json``. Fields never hold message text;
string fields are redacted like every line.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import math
import re
import sys
import time
from collections.abc import Callable
from typing import Any, Literal

from mfu_tui.redaction import install_redaction, redact

log = logging.getLogger(__name__)

#: ``--log-format``: lines for people, or one JSON object per line for a log pipeline.
LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

#: A field's value: what JSON holds without surprises.
FieldValue = str | int | float | bool | None


def configure(level: str, log_format: LogFormat = "text") -> None:
    """Log to stderr at ``level`` for ``mfu-chat serve``, tokens redacted.

    At ``debug`` websockets' own frame-level logs are shown too.
    """
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(EscapingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    install_redaction(handler)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def event(logger: logging.Logger, name: str, text: str, **fields: FieldValue) -> None:
    """Log an event at INFO: ``text`` with ``fields`` (and ``event=name``), in either format.

    Args:
        logger: The module's logger.
        name: The event's name, the ``event`` field (``connection_open``, ``answer_end``...).
        text: What happened, for people; no field values in it (the formatter adds them).
        fields: Named values: ids, counts, seconds. Never message text, never a token.
    """
    logger.info(text, extra={EVENT_FIELDS: {"event": name, **fields}})


def as_given(number: float) -> FieldValue:
    """``number`` as an operator gives it, for a field: ``20``, not ``20.0`` (a whole float is an int)."""
    return int(number) if float(number).is_integer() else number  # an int too (ServerConfig in code)


#: The ``LogRecord`` attribute holding an event's fields.
EVENT_FIELDS = "mfu_fields"


def _fields(record: logging.LogRecord) -> dict[str, FieldValue]:
    fields: dict[str, FieldValue] = getattr(record, EVENT_FIELDS, {})
    return {key: redact(value) if isinstance(value, str) else value for key, value in fields.items()}


#: Control characters but newline and tab (tracebacks have those).
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class EscapingFormatter(logging.Formatter):
    """Writes control characters as ``\\x1b``: log lines quote users' names and models' words.

    An operator reading the log in a terminal must not have it retitled or
    cleared by a user named ``ESC ] 2 ; ...`` in a token's ``sub``. An event's
    fields follow its text as ``key=value`` (values with spaces quoted).
    """

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = _fields(record)
        if fields:
            head, newline, rest = text.partition("\n")  # fields on the first line, before any traceback
            pairs = " ".join(f"{key}={_quoted(value)}" for key, value in fields.items())
            text = f"{head} {pairs}{newline}{rest}"
        return _CONTROLS.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def _quoted(value: FieldValue) -> str:
    text = "-" if value is None else str(value)
    return json.dumps(text) if not text or any(character in text for character in ' "=') else text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``msg``, the event's fields.

    A traceback goes in ``traceback``, still on the one line (JSON escapes
    newlines and every control character).
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update(_fields(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["traceback"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line)  # ASCII: C1 controls (\x9b) escaped too, not only those below 0x20


#: websockets' INFO lines that our events say, naming the node (and the user, the path): ``stopped_listening``,
#: ``connection_open``, ``connection_close`` and ``http_response``.
#: Each is the line up to its `` (``: ``HTTP response sent (404 Not Found)`` has its figures in already.
REPEATED = frozenset({"server closing", "server closed", "connection open", "connection closed", "HTTP response sent"})


class QuietRepeats(logging.Filter):
    """Drops websockets' INFO lines that an event of ours says: ``REPEATED``.

    They name no node and no user: each worker of ``--workers N`` wrote
    ``server closing`` and ``server closed``, 2N lines among stop lines that
    each name their node, and every connection was two lines more than its
    ``connection_open`` and ``connection_close``. ``HTTP response sent``, the
    line of a request that is no WebSocket (a 404, a 401), named neither its
    path nor its client. websockets' warnings and errors stay, and so does
    ``connection rejected``, its own refusal of a request that is no upgrade.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        # The message, not the record's format: ``redacting_logger``'s filter has formatted it by now.
        return not (record.levelno == logging.INFO and record.getMessage().partition(" (")[0] in REPEATED)


def quiet_websockets(logger: logging.Logger) -> logging.Logger:
    """``logger`` (websockets' of the server) with ``QuietRepeats``, once."""
    if not any(isinstance(existing, QuietRepeats) for existing in logger.filters):
        logger.addFilter(QuietRepeats())
    return logger


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
