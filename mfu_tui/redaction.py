"""Keep tokens out of every log line, whoever writes it.

Tokens can reach a log line by many roads: the request target
(``/ws?token=...``), an ``Authorization`` header in websockets' DEBUG dump
of the handshake, an exception message. ``RedactTokens`` rewrites every
record that passes through a handler or logger it is installed on, so the
guarantee does not depend on each call site being careful. The server, the
client and the app all use this one module; it imports nothing of ours.
"""

from __future__ import annotations

import logging
import re
import urllib.parse

#: JWTs (three base64url parts, the first starting with ``eyJ``), bearer
#: credentials and ``token=`` query values.
_SECRETS = re.compile(
    r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"
    r"|(?<=[Bb]earer )[^\s'\"]+"
    r"|(?<=token=)[^&\s'\"]+"
)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """``text`` with every token-looking part replaced by ``[redacted]``."""
    return _SECRETS.sub(REDACTED, text)


def redact_password(url: str) -> str:
    """``url`` (a database's or the broker's) without its password, for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


class RedactTokens(logging.Filter):
    """A filter that rewrites a record's message and traceback without tokens."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide the record
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text)
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_redaction(handler: logging.Handler) -> None:
    """Make ``handler`` redact tokens from every record it emits."""
    if not any(isinstance(existing, RedactTokens) for existing in handler.filters):
        handler.addFilter(RedactTokens())


def redacting_logger(name: str) -> logging.Logger:
    """A logger whose own records are redacted before any handler sees them.

    Handed to websockets so that its handshake dumps are clean even when the
    application installs its own handlers.
    """
    logger = logging.getLogger(name)
    if not any(isinstance(existing, RedactTokens) for existing in logger.filters):
        logger.addFilter(RedactTokens())
    return logger
