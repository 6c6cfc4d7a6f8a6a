"""WebSocket text frames encoded once, as they go on the wire, for any number of connections.

A server's frames are not masked, and the server negotiates no extension
(``compression=None``), so a frame's bytes are the same for every client:
the hub encodes a published frame once and every subscriber's connection
writes those bytes as they are, several in one transport write (see
``Connection``). websockets would build, serialize and write the frame again
for each connection.
"""

from __future__ import annotations

import struct
from typing import NewType

#: A whole WebSocket text frame, header included (what ``text_frame`` returns).
WireFrame = NewType("WireFrame", bytes)

#: FIN set, opcode 1 (text): one unfragmented text message.
_FIN_TEXT = 0x81
_SHORT = struct.Struct("!BB")
_MEDIUM = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")


def payload_of(frame: WireFrame) -> bytes:
    """The payload of a frame ``text_frame`` made (its JSON)."""
    size = frame[1] & 0x7F
    return frame[2 if size < 126 else 4 if size == 126 else 10 :]


def text_frame(payload: bytes) -> WireFrame:
    """``payload`` (UTF-8 JSON) as one unmasked text frame (RFC 6455 section 5.2)."""
    size = len(payload)
    if size < 126:
        header = _SHORT.pack(_FIN_TEXT, size)
    elif size < 1 << 16:
        header = _MEDIUM.pack(_FIN_TEXT, 126, size)
    else:
        header = _LONG.pack(_FIN_TEXT, 127, size)
    return WireFrame(header + payload)
