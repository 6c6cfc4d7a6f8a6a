"""A SQLite database its server cannot write, nor the directory it is in."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def read_only_database(directory: Path) -> Iterator[Path]:
    """A database in the new ``directory``: on a read-only mount as root (who may write any file whatever its
    mode), else a file of mode 444 in a directory of mode 555."""
    directory.mkdir()
    as_root = os.geteuid() == 0
    if as_root:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(directory)], check=True)
    database = directory / "chat.sqlite3"
    sqlite3.connect(database).close()
    try:
        if as_root:
            subprocess.run(["mount", "-o", "remount,ro", str(directory)], check=True)
        else:
            database.chmod(0o444)
            directory.chmod(0o555)
        yield database
    finally:
        if as_root:
            subprocess.run(["umount", str(directory)], check=True)
        else:
            directory.chmod(0o755)


def refusal_reason() -> str:
    """What the system says to a write in ``read_only_database``: EROFS as root, else EACCES."""
    return os.strerror(30 if os.geteuid() == 0 else 13)
