"""One settings type per concern, each default written once.

A setting such as the heartbeat interval is kept from the config file to
the socket in the one type that uses it (``ClientSettings``); the config's
``Settings`` and the app's ``AppSettings`` hold that type whole, and
``launch.py`` hands it over as it is.
"""

import dataclasses
import inspect
import subprocess
import sys
import typing

import msgspec

from mfu_tui.client import ChatClient, ClientSettings
from mfu_tui.config import SETTINGS, Settings, load_settings
from mfu_tui.launch import app_settings
from mfu_tui.protocol import ChatParams, ChatSettings
from mfu_tui.tui import AppChoices, AppSettings

#: Every type that holds settings, and the client's constructor, whose keywords are settings too.
SETTINGS_TYPES = (Settings, AppSettings, AppChoices, ClientSettings, ChatSettings, ChatParams)

#: Not settings but the local server's wiring, passed on as url and token are: the app hands them to
#: the client, and ``None`` (not given) is all either writes. Nothing else may be written twice.
WIRING = {"account", "user", "relocate"}


def defaults_of(kind) -> dict[str, typing.Any]:
    """The fields of ``kind`` that have a default, and the default (a factory's product)."""
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        return {
            field.name: field.default_factory() if field.default is msgspec.NODEFAULT else field.default
            for field in msgspec.structs.fields(kind)
            if field.required is False
        }
    return {
        field.name: field.default_factory() if field.default is dataclasses.MISSING else field.default
        for field in dataclasses.fields(kind)
        if field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
    }


def written_defaults(kind) -> set[str]:
    """The fields of ``kind`` with a default written there: not one that holds another settings type whole."""
    return {name for name, value in defaults_of(kind).items() if not isinstance(value, SETTINGS_TYPES)}


def test_no_two_settings_types_write_a_default_for_the_same_setting():
    client_keywords = {
        name
        for name, parameter in inspect.signature(ChatClient).parameters.items()
        if parameter.default is not inspect.Parameter.empty and name != "settings"
    }
    written = {kind.__name__: written_defaults(kind) for kind in SETTINGS_TYPES} | {"ChatClient": client_keywords}
    assert written["ClientSettings"] >= {"ping_interval", "ping_timeout", "request_timeout", "data_dir"}
    assert written["AppChoices"] >= {"theme", "sidebar_width", "keymap"}
    owners: dict[str, list[str]] = {}
    for kind, names in written.items():
        for name in names:
            owners.setdefault(name, []).append(kind)
    assert {name: kinds for name, kinds in owners.items() if len(kinds) > 1 and name not in WIRING} == {}
    assert all(defaults_of(AppSettings)[name] is None for name in WIRING)
    # A setting kept in another type under another name (heartbeat_interval is client.ping_interval)
    # must not come back as a field of its own in the config's or the app's settings.
    renamed = {setting.name for setting in SETTINGS if len(setting.path) > 1}
    assert "heartbeat_interval" in renamed
    assert renamed & {field.name for kind in (Settings, AppSettings) for field in dataclasses.fields(kind)} == set()


def test_each_setting_is_kept_in_the_type_that_uses_it_and_starts_at_that_type_s_default(paths):
    settings = Settings(paths=paths)
    kept_in = {}
    for setting in SETTINGS:
        *holders, attribute = setting.path
        holder = settings
        for name in holders:
            holder = getattr(holder, name)
        kept_in[setting.name] = type(holder).__name__
        assert settings.get(setting.name) == defaults_of(type(holder))[attribute], setting.name
    assert kept_in["heartbeat_interval"] == kept_in["heartbeat_timeout"] == "ClientSettings"
    assert kept_in["theme"] == kept_in["keys"] == kept_in["sidebar_width"] == kept_in["model"] == "AppChoices"
    assert kept_in["new_chat.system_prompt"] == "ChatSettings" and kept_in["new_chat.seed"] == "ChatParams"
    assert {name for name, kind in kept_in.items() if kind == "Settings"} == {
        "server",
        "token",
        "provider",
        "log_file",
        "debug",
    }


def test_the_app_gets_the_config_s_client_settings_and_choices_whole(paths, write_config):
    write_config(
        'heartbeat_interval = 5\ntheme = "nord"\n\n[keys]\n"app.cancel" = "escape,ctrl+g"\n\n'
        "[new_chat]\ntemperature = 0.3\n"
    )
    settings = load_settings({"server": "wss://chat.example/ws", "token": "a.b.c"}, {}, paths)
    app = app_settings(settings, None)
    assert (app.url, app.token) == ("wss://chat.example/ws", "a.b.c")
    assert app.client is settings.client and app.choices is settings.app
    assert app.client == ClientSettings(data_dir=paths.data_dir, ping_interval=5.0)
    assert app.choices == AppChoices(
        theme="nord", keymap={"app.cancel": "escape,ctrl+g"}, new_chat=ChatSettings(params=ChatParams(temperature=0.3))
    )


def test_reading_the_config_does_not_import_textual():
    probe = (
        "import sys\n"
        "from mfu_tui.config import load_settings\n"
        "import mfu_tui.tui.settings\n"
        "print('textual' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
