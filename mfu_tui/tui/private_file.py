"""The app's own files in its data directory (the unsent message, the earlier prompts): private, replaced whole."""

from __future__ import annotations

import os
from pathlib import Path


def replace_private(path: Path, data: bytes) -> None:
    """Make ``data`` the content of ``path``, a file only its owner can read (0600).

    Written to a temporary file, created 0600, then renamed over the old one:
    the app killed at any moment leaves the old content or the new, never
    half of one. Not synced to the disk: these files are not worth a wait on
    a slow home directory, and a power cut may lose them.

    Raises:
        OSError: the directory or the file could not be written.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
