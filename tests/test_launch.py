"""`mfu-chat` on a fresh machine: one command, a local server, a working chat.

These run the installed command the way a new user does: a fresh HOME with
every platformdirs path under tmp, nothing configured.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

from mfu_tui import launch
from mfu_tui.cli import main
from mfu_tui.config import Credentials, Paths, Settings
from mfu_tui.server.providers.demo import demo_answer
from tests.support.processes import wait_gone
from tests.support.server import ServerProcess
from tests.support.tmux import TmuxPane, fresh_home, mfu_chat, needs_tmux
from tests.tui.test_tmux import upstream_in_a_thread

QUESTION = "What is a monad?"
WORDS = 45
GRACE = 0.5


def embedded_servers(home: Path) -> list[int]:
    """Pids of embedded servers whose database lies under ``home``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"mfu_tui.embedded_server" in command and any(str(home).encode() in part for part in command):
            pids.append(int(entry.name))
    return pids


def local_env(home: Path) -> dict[str, str]:
    # Nothing listens on loopback port 9: the model probe falls back to demo.
    return {
        **fresh_home(home),
        "MFU_OPENAI_BASE_URL": "http://127.0.0.1:9",
        "MFU_DEMO_WORDS": str(WORDS),
        "MFU_DEMO_DELAY_MS": "2",
        # The local server stops this long after the last app left (5 s for users).
        "MFU_LOCAL_GRACE": str(GRACE),
    }


