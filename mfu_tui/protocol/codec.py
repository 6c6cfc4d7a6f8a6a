"""Encode and decode frames, turning every failure into a ``ProtocolError``.

msgspec does the parsing and validation in one pass. When it refuses a frame,
``explain`` says why in the protocol's own words (``'chatId' must be a
string, got int``), so that a peer reading a ``bad_request`` learns what to fix
and nothing about our internals, whatever msgspec's own wording.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from mfu_tui.protocol.errors import ProtocolError
from mfu_tui.protocol.explain import explain, explain_value
from mfu_tui.protocol.frames import ClientFrame, Frame, ServerFrame

#: Client frames larger than this are refused (the server closes with 1009).
MAX_FRAME_BYTES = 64 * 1024
#: Server frames may be larger (``get_chat`` of a long chat), up to this.
MAX_SERVER_FRAME_BYTES = 16 * 1024 * 1024

_T = TypeVar("_T")

_encoder = msgspec.json.Encoder()
_client_decoder: msgspec.json.Decoder[ClientFrame] = msgspec.json.Decoder(ClientFrame)
_server_decoder: msgspec.json.Decoder[ServerFrame] = msgspec.json.Decoder(ServerFrame)


def encode(frame: Frame) -> bytes:
    """Serialise a frame to the UTF-8 JSON bytes sent in a text frame."""
    return _encoder.encode(frame)


def decode_client(data: bytes | str) -> ClientFrame:
    """Decode a frame sent by a client.

    Raises:
        ProtocolError: the data is not a valid client frame; the message says why.
    """
    return _decode(_client_decoder, ClientFrame, data, MAX_FRAME_BYTES)


def decode_server(data: bytes | str) -> ServerFrame:
    """Decode a frame sent by the server.

    Raises:
        ProtocolError: the data is not a valid server frame; the message says why.
    """
    return _decode(_server_decoder, ServerFrame, data, MAX_SERVER_FRAME_BYTES)


def decode_result(data: Any, kind: type[_T]) -> _T:
    """Convert the ``data`` of a ``result`` frame into a typed record.

    Example: ``decode_result(result.data, ChatPage)``.

    Raises:
        ProtocolError: the data does not have the shape of ``kind``.
    """
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as error:
        raise ProtocolError(explain_value(data, kind, error, root="data")) from None


def _decode(decoder: msgspec.json.Decoder[_T], frame_type: Any, data: bytes | str, limit: int) -> _T:
    if not isinstance(data, (bytes, bytearray, memoryview, str)):
        raise ProtocolError(f"a frame must be text, got {type(data).__name__}")
    if len(data) > limit:
        raise ProtocolError(f"frame is larger than {limit} bytes")
    try:
        return decoder.decode(data)
    # Older msgspec releases raise UnicodeDecodeError for text that is not UTF-8.
    except (msgspec.DecodeError, UnicodeDecodeError) as error:
        raise ProtocolError(explain(data, frame_type, error)) from None
