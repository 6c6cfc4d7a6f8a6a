"""Where mfu-chat keeps its files, per platformdirs (XDG on Linux)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "mfu-chat"


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
    """Write a file only its owner can read (0600), atomically.

    The file is created with mode 0600 from the start (never readable by
    others, not even for a moment) and renamed over the old one, so a crash
    leaves the old file or the new one, never half of one.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o600)  # in case the file existed with wider bits
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
