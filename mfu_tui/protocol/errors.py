"""The exceptions the protocol layer raises."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class FrameIds:
    """The ids a refused frame carried, as far as they could be read.

    An ``error`` frame echoes them, so the peer can tell which of its requests,
    messages or edits was refused.
    """

    request_id: str | None = None
    chat_id: str | None = None
    message_id: str | None = None
    client_message_id: str | None = None
    client_edit_id: str | None = None

    @classmethod
    def of(cls, frame: object) -> FrameIds:
        """The ids a decoded frame carries (those it does not have are ``None``)."""
        found = {field.name: getattr(frame, field.name, None) for field in dataclasses.fields(cls)}
        return cls(**{name: value if isinstance(value, str) else None for name, value in found.items()})


class ProtocolError(ValueError):
    """A frame could not be decoded or does not follow protocol v1.

    The message is written for people and names the problem, for example
    ``'chatId' must be a string, got int``. The server sends it back to the
    peer in a ``bad_request`` error frame, so it never contains internals.
    """

    #: The refused frame's ids, filled in by the codec.
    ids: FrameIds = FrameIds()


class FrameTooLarge(ProtocolError):
    """A frame, or a field of one, is over its size limit (answered with ``too_large``)."""


class UnknownFrameType(ProtocolError):
    """A frame of a type this side does not know: a newer peer's, which a client may ignore."""
