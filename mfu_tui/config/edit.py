"""Keep a choice made in the app (the theme, the sidebar's width) in the config file.

The config file is the one place a setting is read from, so a choice made
in the app goes there too: the user finds it where they look, and can
change it by hand. The file is the user's: only the setting's own line is
written (replaced where it is, or added before the first table), so every
other line, comments included, stays as it was. The result is read back
before it replaces the file; if it would not read as the old file with the
one setting changed (a file laid out in a way this cannot follow), nothing
is written.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from mfu_tui.config.paths import PRIVATE_FILE, UnreadableFile, private_dir, read_regular_file
from mfu_tui.config.settings import ConfigError, Settings

#: A table header, which ends the top-level settings: ``[keys]``, ``[[x]]``.
_TABLE = re.compile(r"\s*\[")


def save_setting(path: Path, name: str, value: str | int) -> None:
    """Set the top-level setting ``name`` to ``value`` in the config file at ``path``.

    Args:
        path: The config file; made (with its directory) if missing.
        name: A top-level setting of the file (``theme``).
        value: Its new value.

    Raises:
        ConfigError: the file cannot be read, or not changed safely, or not written.
    """
    try:
        data = read_regular_file(path)
    except UnreadableFile as problem:
        raise ConfigError(f"{path}: cannot read the config file ({problem})") from None
    text = data.decode("utf-8", errors="replace") if data is not None else ""
    import tomllib  # here and in _read: the app imports this module before its first frame, and needs it after

    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error}); {name} not saved") from None
    line = f"{name} = {json.dumps(value)}\n"  # a JSON string or number is a TOML one
    mine = re.compile(rf"\s*[\"']?{re.escape(name)}[\"']?\s*=")
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    for index, current in enumerate(lines):
        if _TABLE.match(current):
            lines.insert(index, line)
            break
        if mine.match(current):
            lines[index] = line
            break
    else:
        lines.append(line)
    changed = "".join(lines)
    if _read(changed) != {**before, name: value}:
        raise ConfigError(f"{path}: cannot change '{name}' without changing more; set {line.strip()} by hand")
    try:
        _replace(path, changed)
    except OSError as error:
        raise ConfigError(f"{path}: cannot write the config file ({error.strerror or error})") from None


def remember_choice(settings: Settings, name: str, value: str | int) -> str:
    """Keep a choice made in the app in the config file; return a sentence saying where it went.

    Raises:
        ConfigError: it could not be kept (the sentence says why).
    """
    save_setting(settings.paths.config_file, name, value)
    source = settings.sources.get(name, "")
    if source.startswith(("env ", "flag ")):
        overridden_by = source.split(" ", 1)[1]
        return f"Saved in {settings.paths.config_file}, but {overridden_by} overrides it at the next start."
    return f"Saved in {settings.paths.config_file}."


def _read(text: str) -> dict[str, object] | None:
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, with the old file's mode (0600 for a new one)."""
    private_dir(path.parent)
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        mode = PRIVATE_FILE
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
