"""Keep tokens and users' text out of every log line, whoever writes it.

Tokens can reach a log line by many roads: the request target
(``/ws?token=...``), an ``Authorization`` header in websockets' DEBUG dump
of the handshake, an exception message. ``RedactTokens`` rewrites every
record that passes through a handler or logger it is installed on, so the
guarantee does not depend on each call site being careful. Users' text
reaches websockets' DEBUG log in every frame it dumps (a message, a search,
an answer's chunks): ``HideFrameData`` keeps each frame's direction, type and
size and drops its data. The server, the client and the app all use this one
module; it imports nothing of ours (nor websockets: the app's log set-up must
not load it).
"""

from __future__ import annotations

import enum
import logging
import re
import urllib.parse
from typing import Protocol, TypeGuard

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


class HideFrameData(logging.Filter):
    """A filter that writes websockets' data frames as ``< TEXT [53 bytes]``, without their data.

    websockets logs each frame as ``< %s`` (received) or ``> %s`` (sent), the
    frame's text being its type, the start and end of its data, and its size.
    The data is a user's message, search or answer: only the rest is kept.
    Control frames (close codes, pings) hold no user text and stay as they are.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) == 1 and _is_data_frame(frame := record.args[0]):
            continued = "" if frame.fin else ", continued"
            record.args = (f"{frame.opcode.name} [{len(frame.data)} bytes{continued}]",)
        return True


class _Frame(Protocol):
    """What ``HideFrameData`` reads of a websockets ``Frame``."""

    opcode: enum.Enum
    data: bytes
    fin: bool


#: websockets' ``Opcode`` names of the frames that carry data (the rest are control frames).
_DATA_OPCODES = frozenset({"TEXT", "BINARY", "CONT"})


def _is_data_frame(value: object) -> TypeGuard[_Frame]:
    """Whether ``value`` is a websockets ``Frame`` holding data (told by its shape: websockets is not imported here)."""
    opcode = getattr(value, "opcode", None)
    return getattr(opcode, "name", None) in _DATA_OPCODES and isinstance(
        getattr(value, "data", None), (bytes, bytearray, memoryview)
    )


def install_redaction(handler: logging.Handler) -> None:
    """Make ``handler`` redact tokens from every record it emits."""
    if not any(isinstance(existing, RedactTokens) for existing in handler.filters):
        handler.addFilter(RedactTokens())


def redacting_logger(name: str) -> logging.Logger:
    """A logger whose own records hold no frame data and no token before any handler sees them.

    Handed to websockets so that its frame and handshake dumps are clean even
    when the application installs its own handlers.
    """
    logger = logging.getLogger(name)
    if not any(isinstance(existing, HideFrameData) for existing in logger.filters):
        logger.addFilter(HideFrameData())  # first: RedactTokens formats the message, frame data included
    if not any(isinstance(existing, RedactTokens) for existing in logger.filters):
        logger.addFilter(RedactTokens())
    return logger
