"""Encode and decode frames, turning every failure into a ``ProtocolError``.

msgspec does the parsing and validation in one pass. When it refuses a frame,
``explain`` says why in the protocol's own words (``'chatId' must be a
string, got int``), so that a peer reading a ``bad_request`` learns what to fix
and nothing about our internals, whatever msgspec's own wording.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Generic, TypeGuard, TypeVar

import msgspec

from mfu_tui.protocol.errors import FrameIds, FrameTooLarge, ProtocolError
from mfu_tui.protocol.frames import MAX_ID_LENGTH, ClientFrame, Frame, Message, ServerFrame

#: Client frames larger than this are refused with ``too_large``; the connection stays open...
MAX_FRAME_BYTES = 64 * 1024
#: ...except a ``message``, which may be this large: the seed's clients send the whole
#: history with each one (its new text still counts against ``MAX_CONTENT_BYTES``).
#: The server closes the connection with 1009 on a frame larger than this.
MAX_MESSAGE_FRAME_BYTES = 1024 * 1024
#: Most UTF-8 bytes of a new message's text, whichever form carried it.
MAX_CONTENT_BYTES = MAX_FRAME_BYTES
#: Server frames may be larger (``get_chat`` of a long chat), up to this.
MAX_SERVER_FRAME_BYTES = 16 * 1024 * 1024

_T = TypeVar("_T")

_encoder = msgspec.json.Encoder()


class _Decoder(Generic[_T]):
    """msgspec's decoder of ``frame_type``, made at its first decode.

    Making one resolves the annotations of every frame it decodes, some ms
    that the app's first frame, which decodes nothing, does not wait for
    (``docs/benchmarks.md``, startup).
    """

    def __init__(self, frame_type: Any) -> None:
        self.frame_type = frame_type
        """What it decodes: a frame, or a union of them."""
        self._decoder: msgspec.json.Decoder[_T] | None = None

    def decode(self, data: bytes | bytearray | memoryview | str) -> _T:
        """``data`` decoded and validated by msgspec (which raises what it raises)."""
        if self._decoder is None:
            self._decoder = msgspec.json.Decoder(self.frame_type)
        return self._decoder.decode(data)


_client_decoder: _Decoder[ClientFrame] = _Decoder(ClientFrame)
_server_decoder: _Decoder[ServerFrame] = _Decoder(ServerFrame)


class _Peek(msgspec.Struct, rename="camel"):
    """Whatever a frame has in the places of its type and ids (see ``FrameIds``), unchecked."""

    type: Any = None
    request_id: Any = None
    chat_id: Any = None
    message_id: Any = None
    client_message_id: Any = None
    client_edit_id: Any = None


_peek_decoder: _Decoder[_Peek] = _Decoder(_Peek)


def encode(frame: Frame) -> bytes:
    """Serialise a frame to the UTF-8 JSON bytes sent in a text frame."""
    return _encoder.encode(frame)


def decode_client(data: bytes | str) -> ClientFrame:
    """Decode a frame sent by a client.

    Raises:
        FrameTooLarge: the frame or its text is over its limit.
        ProtocolError: the data is not a valid client frame; the message says why.
            Its ``ids`` are those the frame carried, as far as they could be read.
    """
    try:
        large = _is_text(data) and len(data) > MAX_FRAME_BYTES
        if large and len(data) <= MAX_MESSAGE_FRAME_BYTES and _peek(data).type != "message":
            raise FrameTooLarge(f"frame is larger than {MAX_FRAME_BYTES} bytes")
        frame = _decode(_client_decoder, data, MAX_MESSAGE_FRAME_BYTES)
        if large and isinstance(frame, Message) and _utf8_size(frame.content) > MAX_CONTENT_BYTES:
            raise FrameTooLarge(f"'content' is larger than {MAX_CONTENT_BYTES} bytes")
        return frame
    except ProtocolError as error:
        error.ids = _ids(_peek(data))
        raise


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
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as error:
        from mfu_tui.protocol.explain import explain_value  # needed only when refusing

        raise explain_value(data, kind, error, root="data") from None


def _decode(decoder: _Decoder[_T], data: bytes | str, limit: int) -> _T:
    if not _is_text(data):
        raise ProtocolError(f"a frame must be text, got {type(data).__name__}")
    if len(data) > limit:
        raise FrameTooLarge(f"frame is larger than {limit} bytes")
    try:
        return decoder.decode(data)
    # Older msgspec releases raise UnicodeDecodeError for text that is not UTF-8.
    except (msgspec.DecodeError, UnicodeDecodeError) as error:
        from mfu_tui.protocol.explain import explain  # needed only when refusing

        raise explain(data, decoder.frame_type, error) from None


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _is_text(data: object) -> TypeGuard[bytes | bytearray | memoryview | str]:
    return isinstance(data, (bytes, bytearray, memoryview, str))


def _peek(data: object) -> _Peek:
    """A frame's type and ids, whatever they are; none if it is not a JSON object (or too large to look at)."""
    if not _is_text(data) or len(data) > MAX_MESSAGE_FRAME_BYTES:
        return _Peek()
    try:
        return _peek_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return _Peek()


def _ids(peeked: _Peek) -> FrameIds:
    """The well-formed ids among those peeked."""
    fields = (field.name for field in dataclasses.fields(FrameIds))
    return FrameIds(**{name: _id_or_none(getattr(peeked, name)) for name in fields})


def _id_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH else None
