"""Settings: precedence flag > env > file > default, and one clear line per mistake."""

import pytest

from mfu_tui.config import ConfigError, Credentials, load_settings


def test_defaults_mean_a_local_server(paths):
    settings = load_settings({}, {}, paths)
    assert settings.embedded and settings.server is None and settings.token is None
    assert (settings.provider, settings.probe_url) == ("auto", "http://127.0.0.1:11434")
    assert (settings.app.theme, settings.app.sidebar_width) == ("textual-dark", 24)
    assert (settings.client.ping_interval, settings.client.ping_timeout) == (25.0, 10.0)
    assert settings.client.data_dir == paths.data_dir  # the outbox goes where launch makes the data dir private
    assert settings.sources == {}


def test_flag_beats_env_beats_file_beats_default(paths, write_config):
    config = write_config('server = "ws://file.example:1/ws"\nmodel = "from-file"\ntheme = "nord"\n')
    environ = {"MFU_WS_URL": "ws://env.example:2/ws", "MFU_MODEL": "from-env"}
    settings = load_settings({"server": "ws://flag.example:3/ws"}, environ, paths)
    assert settings.server == "ws://flag.example:3/ws"
    assert settings.sources["server"] == "flag --server"
    assert (settings.app.model, settings.sources["model"]) == ("from-env", "env MFU_MODEL")
    assert (settings.app.theme, settings.sources["theme"]) == ("nord", f"file {config}")
    assert settings.client.ping_interval == 25.0 and "heartbeat_interval" not in settings.sources


def test_seed_variable_is_read_and_gets_the_ws_path(paths):
    settings = load_settings({}, {"VITE_WS_URL": "ws://localhost:5001"}, paths)
    assert settings.server == "ws://localhost:5001/ws"
    assert settings.sources["server"] == "env VITE_WS_URL"
    assert load_settings({}, {"VITE_WS_URL": "ws://a:1", "MFU_WS_URL": "wss://b/ws"}, paths).server == "wss://b/ws"


def test_login_supplies_server_and_token_last(paths):
    Credentials.load(paths.credentials_file).store("wss://chat.example/ws", "stored-token")
    settings = load_settings({}, {}, paths)
    assert (settings.server, settings.token) == ("wss://chat.example/ws", "stored-token")
    assert settings.sources["token"].startswith("login ")
    # A token given explicitly wins over the stored one.
    assert load_settings({}, {"MFU_TOKEN": "env-token"}, paths).token == "env-token"
    # Another server has no stored token.
    assert load_settings({"server": "ws://other/ws"}, {}, paths).token is None


@pytest.mark.parametrize(
    ("flags", "environ", "text", "source"),
    [
        ({"server": "local"}, {}, "", "flag --server"),
        ({}, {"MFU_WS_URL": " Local "}, "", "env MFU_WS_URL"),
        ({}, {}, 'server = "local"\n', "file"),
    ],
)
def test_server_local_runs_the_local_server_even_when_logged_in(paths, write_config, flags, environ, text, source):
    Credentials.load(paths.credentials_file).store("wss://chat.example/ws", "stored-token")
    config = write_config(text)
    settings = load_settings(flags, environ, paths)
    assert settings.embedded and (settings.server, settings.token) == (None, None)
    assert settings.sources["server"] == (f"file {config}" if source == "file" else source)
    rows = {name: (value, where) for name, value, where in settings.shown()}
    assert rows["server"] == ("local server", settings.sources["server"])
    assert rows["token"] == ("-", "default")


def test_a_server_named_local_is_a_url_and_a_bare_name_is_refused(paths):
    assert load_settings({"server": "ws://local/ws"}, {}, paths).server == "ws://local/ws"
    with pytest.raises(ConfigError) as raised:
        load_settings({"server": "locl"}, {}, paths)
    assert str(raised.value) == "flag --server: 'server' must be a ws:// or wss:// URL, or local, got 'locl'"


