"""Reading a file to attach to a message: what it is, and whether a model can take it.

A file is an image if its first bytes say so (PNG, JPEG, GIF, WebP: the
types the models take), whatever its name; a file named like another kind
of image (``.bmp``, ``.heic``...) is refused, as is a file that is not text
(a NUL byte, or not UTF-8). All of this happens before anything is queued,
so a refused file costs the user nothing but the error.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mfu_tui.protocol import (
    DEFAULT_MAX_ATTACHMENT_BYTES,
    IMAGE_MEDIA_TYPES,
    MAX_ATTACHMENT_NAME,
    TEXT_MEDIA_TYPE,
    describe_size,
)

#: Leading bytes of each image type the models take.
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
#: Suffixes of images the models do not take: refused by name rather than called binary.
_OTHER_IMAGES = {".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif", ".ico", ".jxl", ".psd", ".raw", ".cr2", ".nef"}
_TAKEN = ", ".join(kind.removeprefix("image/") for kind in IMAGE_MEDIA_TYPES)


class AttachmentError(ValueError):
    """A file that cannot be attached; the message says why, in words for the user."""


@dataclasses.dataclass(frozen=True)
class Attachment:
    """A file to send with a message, read whole."""

    name: str
    media_type: str
    data: bytes

    @property
    def size(self) -> int:
        """Bytes of the file."""
        return len(self.data)


def read_attachment(path: Path | str, *, max_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES) -> Attachment:
    """Read ``path`` as an attachment: an image the models take, or a UTF-8 text file.

    Args:
        path: The file (``~`` is expanded).
        max_bytes: Refuse a larger file (the server's bound on one message's files).

    Raises:
        AttachmentError: the file is missing, unreadable, a directory, too large,
            an image type the models cannot take, or binary.
    """
    file = Path(path).expanduser()
    shown = str(path)
    try:
        if file.is_dir():
            raise AttachmentError(f"{shown} is a directory: attach a file")
        size = file.stat().st_size
        if size > max_bytes:
            raise AttachmentError(
                f"{shown} is {describe_size(size)}: a message may carry {describe_size(max_bytes)} of files"
            )
        data = file.read_bytes()
    except FileNotFoundError:
        raise AttachmentError(f"no such file: {shown}") from None
    except PermissionError:
        raise AttachmentError(f"cannot read {shown}: permission denied") from None
    except OSError as error:
        raise AttachmentError(f"cannot read {shown}: {error.strerror or error}") from None
    if len(data) > max_bytes:  # it grew since stat
        raise AttachmentError(
            f"{shown} is {describe_size(len(data))}: a message may carry {describe_size(max_bytes)} of files"
        )
    name = file.name[:MAX_ATTACHMENT_NAME] or "file"
    return Attachment(name=name, media_type=media_type_of(name, data), data=data)


def media_type_of(name: str, data: bytes) -> str:
    """The media type a file is sent as: an image type from its first bytes, else text.

    Raises:
        AttachmentError: an image the models cannot take, or a file that is not UTF-8 text.
    """
    for signature, kind in _SIGNATURES:
        if data.startswith(signature):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if Path(name).suffix.lower() in _OTHER_IMAGES:
        raise AttachmentError(f"{name}: the models cannot take this image type; attach {_TAKEN}")
    if b"\0" in data:
        raise AttachmentError(f"{name} is a binary file: attach text (UTF-8) or an image ({_TAKEN})")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise AttachmentError(f"{name} is not UTF-8 text: attach text (UTF-8) or an image ({_TAKEN})") from None
    return TEXT_MEDIA_TYPE


def _too_large(shown: str, size: int, max_bytes: int) -> AttachmentError:
    return AttachmentError(f"{shown} is {describe_size(size)}: a message may carry {describe_size(max_bytes)} of files")