@needs_tmux
def test_a_fresh_machine_chats_with_no_setup_and_leaves_no_orphan(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    pane = TmuxPane(tmp_path, [mfu_chat(), "--debug"], local_env(home))
    try:
        pane.wait_for(lambda s: "local · demo model" in s and "● online" in s, "the local server, online")
        (server,) = embedded_servers(home)
        pane.type(QUESTION)
        pane.press("Enter")
        end = " ".join([word for word in demo_answer(QUESTION, WORDS).split() if "`" not in word][-2:])
        screen = pane.wait_for(lambda s: end in s and "generating…" not in s, "the end of the demo answer")
        assert f"▌ {QUESTION}" in screen and "Demo answer" in screen
        pane.press("C-q")
        pane.wait_exit()
    finally:
        pane.close()
    assert wait_gone(server), "the embedded server outlived the app"
    assert embedded_servers(home) == []

    secret = home / ".config" / "mfu-chat" / "local-secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE((home / ".local" / "share" / "mfu-chat").stat().st_mode) == 0o700
    log = (home / ".local" / "state" / "mfu-chat" / "log" / "mfu-chat.log").read_text()
    assert "mfu_tui.client: connected to ws://127.0.0.1:" in log
    assert "eyJ" not in log and "Bearer e" not in log  # no token, whatever the logger

    # The next run finds the chat again, on the same database.
    second_run = tmp_path / "second-run"
    second_run.mkdir()
    again = TmuxPane(second_run, [mfu_chat()], local_env(home))
    try:
        # The list cuts a title to its width (with its age beside it): its start is enough.
        again.wait_for(lambda s: "● online" in s and QUESTION[:12] in s, "the chat of the first run in the list")
        again.press("C-q")
        again.wait_exit()
    finally:
        again.close()


def answered(screen: str, question: str) -> bool:
    """``screen`` shows ``question`` and the demo model's answer to it, whole."""
    # The answer's code line names the question's length; its last words may be wrapped apart.
    return f"▌ {question}" in screen and f"print({len(question)})" in screen and "generating…" not in screen


@needs_tmux
def test_two_apps_share_one_local_server_live_and_the_second_outlives_the_first(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first = TmuxPane(tmp_path / "first", [mfu_chat()], local_env(home))
    second = None
    try:
        first.wait_for(lambda s: "local · demo model" in s and "● online" in s, "the first app, online")
        second = TmuxPane(tmp_path / "second", [mfu_chat()], local_env(home))
        second.wait_for(lambda s: "local · demo model" in s and "● online" in s, "the second app, online")
        (server,) = embedded_servers(home)  # one server for both

        first.type(QUESTION)
        first.press("Enter")
        first.wait_for(lambda s: answered(s, QUESTION), "the first answer")
        second.wait_for(lambda s: QUESTION[:12] in s, "the first app's chat in the second app's list")
        second.press("C-o")
        second.press("Enter")
        second.wait_for(lambda s: answered(s, QUESTION), "the chat, opened")

        asked = "Asked in the first terminal"
        first.type(asked)
        first.press("Enter")
        second.wait_for(lambda s: answered(s, asked), "the new message and its answer, live")

        first.press("C-q")
        first.wait_exit()
        # The grace period passes three times: the second app still uses the server.
        assert not wait_gone(server, timeout=3 * GRACE), "the server left with the first app"
        later = "Asked after the first app quit"
        second.type(later)
        second.press("Enter")
        second.wait_for(lambda s: answered(s, later), "an answer after the first quit")
        assert embedded_servers(home) == [server]
        second.press("C-q")
        second.wait_exit()
    finally:
        first.close()
        if second is not None:
            second.close()
    assert wait_gone(server), "the server stayed after the last app left"


@needs_tmux
def test_two_apps_started_at_the_same_instant_end_on_one_server(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    panes = []
    try:
        for name in ("left", "right"):  # both launched before either has started its server
            (tmp_path / name).mkdir()
            panes.append(TmuxPane(tmp_path / name, [mfu_chat()], local_env(home)))
        for pane in panes:
            pane.wait_for(lambda s: "local · demo model" in s and "● online" in s, "the app, online")
        (server,) = embedded_servers(home)
        for pane in panes:
            pane.press("C-q")
            pane.wait_exit()
    finally:
        for pane in panes:
            pane.close()
    assert wait_gone(server)


@needs_tmux
def test_a_stale_discovery_file_of_a_killed_server_is_taken_over(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "killed").mkdir()
    pane = TmuxPane(tmp_path / "killed", [mfu_chat()], local_env(home))
    try:
        pane.wait_for(lambda s: "● online" in s, "the first app, online")
        (killed,) = embedded_servers(home)
        os.kill(killed, signal.SIGKILL)
        assert wait_gone(killed)
    finally:
        pane.close()
    (info_file,) = (home / "run" / "mfu-chat").glob("local-*/server.json")
    stale = json.loads(info_file.read_text())
    assert stale["pid"] == killed  # left behind: its port is closed, its pid gone

    (tmp_path / "next").mkdir()
    pane = TmuxPane(tmp_path / "next", [mfu_chat()], local_env(home))
    try:
        pane.wait_for(lambda s: "local · demo model" in s and "● online" in s, "the next app, online")
        (server,) = embedded_servers(home)
        assert server != killed
        assert json.loads(info_file.read_text())["pid"] == server
        assert stat.S_IMODE(info_file.stat().st_mode) == 0o600
        pane.press("C-q")
        pane.wait_exit()
    finally:
        pane.close()
    assert wait_gone(server)


@needs_tmux
def test_a_running_app_whose_local_server_was_killed_starts_another_and_goes_on(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    pane = TmuxPane(tmp_path, [mfu_chat()], local_env(home))
    try:
        pane.wait_for(lambda s: "local · demo model" in s and "● online" in s, "the app, online")
        (killed,) = embedded_servers(home)
        os.kill(killed, signal.SIGKILL)
        assert wait_gone(killed)
        pane.wait_for(lambda s: "● online" in s and embedded_servers(home) not in ([], [killed]), "a new server")
        (server,) = embedded_servers(home)
        pane.type(QUESTION)
        pane.press("Enter")
        pane.wait_for(lambda s: answered(s, QUESTION), "an answer from the new server")
        pane.press("C-q")
        pane.wait_exit()
    finally:
        pane.close()
    assert server != killed
    assert wait_gone(server), "the new server stayed after the app left"


def run_mfu_chat(home: Path, *args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **local_env(home)}
    for name in ("MFU_WS_URL", "VITE_WS_URL", "MFU_TOKEN", "MFU_PROVIDER"):
        env.pop(name, None)
    env.update(extra or {})
    return subprocess.run(
        [mfu_chat(), *args], env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


def test_a_bad_config_file_stops_before_anything_starts(tmp_path):
    config = tmp_path / ".config" / "mfu-chat" / "config.toml"
    config.parent.mkdir(parents=True)
    for text, problem in [
        ('theme = "neon"\n', "'theme' 'neon' is not a theme"),
        ('[keys]\n"app.stop" = "x"\n', "'keys' has no binding 'app.stop'"),
        ("heartbeat_interval = -1\n", "'heartbeat_interval' must be between"),
        ("servr = 'ws://x/ws'\n", "unknown key 'servr'"),
        ("provider = 'ollama'\n", "'provider' must be auto, demo, or the http:// or https:// URL"),
    ]:
        config.write_text(text)
        result = run_mfu_chat(tmp_path)
        assert result.returncode == 2, result
        assert result.stderr == f"mfu-chat: {config}: {result.stderr.split(': ', 2)[2]}"
        assert problem in result.stderr and result.stderr.count("\n") == 1
    # Nothing was started: no secret made, no server running.
    assert not (tmp_path / ".config" / "mfu-chat" / "local-secret").exists()
    assert embedded_servers(tmp_path) == []


def test_a_bad_provider_from_a_flag_or_the_environment_stops_before_anything_starts(tmp_path):
    for args, extra, where in [
        (["--provider", "localhost:11434"], {}, "flag --provider"),
        ([], {"MFU_PROVIDER": "ftp://models.example"}, "env MFU_PROVIDER"),
    ]:
        result = run_mfu_chat(tmp_path, *args, extra=extra)
        assert result.returncode == 2, result
        assert result.stderr.startswith(f"mfu-chat: {where}: 'provider' must be auto, demo, or the http:// or https:")
        assert result.stderr.count("\n") == 1
    assert not (tmp_path / ".config" / "mfu-chat" / "local-secret").exists()
    assert embedded_servers(tmp_path) == []


@needs_tmux
def test_a_model_server_found_by_probing_is_named_and_provider_demo_probes_nothing(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    with upstream_in_a_thread() as models:
        where = models.base_url.removeprefix("http://")
        env = {**local_env(home), "MFU_OPENAI_BASE_URL": models.base_url, "MFU_PROVIDER": "auto"}
        probed = tmp_path / "probed"
        probed.mkdir()
        pane = TmuxPane(probed, [mfu_chat()], env)
        try:
            screen = pane.wait_for(
                lambda s: f"local · models at {where}" in s and "● online" in s and "Answers come from" in s,
                "the model server in the header and the notification",
            )
            # The notification's lines, unwrapped: the text right of its "▌" border.
            note = " ".join(line.split("▌")[-1].strip(" │╮╯") for line in screen.splitlines() if "▌" in line)
            assert f"Answers come from the model server at {where} (found by probing)." in note
            assert f'Pin it with provider = "{models.base_url}" in the config, or provider = "demo".' in note
            (probing,) = embedded_servers(home)
            pane.press("C-q")
            pane.wait_exit()
        finally:
            pane.close()
        # Counted once that server is gone: a model listing it had under way still counts as its own.
        assert wait_gone(probing)
        asked = models.model_lists
        assert asked >= 1

        pinned = tmp_path / "pinned"
        pinned.mkdir()
        pane = TmuxPane(pinned, [mfu_chat(), "--provider", "demo"], env)
        try:
            screen = pane.wait_for(lambda s: "local · demo model" in s and "● online" in s, "the demo model")
            assert "Answers come from" not in screen
            pane.press("C-q")
            pane.wait_exit()
        finally:
            pane.close()
        assert models.model_lists == asked  # never probed


def test_a_remote_server_without_a_token_says_how_to_log_in(tmp_path):
    result = run_mfu_chat(tmp_path, "--server", "wss://chat.example.edu/ws")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "mfu-chat: no token for wss://chat.example.edu/ws: store one with "
        "`mfu-chat login --server wss://chat.example.edu/ws`, or pass --token (or set MFU_TOKEN)"
    )


def logged_in(home: Path, server: str = "wss://chat.example.edu/ws") -> None:
    """``home``'s user ran ``mfu-chat login --server SERVER`` (its token kept, that server the default)."""
    Credentials.load(home / ".config" / "mfu-chat" / "credentials.json").store(server, "stored-token")


def test_a_provider_flag_with_the_login_s_server_says_how_to_run_locally(tmp_path):
    logged_in(tmp_path)
    result = run_mfu_chat(tmp_path, "--provider", "demo")
    assert result.returncode == 2, result
    assert result.stderr == (
        "mfu-chat: --provider is for the local server, but the server is wss://chat.example.edu/ws "
        f"(login {tmp_path / '.config' / 'mfu-chat' / 'credentials.json'}): add --server local to run the local one\n"
    )
    assert embedded_servers(tmp_path) == []


@needs_tmux
def test_server_local_runs_the_local_server_while_logged_in(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    logged_in(home)
    pane = TmuxPane(tmp_path, [mfu_chat(), "--server", "local", "--provider", "demo"], local_env(home))
    try:
        pane.wait_for(lambda s: "local · demo model" in s and "● online" in s, "the local server, online")
        (server,) = embedded_servers(home)
        pane.press("C-q")
        pane.wait_exit()
    finally:
        pane.close()
    assert wait_gone(server)


def test_mfu_chat_stopped_by_its_configuration_leaves_the_collector_running(tmp_path, monkeypatch, capsys):
    # mfu-chat pauses the collector until its app loads (cli._run_app); this app never loads.
    for name, value in fresh_home(tmp_path).items():
        monkeypatch.setenv(name, value)
    for name in ("MFU_WS_URL", "VITE_WS_URL", "MFU_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert main(["--server", "wss://chat.example.edu/ws"]) == 2
    assert capsys.readouterr().err.startswith("mfu-chat: no token for wss://chat.example.edu/ws")
    assert gc.isenabled()


def test_what_runs_before_the_first_frame_imports_no_hashing_secrets_or_toml(tmp_path):
    # The local server's secret and its discovery dir's name are made after the first frame, in a thread;
    # the TOML parser reads a config file, and there is none here.
    script = (
        "import sys, mfu_tui.cli, mfu_tui.launch\n"
        "from mfu_tui.config import load_settings\n"
        "from mfu_tui.tui import ChatApp\n"
        "load_settings({})\n"
        "print(sorted({'hashlib', 'hmac', 'secrets', 'tomllib'} & set(sys.modules)))\n"
    )
    env = {**os.environ, **fresh_home(tmp_path)}
    for name in ("MFU_WS_URL", "VITE_WS_URL", "MFU_TOKEN", "MFU_PROVIDER"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_the_log_file_and_each_rotated_one_are_private(tmp_path):
    paths = Paths(config_dir=tmp_path / "config", data_dir=tmp_path / "data", log_dir=tmp_path / "state" / "log")
    log = logging.getLogger("mfu_tui.test_launch")
    package_log = logging.getLogger("mfu_tui")
    level = package_log.level  # _start_logging sets it: put it back, or later tests' caplog sees no DEBUG
    for settings in (Settings(paths=paths, debug=True), Settings(paths=paths, log_file=tmp_path / "mine" / "app.log")):
        launch._start_logging(settings)
        handler = package_log.handlers[-1]
        try:
            line = "x" * 1000
            for _ in range(launch.LOG_BYTES // len(line) + 10):  # past the size of a rotation
                log.warning(line)
        finally:
            package_log.removeHandler(handler)
            package_log.setLevel(level)
            handler.close()
        path = Path(handler.baseFilename)
        written = sorted(path.parent.iterdir())
        assert [p.name for p in written] == [path.name, path.name + ".1"]
        assert [stat.S_IMODE(p.stat().st_mode) for p in written] == [0o600, 0o600]
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(paths.log_dir.parent.stat().st_mode) == 0o700


@needs_tmux
def test_in_remote_mode_what_the_app_writes_is_its_users_only(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    server = ServerProcess(tmp_path, "--demo-words", str(WORDS), "--demo-delay-ms", "2")
    server.start()
    try:
        env = {**fresh_home(home), "MFU_TOKEN": server.token("alice")}
        pane = TmuxPane(tmp_path, [mfu_chat(), "--debug", "--server", server.url], env)
        try:
            pane.wait_for(lambda s: "● online" in s, "the remote server, online")
            pane.type(QUESTION)
            pane.press("Enter")
            end = " ".join([word for word in demo_answer(QUESTION, WORDS).split() if "`" not in word][-2:])
            pane.wait_for(lambda s: end in s and "generating…" not in s, "the end of the demo answer")
            pane.press("C-q")
            pane.wait_exit()
        finally:
            pane.close()
    finally:
        server.kill()

    data = home / ".local" / "share" / "mfu-chat"
    outbox = sorted(data.glob("outbox-*"))
    assert [path.suffix for path in outbox] == [".jsonl", ".lock"]  # the journal (emptied) and its lock
    log = home / ".local" / "state" / "mfu-chat" / "log" / "mfu-chat.log"
    assert {str(path.relative_to(home)): mode(path) for path in [*outbox, log]} == {
        str(path.relative_to(home)): 0o600 for path in [*outbox, log]
    }
    assert {str(path.relative_to(home)): mode(path) for path in [data, log.parent]} == {
        str(path.relative_to(home)): 0o700 for path in [data, log.parent]
    }


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_app_s_sign_in_says_when_a_token_given_at_start_will_come_first_again(tmp_path):
    paths = Paths(config_dir=tmp_path / "config", data_dir=tmp_path / "data", log_dir=tmp_path / "log")
    said = {
        source: launch.keep_signed_in_token(Settings(paths=paths, sources={"token": source}), "ws://h/ws", "t")
        for source in ("env MFU_TOKEN", "flag --token", f"login {paths.credentials_file}")
    }
    assert said == {
        "env MFU_TOKEN": "It is saved, but MFU_TOKEN comes first at the next run: unset it to use the saved one.",
        "flag --token": "It is saved, but --token comes first at the next run: start without it to use the saved one.",
        f"login {paths.credentials_file}": "The token is saved for the next runs.",
    }
    assert json.loads(paths.credentials_file.read_text())["tokens"] == {"ws://h/ws": "t"}
