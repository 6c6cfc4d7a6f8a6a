"""Where mfu-chat keeps its files, per platformdirs (XDG on Linux), and how it reads and writes them.

Everything mfu-chat writes is for its owner only: files 0600, in directories
0700 (the config, data and log dirs are mfu-chat's own, so one that an
older version or the user made wider is tightened). What it reads from them
is read with care, since any of them may be something else by mistake or
malice: only a regular file is read (a FIFO would block forever, a symlink
to ``/dev/zero`` would fill the memory), and at most ``MAX_FILE_BYTES``.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "mfu-chat"

#: The largest settings or credentials file read: ours are a few hundred bytes.
MAX_FILE_BYTES = 1024 * 1024
#: Permission bits of the files and directories mfu-chat makes.
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


class UnreadableFile(ValueError):
    """A file exists but is not one to read; the message says why, without the path."""


@dataclass(frozen=True)
class Paths:
    """The directories and files of one user's mfu-chat."""

    config_dir: Path
    """Settings, the login token and the embedded server's secret."""
    data_dir: Path
    """The embedded server's database and the client's outbox."""
    log_dir: Path
    """Log files written with ``--debug`` or ``--log-file``."""

    @classmethod
    def for_user(cls) -> Paths:
        """The platform's usual places; ``MFU_CONFIG_DIR`` etc. override each one."""
        import platformdirs

        return cls(
            config_dir=_override("MFU_CONFIG_DIR") or platformdirs.user_config_path(APP_NAME),
            data_dir=_override("MFU_DATA_DIR") or platformdirs.user_data_path(APP_NAME),
            log_dir=_override("MFU_LOG_DIR") or platformdirs.user_log_path(APP_NAME),
        )

    @property
    def config_file(self) -> Path:
        """The TOML settings file."""
        return self.config_dir / "config.toml"

    @property
    def credentials_file(self) -> Path:
        """Tokens stored by ``mfu-chat login`` (mode 0600)."""
        return self.config_dir / "credentials.json"

    @property
    def secret_file(self) -> Path:
        """The embedded server's JWT secret (mode 0600), made on first use."""
        return self.config_dir / "local-secret"

    @property
    def local_database(self) -> Path:
        """The embedded server's SQLite database."""
        return self.data_dir / "local.sqlite3"

    @property
    def default_log_file(self) -> Path:
        """Where ``--debug`` logs go when ``--log-file`` is not given."""
        return self.log_dir / "mfu-chat.log"


def _override(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (0600), atomically, in a directory only they can enter.

    The file is created with mode 0600 from the start (never readable by
    others, not even for a moment) and renamed over the old one, so a crash
    leaves the old file or the new one, never half of one.
    """
    private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, PRIVATE_FILE)  # in case the file existed with wider bits
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def private_dir(directory: Path, *, tighten: bool = True) -> Path:
    """Make ``directory`` and its missing parents with mode 0700; return it.

    Args:
        directory: The directory.
        tighten: Also take the group's and others' bits off ``directory`` if
            it exists already (one of mfu-chat's own dirs); ``False`` for
            one the user chose, which stays as it is.
    """
    missing = []
    parent = directory
    while not parent.is_dir() and parent.parent != parent:
        missing.append(parent)
        parent = parent.parent
    for path in reversed(missing):
        path.mkdir(mode=PRIVATE_DIR, exist_ok=True)
    if tighten and not missing:
        tighten_mode(directory, PRIVATE_DIR)
    return directory


def tighten_mode(path: Path, mode: int = PRIVATE_FILE) -> None:
    """Take the group's and others' bits off ``path`` if it has any; nothing if it is missing or not ours."""
    with contextlib.suppress(OSError):
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(mode)


def read_regular_file(path: Path, limit: int = MAX_FILE_BYTES) -> bytes | None:
    """The bytes of ``path``, or ``None`` if there is no such file.

    Opened with ``O_NONBLOCK`` (a FIFO cannot block the open), then checked
    with ``fstat`` on the open descriptor (what is read is what was checked):
    anything but a regular file (or a symlink to one) is refused, and so is
    more than ``limit`` bytes.

    Raises:
        UnreadableFile: it is not a regular file, it is too large, or reading failed.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise UnreadableFile(error.strerror or str(error)) from None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise UnreadableFile(f"not a regular file but {file_kind(status.st_mode)}")
        too_large = UnreadableFile(f"larger than {limit // (1024 * 1024)} MiB")
        if status.st_size > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(descriptor, limit + 1 - size):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:  # it grew since the fstat
                raise too_large
        return b"".join(chunks)
    except OSError as error:
        raise UnreadableFile(error.strerror or str(error)) from None
    finally:
        os.close(descriptor)


def file_kind(mode: int) -> str:
    """What a file of ``mode`` is, for a message: "a FIFO", "a directory"..."""
    kinds = [
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    return next((name for test, name in kinds if test(mode)), "something else")
