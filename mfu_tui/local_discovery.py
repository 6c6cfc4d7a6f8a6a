"""How every `mfu-chat` of one user finds the one local server of a database.

Two apps started by the same user on the same data dir must share one
server: two servers on one SQLite file would be two writers whose clients
never hear of each other's messages. The apps and the server meet in a
directory of the user's runtime dir (``$XDG_RUNTIME_DIR/mfu-chat/local-HASH``,
HASH naming the database; the data dir's ``run/`` when there is no usable
runtime dir, as over SSH without a login session), mode 0700. The files:

``start.lock``
    Held (``flock``, exclusive) by an app while it finds or starts the
    server, and by the server from when it decides to stop until it has
    stopped: two apps started at the same instant end on one server, and no
    app joins a server that is leaving.
``local.sqlite3.lock`` (beside the database)
    Held by the server for its whole life. Free means no server runs,
    whatever ``server.json`` says (a dead server's pid may be another
    process's by now). Beside the database, not in the runtime dir: two
    login sessions that see different runtime dirs still never run two
    servers on one database.
``apps.lock``
    Held shared by each app while it runs. The server stops a grace period
    after it can take it exclusively (the last app left, or was killed: the
    kernel drops a dead process's locks).
``server.json``
    Mode 0600: the server's URL, port, pid, a token for the local user and
    where its answers come from, written by the server once it listens.

The locks live as long as the processes holding them, so a crash leaves
nothing that blocks the next start: a stale ``server.json`` (its server gone)
is replaced under ``start.lock``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mfu_tui.config.paths import APP_NAME, Paths, UnreadableFile, private_dir, read_regular_file, write_private
from mfu_tui.file_lock import database_lock


@dataclass(frozen=True)
class Discovery:
    """The meeting place of the apps and the local server of one database."""

    directory: Path
    """The 0700 directory holding the apps' locks and ``server.json``."""
    database: Path
    """The server's SQLite database."""

    @classmethod
    def for_paths(cls, paths: Paths) -> Discovery:
        """The meeting place of ``paths``' local database (made 0700 if missing)."""
        # The real path: a data dir reached through a symlink is still the same database.
        database = paths.local_database.resolve()
        import hashlib  # here, after the app's first frame, not with the module the app imports before it

        key = hashlib.sha256(str(database).encode()).hexdigest()[:16]
        return cls(private_dir(runtime_dir(paths) / f"local-{key}"), database)

    @property
    def start_lock(self) -> Path:
        """Held while an app finds or starts the server, and while the server stops."""
        return self.directory / "start.lock"

    @property
    def server_lock(self) -> Path:
        """Held by the server while it runs; beside the database, whatever the runtime dir."""
        return database_lock(self.database)

    @property
    def apps_lock(self) -> Path:
        """Held shared by every app using the server."""
        return self.directory / "apps.lock"

    @property
    def info_file(self) -> Path:
        """The running server's URL, pid and token (0600)."""
        return self.directory / "server.json"

    def read_info(self) -> dict[str, Any] | None:
        """What ``server.json`` says, or ``None`` if it is missing or not one of ours."""
        try:
            raw = read_regular_file(self.info_file)
            info = json.loads(raw) if raw is not None else None
        except (UnreadableFile, ValueError):
            return None
        return info if isinstance(info, dict) else None

    def write_info(self, info: dict[str, Any]) -> None:
        """Write ``server.json``, 0600, atomically (an app never reads half of it)."""
        write_private(self.info_file, json.dumps(info) + "\n")

    def remove_info(self, pid: int) -> None:
        """Remove ``server.json`` if it names the server ``pid``."""
        info = self.read_info()
        if info is not None and info.get("pid") == pid:
            self.info_file.unlink(missing_ok=True)


def runtime_dir(paths: Paths) -> Path:
    """mfu-chat's own directory in the user's runtime dir; the data dir's ``run/`` if there is none.

    The runtime dir (``$XDG_RUNTIME_DIR`` on Linux) is per user and emptied
    at logout, the right place for locks. Without one (SSH without a login
    session), platformdirs would warn and fall back to a directory in the
    shared ``/tmp``; the data dir (0700, next to the database) is a better
    place for a token. ``MFU_RUNTIME_DIR`` names another directory.
    """
    candidate = _user_runtime_dir(os.environ.get("MFU_RUNTIME_DIR"), os.environ.get("XDG_RUNTIME_DIR"))
    if candidate is not None:
        with contextlib.suppress(OSError):
            if _is_private(private_dir(candidate)):
                return candidate
    return private_dir(paths.data_dir / "run")


@functools.cache
def _user_runtime_dir(override: str | None, xdg_runtime_dir: str | None) -> Path | None:
    """The runtime dir the environment names (``override``, else platformdirs'), or ``None`` if it names none.

    Cached by the variables it depends on: platformdirs warns only once per
    cause in a process, so only the first call can tell its fallback in
    ``/tmp`` from a runtime dir, and every later join (the app's second one,
    after its server died) must find the same meeting place as the first.
    """
    import warnings

    import platformdirs

    if override:
        return Path(override)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # platformdirs' "falling back to /tmp/..." becomes the data dir
        try:
            return platformdirs.user_runtime_path(APP_NAME)
        except (OSError, Warning):
            return None


def _is_private(directory: Path) -> bool:
    """``directory`` is the user's and closed to everyone else."""
    status = directory.stat()
    return status.st_uid == os.getuid() and not status.st_mode & 0o077