@pytest.mark.parametrize(
    ("flags", "environ", "where"),
    [
        ({"server": "wss://chat.example/ws"}, {}, "flag --server"),
        ({}, {"MFU_WS_URL": "wss://chat.example/ws"}, "env MFU_WS_URL"),
        ({}, {}, "login"),
    ],
)
def test_provider_flag_with_a_remote_server_is_one_line_saying_how_to_run_locally(paths, flags, environ, where):
    Credentials.load(paths.credentials_file).store("wss://chat.example/ws", "stored-token")
    with pytest.raises(ConfigError) as raised:
        load_settings({**flags, "provider": "demo"}, environ, paths)
    line = str(raised.value)
    assert "\n" not in line
    assert line.startswith("--provider is for the local server, but the server is wss://chat.example/ws (")
    assert f"({where}" in line and line.endswith("add --server local to run the local one")
    # From the environment or the file, a provider is the local server's standing choice: kept, unused.
    assert load_settings(flags, {**environ, "MFU_PROVIDER": "demo"}, paths).provider == "demo"
    assert load_settings({"server": "local", "provider": "demo"}, environ, paths).embedded


def test_show_masks_the_token_and_names_sources(paths):
    settings = load_settings({"token": "secret.jwt.value"}, {}, paths)
    rows = {name: (value, source) for name, value, source in settings.shown()}
    assert rows["token"] == ("set, 16 characters (hidden)", "flag --token")
    assert "secret" not in repr(settings.shown())
    assert rows["server"] == ("local server", "default")


PROVIDER_WANTED = "must be auto, demo, or the http:// or https:// URL of an OpenAI-compatible server"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 'red'\n", "unknown key 'colour'"),
        (
            "server = 'http://example.com'\n",
            "'server' must be a ws:// or wss:// URL, or local, got 'http://example.com': try 'ws://example.com/ws'",
        ),
        (
            "server = 'https://chat.example:8443/chat/ws'\n",
            "'server' must be a ws:// or wss:// URL, or local, got 'https://chat.example:8443/chat/ws': "
            "try 'wss://chat.example:8443/chat/ws'",
        ),
        ("server = 5\n", "'server' must be a ws:// or wss:// URL, or local, got int"),
        ("heartbeat_interval = 'soon'\n", "'heartbeat_interval' must be a number of seconds, got 'soon'"),
        ("heartbeat_timeout = 0\n", "'heartbeat_timeout' must be between 0.1 and 3600 seconds, got 0"),
        ("debug = 'maybe'\n", "'debug' must be true or false, got 'maybe'"),
        ("theme = ''\n", "'theme' must be a non-empty string, got ''"),
        ("keys = 'escape'\n", "'keys' must be a table of binding id"),
        ("token = 'x'\n", "'token' does not belong in the config file; use `mfu-chat login`"),
        ("server = \n", "not valid TOML"),
        (
            "server = ws://x\n",
            'not valid TOML (Invalid value (at line 1, column 10)); text goes in quotes: server = "wss://',
        ),
        ("provider = 'ollama'\n", f"'provider' {PROVIDER_WANTED}, got 'ollama'"),
        ("provider = 'ftp://models.example'\n", f"'provider' {PROVIDER_WANTED}, got 'ftp://models.example'"),
        ("provider = 'http://'\n", f"'provider' {PROVIDER_WANTED}, got 'http://'"),
        ("provider = 'http://127.0.0.1:port'\n", f"'provider' {PROVIDER_WANTED}, got 'http://127.0.0.1:port'"),
        ("provider = 11434\n", f"'provider' {PROVIDER_WANTED}, got int"),
    ],
)
def test_each_bad_config_gives_one_line_naming_key_and_file(paths, write_config, text, message):
    config = write_config(text)
    with pytest.raises(ConfigError) as raised:
        load_settings({}, {}, paths)
    line = str(raised.value)
    assert "\n" not in line
    assert line.startswith(f"{config}: ")
    assert message in line


def test_bad_environment_value_names_the_variable(paths):
    with pytest.raises(ConfigError, match=r"^env MFU_WS_URL: 'server' must be a ws:// or wss:// URL"):
        load_settings({}, {"MFU_WS_URL": "localhost:5001"}, paths)


def test_key_bindings_table(paths, write_config):
    write_config('[keys]\ncancel = "escape,ctrl+g"\n')
    assert load_settings({}, {}, paths).app.keymap == {"cancel": "escape,ctrl+g"}


def test_provider_flag_beats_env_beats_file_beats_auto(paths, write_config):
    config = write_config('provider = "demo"\n')
    settings = load_settings({}, {}, paths)
    assert (settings.provider, settings.sources["provider"]) == ("demo", f"file {config}")
    environ = {"MFU_PROVIDER": "https://models.example/v1"}
    settings = load_settings({}, environ, paths)
    assert (settings.provider, settings.sources["provider"]) == ("https://models.example/v1", "env MFU_PROVIDER")
    settings = load_settings({"provider": " AUTO "}, environ, paths)
    assert (settings.provider, settings.sources["provider"]) == ("auto", "flag --provider")


