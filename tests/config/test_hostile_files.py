"""Files that are not what they should be: one line naming the file, exit 2, never a hang or a traceback.

Each test runs the real command (``python -m mfu_tui ...``) in a fresh HOME
with a timeout, and with its address space limited, so that a regression
that reads ``/dev/zero`` to the end fails quickly instead of eating the
machine's memory.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.tmux import fresh_home

REPO = Path(__file__).resolve().parents[2]
#: Seconds a command may take: a hang is a failure, not a stuck suite.
TIMEOUT = 20
#: Bytes of address space the command may use: far more than it needs.
MEMORY = 2 * 1024**3
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJl"


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def mfu_chat(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **fresh_home(home), **(env or {})}
    for name in ("MFU_WS_URL", "VITE_WS_URL", "MFU_TOKEN", "MFU_MODEL", "MFU_THEME", "MFU_DEBUG"):
        if name not in (env or {}):
            environment.pop(name, None)
    for name in ("MFU_CONFIG_DIR", "MFU_DATA_DIR", "MFU_LOG_DIR"):
        environment.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "mfu_tui", *args],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=limit_memory,
    )


def config_dir(home: Path) -> Path:
    directory = home / ".config" / "mfu-chat"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def assert_one_line_naming(result: subprocess.CompletedProcess[str], path: Path) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n"), result.stderr
    assert str(path) in result.stderr, result.stderr


def make_fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def make_zero(path: Path) -> Path:
    path.symlink_to("/dev/zero")
    return path


@pytest.mark.parametrize("name", ["config.toml", "credentials.json"])
@pytest.mark.parametrize("make", [make_fifo, make_zero], ids=["fifo", "dev-zero"])
def test_a_file_that_is_not_a_regular_one_is_refused_at_once(tmp_path, name, make):
    path = make(config_dir(tmp_path) / name)
    result = mfu_chat(tmp_path, "config", "show")
    assert_one_line_naming(result, path)
    assert "not a regular file" in result.stderr


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("config.toml", "keys = " + "[" * 100_000 + "]" * 100_000 + "\n"),
        ("config.toml", "a = " + "{ b = " * 50_000 + "1" + " }" * 50_000 + "\n"),
        ("credentials.json", "[" * 100_000 + "]" * 100_000),
    ],
    ids=["toml-arrays", "toml-tables", "json"],
)
def test_a_deeply_nested_file_is_refused_in_one_line(tmp_path, name, text):
    path = config_dir(tmp_path) / name
    path.write_text(text)
    result = mfu_chat(tmp_path, "config", "show")
    assert_one_line_naming(result, path)
    assert "nested too deeply" in result.stderr


@pytest.mark.parametrize("name", ["config.toml", "credentials.json"])
def test_a_file_larger_than_a_mebibyte_is_refused(tmp_path, name):
    path = config_dir(tmp_path) / name
    path.write_text("# a comment\n" * 100_000)  # 1.2 MB
    result = mfu_chat(tmp_path, "config", "show")
    assert_one_line_naming(result, path)
    assert "larger than 1 MiB" in result.stderr


def test_login_refuses_a_credentials_file_that_is_a_fifo(tmp_path):
    path = make_fifo(config_dir(tmp_path) / "credentials.json")
    result = mfu_chat(tmp_path, "login", "--server", "wss://chat.example.edu/ws")
    assert_one_line_naming(result, path)


@pytest.mark.parametrize("make", ["directory", "fifo"])
def test_a_log_file_that_cannot_be_one_is_refused_before_the_app_starts(tmp_path, make):
    path = tmp_path / "log-here"
    if make == "directory":
        path.mkdir()
    else:
        make_fifo(path)
    result = mfu_chat(tmp_path, "--log-file", str(path), "--server", "wss://chat.example.edu/ws", "--token", TOKEN)
    assert_one_line_naming(result, path)
    assert "log file" in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "config"),
    [
        (["--server", "wss://chat.example.edu/ws?token=SECRET-IN-FLAG"], {}, ""),
        ([], {"MFU_WS_URL": "wss://chat.example.edu/ws?a=1&token=SECRET-IN-ENV"}, ""),
        ([], {}, 'server = "wss://chat.example.edu/ws?token=SECRET-IN-FILE"\n'),
    ],
    ids=["flag", "env", "file"],
)
def test_config_show_masks_a_token_in_the_server_url(tmp_path, args, env, config):
    if config:
        (config_dir(tmp_path) / "config.toml").write_text(config)
    result = mfu_chat(tmp_path, *args, "config", "show", env=env)
    assert result.returncode == 0, result
    assert "SECRET" not in result.stdout + result.stderr
    (server,) = [line for line in result.stdout.splitlines() if line.startswith("server")]
    assert "wss://chat.example.edu/ws?" in server and "token=[redacted]" in server


def test_a_bad_server_url_with_a_token_is_reported_without_it(tmp_path):
    result = mfu_chat(tmp_path, "--server", "https://chat.example.edu/ws?token=SECRET-IN-FLAG", "config", "show")
    assert result.returncode == 2 and "must be a ws:// or wss:// URL" in result.stderr
    assert "SECRET" not in result.stderr


def test_the_help_of_token_says_that_ps_shows_it_and_what_to_use_instead(tmp_path):
    result = mfu_chat(tmp_path, "--help")
    assert result.returncode == 0
    options = " ".join(result.stdout.split()).split("options:", 1)[1]
    token_help = options[options.index("--token JWT") : options.index("--debug")]
    assert re.search(r"\bps\b", token_help) and "mfu-chat login" in token_help and "MFU_TOKEN" in token_help
