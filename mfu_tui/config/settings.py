"""The settings in effect, and where each one came from.

Every setting is looked up in this order, the first found wins:

1. a command-line flag,
2. an environment variable,
3. the config file (TOML, ``mfu-chat config path`` prints where),
4. the default.

The ``server`` setting is a WebSocket URL, or ``local`` for the local
server even when a login names another (unset, it is the last login's
server, else the local one). The ``provider`` setting decides where the
local server's answers come from (``auto``, ``demo`` or a model server's
URL); it is unused when another server is in effect, since that server has
its own, and ``--provider`` given then is refused: it would be ignored.

Settings of a table are named with a dot: ``new_chat.temperature`` is
``temperature`` in the file's ``[new_chat]`` table.

Each setting is kept in the type that uses it, whose default is the only
one: the heartbeat in the client's ``ClientSettings``, the theme, keys and
new chats in the app's ``AppChoices``; ``Settings`` holds both whole, and
its own fields only for what the launcher itself uses (the server, the
provider, the log).

The token is the exception: it is never read from the config file (which is
not private); it comes from ``--token``, ``MFU_TOKEN`` or ``mfu-chat login``.
A bad value or an unknown key stops everything with one line that names the
key and the file, so the app never starts half-configured.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import FrozenInstanceError, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mfu_tui.client.settings import ClientSettings
from mfu_tui.config.credentials import Credentials, CredentialsError
from mfu_tui.config.paths import Paths, UnreadableFile, read_regular_file
from mfu_tui.model_server import is_model_server_url
from mfu_tui.protocol import MAX_SEED, MAX_SYSTEM_PROMPT, MAX_TEMPERATURE, MAX_TOKENS, MAX_TOP_P, MIN_SEED
from mfu_tui.redaction import redact, redact_password
from mfu_tui.tui.settings import AppChoices

#: What ``provider = "auto"`` probes unless MFU_OPENAI_BASE_URL names another server:
#: Ollama's default. The same as ``mfu_tui.embedded_server.DEFAULT_LOCAL_MODELS``
#: (this module must not import the server; a test checks that they agree).
AUTO_PROBE_URL = "http://127.0.0.1:11434"

#: The ``server`` that asks for the local server, whatever a login says: never a URL, which has a scheme.
LOCAL_SERVER = "local"


class ConfigError(ValueError):
    """The configuration cannot be used; the message is one line for people."""


def _server_url(value: Any) -> str | None:
    """The server's URL, or ``None`` for ``local``: the local server, as when none is set."""
    wanted = f"must be a ws:// or wss:// URL, or {LOCAL_SERVER}"
    if not isinstance(value, str):
        raise ValueError(f"{wanted}, got {type(value).__name__}")
    if value.strip().lower() == LOCAL_SERVER:
        return None
    parts = urlsplit(value.strip())
    if parts.scheme in ("http", "https") and parts.hostname:
        # The address of the web page, most likely: the same host speaks WebSocket at ws(s)://.
        instead = parts._replace(scheme="wss" if parts.scheme == "https" else "ws")
        if instead.path in ("", "/"):
            instead = instead._replace(path="/ws")
        raise ValueError(f"{wanted}, got {value!r}: try {instead.geturl()!r}")
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"{wanted}, got {value!r}")
    # The seed's VITE_WS_URL has no path: the endpoint is /ws.
    return parts._replace(path="/ws").geturl() if parts.path in ("", "/") else parts.geturl()


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty string, got {value!r}")
    return value.strip()


def _provider(value: Any) -> str:
    wanted = "must be auto, demo, or the http:// or https:// URL of an OpenAI-compatible server"
    if not isinstance(value, str):
        raise ValueError(f"{wanted}, got {type(value).__name__}")
    text = value.strip()
    if text.lower() in ("auto", "demo"):
        return text.lower()
    if not is_model_server_url(text):
        raise ValueError(f"{wanted}, got {value!r}")
    return text


def _seconds(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"must be a number of seconds, got {value!r}") from None
    if not 0.1 <= number <= 3600:
        raise ValueError(f"must be between 0.1 and 3600 seconds, got {value!r}")
    return number


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return value.lower() in ("1", "true", "yes", "on")
    raise ValueError(f"must be true or false, got {value!r}")


def _path(value: Any) -> Path:
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise ValueError(f"must be a file path, got {value!r}")
    return Path(value).expanduser()