@pytest.mark.parametrize(
    ("flags", "environ", "where"),
    [
        ({"provider": "ollama"}, {}, "flag --provider"),
        ({}, {"MFU_PROVIDER": "localhost:11434"}, "env MFU_PROVIDER"),
    ],
)
def test_a_bad_provider_names_where_it_came_from(paths, flags, environ, where):
    with pytest.raises(ConfigError) as raised:
        load_settings(flags, environ, paths)
    assert str(raised.value).startswith(f"{where}: 'provider' {PROVIDER_WANTED}, got ")


def test_auto_probes_what_the_embedded_server_probes(paths):
    from mfu_tui.config.settings import AUTO_PROBE_URL
    from mfu_tui.embedded_server import DEFAULT_LOCAL_MODELS

    assert AUTO_PROBE_URL == DEFAULT_LOCAL_MODELS  # the two copies of Ollama's address agree
    assert load_settings({}, {"MFU_OPENAI_BASE_URL": "http://10.0.0.5:8000"}, paths).probe_url == (
        "http://10.0.0.5:8000"
    )


def test_provider_notes_say_what_each_choice_means(paths):
    [note] = load_settings({}, {}, paths).notes()
    assert "probes http://127.0.0.1:11434" in note and "another user's process" in note
    assert 'provider = "demo"' in note and str(paths.config_file) in note
    [note] = load_settings({"provider": "demo"}, {}, paths).notes()
    assert "nothing is probed" in note
    [note] = load_settings({"provider": "http://alice:hunter2@models.example:8000"}, {}, paths).notes()
    assert "http://alice:***@models.example:8000" in note and "hunter2" not in note
    assert "demo model never stands in" in note
    [note] = load_settings({"server": "wss://chat.example/ws"}, {"MFU_PROVIDER": "demo"}, paths).notes()
    assert note.startswith("provider: unused, since a server is set")


def test_new_chat_defaults_come_from_their_table_each_with_its_source(paths, write_config):
    prompt = "You are a patient tutor.\nExplain every step, and ask before you assume anything about the reader."
    config = write_config(f'[new_chat]\nsystem_prompt = """{prompt}"""\ntemperature = 1\nseed = -5\n')
    settings = load_settings({}, {}, paths)
    rows = {name: (value, source) for name, value, source in settings.shown()}
    new_chat = settings.app.new_chat
    assert (new_chat.system_prompt, new_chat.params.temperature, new_chat.params.seed) == (prompt, 1.0, -5)
    assert new_chat.params.top_p is None and new_chat.params.max_tokens is None
    assert rows["new_chat.temperature"] == ("1.0", f"file {config}")
    assert rows["new_chat.top_p"] == ("-", "default")
    # A long prompt shows as its start, on one line.
    assert rows["new_chat.system_prompt"] == ("You are a patient tutor. Explain every step, an…", f"file {config}")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[new_chat]\ntemperature = 2.5\n", "'new_chat.temperature' must be a number from 0 to 2, got 2.5"),
        ("[new_chat]\ntop_p = true\n", "'new_chat.top_p' must be a number from 0 to 1, got True"),
        ("[new_chat]\nmax_tokens = 0\n", "'new_chat.max_tokens' must be a whole number from 1 to 1,000,000, got 0"),
        ("[new_chat]\nseed = 1.5\n", "'new_chat.seed' must be a whole number from"),
        ("[new_chat]\nsystem_prompt = '  '\n", "'new_chat.system_prompt' must be a non-empty string"),
        ("[new_chat]\ntemprature = 1\n", "unknown key 'new_chat.temprature' (known keys of [new_chat]: max_tokens"),
        ("new_chat = 1\n", "'new_chat' must be a table ([new_chat] with max_tokens"),
    ],
)
def test_a_bad_new_chat_default_is_one_line_naming_the_key_and_the_file(paths, write_config, text, message):
    config = write_config(text)
    with pytest.raises(ConfigError) as error:
        load_settings({}, {}, paths)
    assert str(error.value).startswith(f"{config}: ") and message in str(error.value)
