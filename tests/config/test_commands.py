"""`mfu-chat login`, `logout`, `config path` and `config show`, run through the real CLI."""

import io
import stat
import time

import jwt
import pytest

from mfu_tui.cli import main
from tests.support.programs import free_port
from tests.tui.helpers import server_thread

SECRET = "s" * 40


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    for variable in (
        "MFU_WS_URL",
        "VITE_WS_URL",
        "MFU_TOKEN",
        "MFU_MODEL",
        "MFU_THEME",
        "MFU_DEBUG",
        "MFU_PROVIDER",
        "MFU_OPENAI_BASE_URL",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("MFU_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MFU_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MFU_LOG_DIR", str(tmp_path / "log"))
    return tmp_path


def token(user="bob", ttl=3600) -> str:
    now = int(time.time())
    return jwt.encode({"sub": user, "iat": now, "exp": now + ttl}, SECRET, algorithm="HS256")


def login(monkeypatch, text: str, *argv: str) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(text + "\n"))
    return main(["login", *argv])


def test_config_path_prints_the_file(home, capsys):
    assert main(["config", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(home / "config" / "config.toml")


def test_login_stores_a_private_token_that_the_app_then_uses(home, monkeypatch, capsys):
    assert login(monkeypatch, token(), "--server", "wss://chat.example/ws", "--no-check") == 0
    out = capsys.readouterr().out
    assert "Logged in to wss://chat.example/ws as bob" in out and "not checked with the server" in out
    stored = home / "config" / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert main(["config", "show"]) == 0
    shown = capsys.readouterr().out
    assert "wss://chat.example/ws" in shown and "(hidden)" in shown
    assert token() not in shown
    assert main(["config"]) == 0  # alone: show
    assert capsys.readouterr().out == shown


def test_login_refuses_an_expired_token_and_saves_nothing(home, monkeypatch, capsys):
    assert login(monkeypatch, token(ttl=-60), "--server", "wss://chat.example/ws") == 2
    assert "expired" in capsys.readouterr().err
    assert not (home / "config" / "credentials.json").exists()


def test_login_refuses_something_that_is_not_a_token(home, monkeypatch, capsys):
    assert login(monkeypatch, "hunter2", "--server", "wss://chat.example/ws") == 2
    assert "not a token" in capsys.readouterr().err


def test_login_needs_to_know_the_server(monkeypatch, capsys):
    assert login(monkeypatch, token()) == 2
    assert "give --server" in capsys.readouterr().err


def test_logout_deletes_the_token(home, monkeypatch, capsys):
    login(monkeypatch, token(), "--server", "wss://chat.example/ws", "--no-check")
    assert main(["logout"]) == 0
    assert not (home / "config" / "credentials.json").exists()
    assert main(["logout"]) == 0
    assert "Not logged in" in capsys.readouterr().out


def test_config_show_names_each_source(home, monkeypatch, capsys):
    (home / "config").mkdir()
    (home / "config" / "config.toml").write_text('theme = "nord"\nheartbeat_interval = 5\n')
    monkeypatch.setenv("MFU_MODEL", "llama3")
    assert main(["--server", "ws://127.0.0.1:5001/ws", "config", "show"]) == 0
    table = capsys.readouterr().out.split("\n\n")[0]  # the notes follow a blank line
    lines = {line.split()[0]: line for line in table.splitlines()}
    assert lines["server"].endswith("(flag --server)")
    assert lines["model"].endswith("(env MFU_MODEL)")
    assert lines["theme"].endswith(f"(file {home / 'config' / 'config.toml'})")
    assert lines["heartbeat_timeout"].endswith("(default)")


def test_config_show_reports_a_bad_file_in_one_line(home, capsys):
    (home / "config").mkdir()
    (home / "config" / "config.toml").write_text("colour = 1\n")
    assert main(["config", "show"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown key 'colour'" in err


def provider_row(out: str) -> list[str]:
    """The words of the provider's row of the table that `config show` printed."""
    table = out.split("\n\n")[0]  # the notes follow a blank line
    return next(line.split(maxsplit=2) for line in table.splitlines() if line.startswith("provider "))


def test_config_show_explains_the_auto_provider_and_how_to_pin_it(home, capsys):
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert provider_row(out) == ["provider", "auto", "(default)"]
    explained = " ".join(out.split("\n\n", 1)[1].split())  # the note, unwrapped
    assert explained.startswith("provider auto: at start mfu-chat probes http://127.0.0.1:11434;")
    assert "On a shared machine that port may be another user's process" in explained
    assert f'pin the provider in {home / "config" / "config.toml"}, provider = "demo"' in explained


def test_config_show_names_the_pinned_provider_and_its_source(home, monkeypatch, capsys):
    (home / "config").mkdir()
    (home / "config" / "config.toml").write_text('provider = "demo"\n')
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert provider_row(out) == ["provider", "demo", f"(file {home / 'config' / 'config.toml'})"]
    assert "provider demo: answers come from the offline demo model; nothing is probed." in out
    assert "another user's process" not in out

    monkeypatch.setenv("MFU_PROVIDER", "http://127.0.0.1:8000")
    assert main(["--provider", "https://models.example:8443", "config", "show"]) == 0
    assert provider_row(capsys.readouterr().out) == ["provider", "https://models.example:8443", "(flag --provider)"]


def test_config_show_says_the_provider_is_unused_with_a_server(home, monkeypatch, capsys):
    monkeypatch.setenv("MFU_PROVIDER", "demo")
    assert main(["--server", "wss://chat.example/ws", "config", "show"]) == 0
    assert "provider: unused, since a server is set" in capsys.readouterr().out


def test_config_show_refuses_a_provider_flag_with_a_remote_server_in_one_line(home, capsys):
    assert main(["--server", "wss://chat.example/ws", "--provider", "demo", "config", "show"]) == 2
    assert capsys.readouterr().err == (
        "mfu-chat config: --provider is for the local server, but the server is wss://chat.example/ws "
        "(flag --server): add --server local to run the local one\n"
    )


def test_server_local_is_shown_with_its_source_and_leaves_the_login_alone(home, monkeypatch, capsys):
    login(monkeypatch, token(), "--server", "wss://chat.example/ws", "--no-check")
    capsys.readouterr()
    assert main(["--server", "local", "--provider", "demo", "config", "show"]) == 0
    table = capsys.readouterr().out.split("\n\n")[0]
    lines = {line.split()[0]: line.split(maxsplit=1)[1] for line in table.splitlines()}
    assert lines["server"].split() == ["local", "server", "(flag", "--server)"]
    assert lines["token"].split() == ["-", "(default)"]
    assert lines["provider"].split() == ["demo", "(flag", "--provider)"]
    # The local server has no stored token: logging out of it forgets none, the login's stays.
    assert main(["logout", "--server", "local"]) == 2
    assert capsys.readouterr().err == "mfu-chat logout: the local server has no stored token; nothing was deleted\n"
    assert main(["config", "show"]) == 0
    assert "wss://chat.example/ws" in capsys.readouterr().out
    assert login(monkeypatch, token(), "--server", "local") == 2
    assert capsys.readouterr().err == (
        "mfu-chat login: the local server needs no login (it signs you in by itself); give --server wss://HOST/ws\n"
    )


def test_a_bad_provider_flag_is_one_line_and_exit_2(home, capsys):
    assert main(["--provider", "ollama", "config", "show"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("mfu-chat config: flag --provider: 'provider' must be auto, demo, or the http:// or https://")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('theme = "neon"\n', "'theme' 'neon' is not a theme"),
        ('[keys]\n"app.new_chat" = "control+tee"\n', "'control+tee' is not a key name"),
        ('[keys]\n"app.export" = "ctrl+q"\n', "ctrl+q is already app.quit's key"),
    ],
)
def test_config_show_fails_on_what_the_app_would_refuse(home, capsys, text, problem):
    (home / "config").mkdir()
    (home / "config" / "config.toml").write_text(text)
    assert main(["config", "show"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mfu-chat config: {home / 'config' / 'config.toml'}: ") and err.count("\n") == 1
    assert problem in err


def test_login_checks_the_token_with_the_server_before_saving_it(home, monkeypatch, capsys):
    with server_thread(home / "server") as server:
        good = server.token("carol")
        assert login(monkeypatch, good, "--server", server.url) == 0
        out = capsys.readouterr().out
        assert f"Logged in to {server.url} as carol" in out and "not checked" not in out
        assert (home / "config" / "credentials.json").exists()
        # Signed with another key: the server refuses it, and the stored token stays.
        assert login(monkeypatch, token("carol"), "--server", server.url) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"mfu-chat login: the server at {server.url} refused that token (auth refused: ")
        assert err.strip().endswith("nothing was saved")
    assert good in (home / "config" / "credentials.json").read_text()


def test_login_to_a_wrong_port_says_it_could_not_check_and_saves_nothing(home, monkeypatch, capsys):
    url = f"ws://127.0.0.1:{free_port()}/ws"
    assert login(monkeypatch, token(), "--server", url) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"mfu-chat login: could not check the token: server unreachable at {url} (connection refused)"
    )
    assert "--no-check" in err and "nothing was saved" in err
    assert not (home / "config" / "credentials.json").exists()