def _system_prompt(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty string, got {value!r}")
    if len(value) > MAX_SYSTEM_PROMPT:
        raise ValueError(f"must be at most {MAX_SYSTEM_PROMPT} characters, got {len(value)}")
    return value


def _number_from_0_to(highest: float) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= highest:
            raise ValueError(f"must be a number from 0 to {highest:g}, got {value!r}")
        return float(value)

    return parse


def _whole_number(lowest: int, highest: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest:
            raise ValueError(f"must be a whole number from {lowest:,} to {highest:,}, got {value!r}")
        return value

    return parse


def _columns(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 12 <= value <= 120:
        raise ValueError(f"must be a whole number of columns from 12 to 120, got {value!r}")
    return value


def _keymap(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in value.items()
    ):
        raise ValueError('must be a table of binding id = "keys", e.g. cancel = "escape,ctrl+g"')
    return dict(value)


@dataclass(frozen=True)
class Setting:
    """One setting: how to read it, where it may come from and where it is kept."""

    name: str
    help: str
    parse: Callable[[Any], Any]
    env: tuple[str, ...] = ()
    in_file: bool = True
    secret: bool = False
    kept_in: str = ""
    """The attribute of ``Settings`` that holds it, dotted (``client.ping_interval``); empty: ``name``."""

    @property
    def path(self) -> list[str]:
        """The attributes from ``Settings`` to the value: ``["client", "ping_interval"]``."""
        return (self.kept_in or self.name).split(".")


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "server",
        f"WebSocket URL of the server, or {LOCAL_SERVER}: start a local server; unset: the login's, else local",
        _server_url,
        env=("MFU_WS_URL", "VITE_WS_URL"),
    ),
    Setting("token", "JWT for the server", _text, env=("MFU_TOKEN",), in_file=False, secret=True),
    Setting(
        "provider",
        "where the local server's answers come from: auto, demo or a model server's http(s) URL",
        _provider,
        env=("MFU_PROVIDER",),
    ),
    Setting(
        "model", "model for new chats; unset: the server's default", _text, env=("MFU_MODEL",), kept_in="app.model"
    ),
    Setting("theme", "Textual theme, e.g. textual-dark, nord, gruvbox", _text, env=("MFU_THEME",), kept_in="app.theme"),
    Setting(
        "sidebar_width",
        "columns of the chat list (alt+left / alt+right in the app)",
        _columns,
        kept_in="app.sidebar_width",
    ),
    Setting("heartbeat_interval", "seconds between heartbeats", _seconds, kept_in="client.ping_interval"),
    Setting("heartbeat_timeout", "seconds to wait for a heartbeat's answer", _seconds, kept_in="client.ping_timeout"),
    Setting("log_file", "where --debug writes; default: the log dir", _path),
    Setting("debug", "log connection events to the log file", _boolean, env=("MFU_DEBUG",)),
    Setting("keys", "key bindings by id (see F1 in the app)", _keymap, kept_in="app.keymap"),
    Setting(
        "new_chat.system_prompt",
        "system prompt of chats created in the app",
        _system_prompt,
        kept_in="app.new_chat.system_prompt",
    ),
    Setting(
        "new_chat.temperature",
        "temperature of new chats, 0 to 2",
        _number_from_0_to(MAX_TEMPERATURE),
        kept_in="app.new_chat.params.temperature",
    ),
    Setting(
        "new_chat.top_p",
        "top_p of new chats, 0 to 1",
        _number_from_0_to(MAX_TOP_P),
        kept_in="app.new_chat.params.top_p",
    ),
    Setting(
        "new_chat.max_tokens",
        "most tokens an answer in a new chat may have",
        _whole_number(1, MAX_TOKENS),
        kept_in="app.new_chat.params.max_tokens",
    ),
    Setting(
        "new_chat.seed",
        "sampling seed of new chats",
        _whole_number(MIN_SEED, MAX_SEED),
        kept_in="app.new_chat.params.seed",
    ),
)
_BY_NAME = {setting.name: setting for setting in SETTINGS}


def _tables() -> dict[str, set[str]]:
    """The file's tables of settings (``[new_chat]``) and the keys each may hold."""
    tables: dict[str, set[str]] = {}
    for setting in SETTINGS:
        table, _, key = setting.name.rpartition(".")
        if table:
            tables.setdefault(table, set()).add(key)
    return tables


_TABLES = _tables()

#: Characters of a long value (a system prompt) that ``config show`` prints.
SHOWN_CHARS = 48


@dataclass
class Settings:
    """The settings in effect for one run of `mfu-chat`."""

    paths: Paths
    server: str | None = None
    """WebSocket URL of the server; ``None`` runs the embedded local server (``local``, or none set)."""
    token: str | None = None
    """JWT for ``server`` (the embedded server mints its own)."""
    provider: str = "auto"
    """Where the embedded server's answers come from (unused with a ``server``, refused from a flag then).

    ``auto`` probes ``probe_url`` at start and uses the OpenAI-compatible
    server there if it answers, else ``demo``; ``demo`` is the offline demo
    model, nothing probed; an ``http(s)://`` URL is a model server used as is,
    never replaced by the demo."""
    log_file: Path | None = None
    """Where logs go; ``None`` with ``debug`` means the default log file."""
    debug: bool = False
    """Log connection events (never tokens)."""
    app: AppChoices = field(default_factory=AppChoices)
    """The app's settings: theme, keys, model, new chats (``theme``, ``keys``, ``new_chat.*``...)."""
    client: ClientSettings = field(default_factory=ClientSettings)
    """The client's: the heartbeat (``heartbeat_*``), and ``paths.data_dir`` for its outbox."""
    sources: dict[str, str] = field(default_factory=dict)
    """Setting name to where its value came from (``flag --server``, ``env MFU_TOKEN``...)."""
    probe_url: str = AUTO_PROBE_URL
    """What ``provider = "auto"`` probes: ``MFU_OPENAI_BASE_URL``, else Ollama's default port."""

    def __post_init__(self) -> None:
        if self.client.data_dir is None:  # the outbox goes where the paths say, which launch makes private
            self.client = replace(self.client, data_dir=self.paths.data_dir)

    def where(self, name: str) -> str:
        """Where setting ``name`` came from, for an error message: a file path, ``env X`` or ``flag --x``."""
        return _where(self.sources.get(name, "default"), self.paths.config_file)

    @property
    def embedded(self) -> bool:
        """True when a local server will be started: ``local`` was chosen, or no server is configured."""
        return self.server is None

    def shown(self) -> list[tuple[str, str, str]]:
        """(name, value, source) for ``mfu-chat config show``; tokens masked."""
        rows = []
        for setting in SETTINGS:
            value = self.get(setting.name)
            if setting.secret and value:
                text = f"set, {len(value)} characters (hidden)"
            elif value is None:
                text = "local server" if setting.name == "server" else "-"
            elif isinstance(value, dict):
                text = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
            else:
                text = str(value).lower() if isinstance(value, bool) else str(value)
            if setting.name == "new_chat.system_prompt" and value:  # a paragraph: its start, on one line
                text = " ".join(text.split())
                text = text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"
            if setting.name == "provider":  # a model server's URL may carry a password
                text = redact_password(text)
            # A token can hide in another setting too: wss://host/ws?token=...
            rows.append((setting.name, redact(text), self.sources.get(setting.name, "default")))
        return rows

    def get(self, name: str) -> Any:
        """The value of setting ``name`` (``heartbeat_interval`` is ``self.client.ping_interval``)."""
        value: Any = self
        for attribute in _BY_NAME[name].path:
            value = getattr(value, attribute)
        return value

    def set(self, name: str, value: Any) -> None:
        """Set setting ``name`` (see ``get``)."""
        _assigned(self, _BY_NAME[name].path, value)

    def notes(self) -> list[str]:
        """What the provider in effect means, for ``mfu-chat config show``: one paragraph each."""
        if not self.embedded:
            return [
                "provider: unused, since a server is set: that server chooses where answers come from. "
                "The provider applies only to the local server that mfu-chat starts when no server is set, "
                f"or with --server {LOCAL_SERVER}."
            ]
        if self.provider == "demo":
            return ["provider demo: answers come from the offline demo model; nothing is probed."]
        if self.provider != "auto":
            url = redact(redact_password(self.provider))
            return [
                f"provider {url}: answers come from the OpenAI-compatible server at that URL, nothing is probed. "
                "If it does not answer, answers fail with its error; the demo model never stands in for it."
            ]
        probe = redact(redact_password(self.probe_url))
        where = urlsplit(self.probe_url).netloc.rpartition("@")[2]
        return [
            f"provider auto: at start mfu-chat probes {probe}; if an OpenAI-compatible server answers there, "
            f"your chats go to it (the header says 'local · models at {where}'), else the offline demo model "
            "answers. On a shared machine that port may be another user's process: pin the provider in "
            f'{self.paths.config_file}, provider = "demo", or provider = "{probe}" once you know whose server '
            "it is (or use --provider, MFU_PROVIDER)."
        ]


def load_settings(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    paths: Paths | None = None,
) -> Settings:
    """Resolve every setting from flags, environment, config file and defaults.

    Args:
        flags: Values from the command line; ``None`` values mean "not given".
        environ: The environment (default: ``os.environ``).
        paths: Where the files are (default: the user's platform dirs).

    Raises:
        ConfigError: a bad value, an unknown key, or an unreadable file.
    """
    flags = flags or {}
    environ = os.environ if environ is None else environ
    paths = paths or Paths.for_user()
    in_file = _read_file(paths.config_file)
    settings = Settings(paths=paths, probe_url=environ.get("MFU_OPENAI_BASE_URL") or AUTO_PROBE_URL)
    for setting in SETTINGS:
        found = _lookup(setting, flags, environ, in_file, paths.config_file)
        if found is None:
            continue  # the default: the type that keeps it holds each one, written once
        raw, source = found
        try:
            settings.set(setting.name, setting.parse(raw))
        except ValueError as problem:
            # The bad value is quoted: redacted, in case it is a URL with a token.
            raise ConfigError(redact(f"{_where(source, paths.config_file)}: '{setting.name}' {problem}")) from None
        settings.sources[setting.name] = source
    _apply_login(settings)
    _check_provider_flag(settings)
    return settings


def _assigned(holder: Any, path: list[str], value: Any) -> Any:
    """``holder`` with the attribute at ``path`` set to ``value``: changed in place, or a copy if it is frozen.

    ``ClientSettings`` is frozen (the client takes it whole and keeps it), so
    a setting kept there replaces it in the ``Settings`` that holds it.
    """
    attribute, *rest = path
    if rest:
        value = _assigned(getattr(holder, attribute), rest, value)
    try:
        setattr(holder, attribute, value)
    except FrozenInstanceError:
        return replace(holder, **{attribute: value})
    return holder


def _lookup(setting: Setting, flags, environ, in_file, config_file: Path) -> tuple[Any, str] | None:
    flag = flags.get(setting.name)
    if flag is not None and flag is not False:
        return flag, f"flag --{setting.name.replace('_', '-')}"
    for name in setting.env:
        if environ.get(name):
            return environ[name], f"env {name}"
    table, _, key = setting.name.rpartition(".")
    found_in = in_file.get(table, {}) if table else in_file
    if setting.in_file and key in found_in:
        return found_in[key], f"file {config_file}"
    return None


def _apply_login(settings: Settings) -> None:
    """Fill the server and the token from ``mfu-chat login`` where nothing else did.

    A ``server`` set to ``local`` is ``None`` with a source: it stays local.
    """
    path = settings.paths.credentials_file
    try:
        credentials = Credentials.load(path)
    except CredentialsError as error:
        raise ConfigError(str(error)) from None
    if "server" not in settings.sources and credentials.default_server:
        settings.server = credentials.default_server
        settings.sources["server"] = f"login {path}"
    if settings.token is None and settings.server and (token := credentials.token_for(settings.server)):
        settings.token = token
        settings.sources["token"] = f"login {path}"


def _check_provider_flag(settings: Settings) -> None:
    """Refuse ``--provider`` with a server that is not the local one: it would be ignored, unsaid.

    From the environment or the file, a provider is the local server's
    standing choice, kept for the runs that use it: ``config show`` says it
    is unused.
    """
    if settings.embedded or not settings.sources.get("provider", "").startswith("flag "):
        return
    raise ConfigError(
        redact(
            f"--provider is for the local server, but the server is {settings.server} "
            f"({settings.sources['server']}): add --server {LOCAL_SERVER} to run the local one"
        )
    )


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = read_regular_file(path)
    except UnreadableFile as problem:
        raise ConfigError(f"{path}: cannot read the config file ({problem})") from None
    if data is None:
        return {}
    import tomllib  # here, not with the module: with no config file, the app starts without it

    try:
        values = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: cannot read the config file (it is not UTF-8 text)") from None
    except tomllib.TOMLDecodeError as error:
        # The commonest slip: an address or a name written bare, as on the command line.
        quoting = '; text goes in quotes: server = "wss://host/ws"' if str(error).startswith("Invalid value") else ""
        raise ConfigError(f"{path}: not valid TOML ({error}){quoting}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML (nested too deeply)") from None
    for key in values:
        if key in _TABLES:
            _check_table(path, key, values[key])
            continue
        setting = _BY_NAME.get(key)
        if setting is None:
            known = ", ".join(s.name for s in SETTINGS if s.in_file and "." not in s.name) + ", " + ", ".join(_TABLES)
            raise ConfigError(f"{path}: unknown key '{key}' (known keys: {known})")
        if not setting.in_file:
            raise ConfigError(f"{path}: '{key}' does not belong in the config file; use `mfu-chat login`")
    return values


def _check_table(path: Path, table: str, value: Any) -> None:
    """Refuse a ``[table]`` that is not a table, or holds a key that is not one of its settings."""
    known = sorted(_TABLES[table])
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: '{table}' must be a table ([{table}] with {', '.join(known)})")
    for key in value:
        if key not in _TABLES[table]:
            raise ConfigError(f"{path}: unknown key '{table}.{key}' (known keys of [{table}]: {', '.join(known)})")


def _where(source: str, config_file: Path) -> str:
    """``file /x/config.toml`` -> ``/x/config.toml``; ``env MFU_X`` stays."""
    return str(config_file) if source.startswith("file ") else source
