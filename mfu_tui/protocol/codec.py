"""Encode and decode frames, turning every failure into a ``ProtocolError``.

msgspec does the parsing and validation in one pass; this module only
rewrites its messages (``Expected `str`, got `int` - at `$.chatId```) into
the protocol's own words (``'chatId' must be a string, got int``) so that a
peer reading a ``bad_request`` learns what to fix and nothing about our
internals.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from mfu_tui.protocol.errors import ProtocolError
from mfu_tui.protocol.frames import ClientFrame, Frame, ServerFrame

#: Client frames larger than this are refused (the server closes with 1009).
MAX_FRAME_BYTES = 64 * 1024
#: Server frames may be larger (``get_chat`` of a long chat), up to this.
MAX_SERVER_FRAME_BYTES = 16 * 1024 * 1024

_T = TypeVar("_T")

_encoder = msgspec.json.Encoder()
_client_decoder = msgspec.json.Decoder(ClientFrame)
_server_decoder = msgspec.json.Decoder(ServerFrame)

_KIND_NAMES = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "null": "null",
    "array": "an array",
    "object": "an object",
    "datetime": "a date-time string (RFC 3339)",
}

_PROBLEMS = {
    "Number out of range": "is out of range",
    "Invalid RFC3339 encoded datetime": "must be a date-time string (RFC 3339)",
}

_EXPECTED = re.compile(
    r"Expected `(?P<want>[^`]+)`(?P<bound>[^-]*?)(?:, got `(?P<got>[^`]+)`)?(?: - at `(?P<path>[^`]+)`)?$"
)
_MISSING = re.compile(r"Object missing required field `(?P<field>[^`]+)`(?: - at `(?P<path>[^`]+)`)?$")
_INVALID = re.compile(r"Invalid value (?P<value>.+?)(?: - at `(?P<path>[^`]+)`)?$")
_AT = re.compile(r"^(?P<text>.*?)(?: - at `(?P<path>[^`]+)`)?$", re.DOTALL)


def encode(frame: Frame) -> bytes:
    """Serialise a frame to the UTF-8 JSON bytes sent in a text frame."""
    return _encoder.encode(frame)


def decode_client(data: bytes | str) -> ClientFrame:
    """Decode a frame sent by a client.

    Raises:
        ProtocolError: the data is not a valid client frame; the message says why.
    """
    return _decode(_client_decoder, data, MAX_FRAME_BYTES)


def decode_server(data: bytes | str) -> ServerFrame:
    """Decode a frame sent by the server.

    Raises:
        ProtocolError: the data is not a valid server frame; the message says why.
    """
    return _decode(_server_decoder, data, MAX_SERVER_FRAME_BYTES)


def decode_result(data: Any, kind: type[_T]) -> _T:
    """Convert the ``data`` of a ``result`` frame into a typed record.

    Example: ``decode_result(result.data, ChatPage)``.

    Raises:
        ProtocolError: the data does not have the shape of ``kind``.
    """
    try:
        return msgspec.convert(data, kind, strict=False)
    except msgspec.ValidationError as error:
        raise ProtocolError(_describe(str(error), root="data")) from None


def _decode(decoder: msgspec.json.Decoder, data: bytes | str, limit: int) -> Any:
    if not isinstance(data, (bytes, bytearray, memoryview, str)):
        raise ProtocolError(f"a frame must be text, got {type(data).__name__}")
    if len(data) > limit:
        raise ProtocolError(f"frame is larger than {limit} bytes")
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as error:
        raise ProtocolError(_describe(str(error))) from None
    except msgspec.DecodeError as error:
        raise ProtocolError(f"not valid JSON: {_lower_first(str(error))}") from None
    except UnicodeDecodeError:
        raise ProtocolError("not valid JSON: the text is not UTF-8") from None


def _describe(message: str, root: str = "") -> str:
    """Rewrite one msgspec validation message in the protocol's words."""
    if match := _MISSING.match(message):
        where = _field_name(match["path"], root)
        field = match["field"]
        if field == "type" and not where:
            return "frame has no 'type'"
        return f"'{field}' is required" + (f" in '{where}'" if where else "")
    if match := _INVALID.match(message):
        where = _field_name(match["path"], root)
        if where == "type":
            return f"unknown frame type {match['value']}"
        return f"'{where}' has an invalid value {match['value']}"
    if match := _EXPECTED.match(message):
        where = _field_name(match["path"], root)
        want = _kind(match["want"]) + match["bound"].rstrip()
        if not where:
            got = match["got"] or "something else"
            return f"a frame must be a JSON object, got {got}"
        if match["got"]:
            return f"'{where}' must be {want}, got {match['got']}"
        return f"'{where}' must be {want}"
    # Messages of our own (__post_init__) and the rare others: keep the text,
    # name the field if msgspec told us where.
    match = _AT.match(message)
    where = _field_name(match["path"], root) if match else ""
    text = match["text"] if match else message
    if not where:
        return text
    return f"'{where}' {_PROBLEMS.get(text, 'is invalid: ' + _lower_first(text))}"


def _field_name(path: str | None, root: str) -> str:
    """``$.chat.updatedAt`` -> ``chat.updatedAt``; ``$`` -> ``root``."""
    name = (path or "$").removeprefix("$")
    return f"{root}{name}" if root else name.removeprefix(".")


def _kind(spec: str) -> str:
    """``str | null`` -> ``a string or null``."""
    return " or ".join(_KIND_NAMES.get(part.strip(), part.strip()) for part in spec.split("|"))


def _lower_first(text: str) -> str:
    text = text.removeprefix("JSON is malformed: ")
    return text[:1].lower() + text[1:]
