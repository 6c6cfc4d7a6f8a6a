"""Tokens stored by `mfu-chat login`, one per server, in a 0600 file.

The file is read with ``read_regular_file`` (a regular file of at most 1 MiB),
so a FIFO, a device or a huge file in its place is one clear error, never a
hang or a memory error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mfu_tui.config.paths import read_regular_file, write_private


def save_login(path: Path, server: str, token: str) -> None:
    """Keep ``token`` for ``server`` in the credentials file at ``path``, as the app's sign-in does.

    Unlike ``mfu-chat login``, the default server stays as it was: a token
    renewed for a server given with ``--server`` once must not send every
    later plain ``mfu-chat`` there (in place of the local server).

    Raises:
        CredentialsError: the file exists but cannot be read.
    """
    Credentials.load(path).store(server, token, default=False)


class CredentialsError(ValueError):
    """The credentials file exists but cannot be read."""


@dataclass
class Credentials:
    """The tokens of ``credentials.json`` and the server logged in to last."""

    path: Path
    tokens: dict[str, str] = field(default_factory=dict)
    """Server URL to token."""
    default_server: str | None = None
    """The server of the last ``mfu-chat login``; used when nothing else names one."""

    @classmethod
    def load(cls, path: Path) -> Credentials:
        """Read the file; a missing file is an empty store.

        Raises:
            CredentialsError: the file is not what ``save`` writes.
        """
        try:
            data = read_regular_file(path)
            if data is None:
                return cls(path)
            raw = json.loads(data)
        except RecursionError:
            raise CredentialsError(
                f"{path}: cannot read the stored tokens (nested too deeply); delete it and log in again"
            ) from None
        except ValueError as error:  # UnreadableFile, JSON or UTF-8 errors
            raise CredentialsError(
                f"{path}: cannot read the stored tokens ({error}); delete it and log in again"
            ) from None
        tokens = raw.get("tokens") if isinstance(raw, dict) else None
        default = raw.get("defaultServer") if isinstance(raw, dict) else None
        if not isinstance(tokens, dict) or not all(isinstance(v, str) for v in tokens.values()):
            raise CredentialsError(f"{path}: not a credentials file; delete it and log in again")
        return cls(path, dict(tokens), default if isinstance(default, str) else None)

    def token_for(self, server: str) -> str | None:
        """The stored token of ``server``, if any."""
        return self.tokens.get(server)

    def store(self, server: str, token: str, *, default: bool = True) -> None:
        """Keep ``token`` for ``server``, make it the default if ``default``, and save (0600)."""
        self.tokens[server] = token
        if default:
            self.default_server = server
        self.save()

    def forget(self, server: str | None = None) -> bool:
        """Remove the token of ``server`` (default: the default server); True if one was removed."""
        server = server or self.default_server
        if server is None or self.tokens.pop(server, None) is None:
            return False
        if self.default_server == server:
            self.default_server = next(iter(self.tokens), None)
        if self.tokens:
            self.save()
        else:
            self.path.unlink(missing_ok=True)
        return True

    def save(self) -> None:
        """Write the file with mode 0600."""
        write_private(self.path, json.dumps({"defaultServer": self.default_server, "tokens": self.tokens}, indent=2))
