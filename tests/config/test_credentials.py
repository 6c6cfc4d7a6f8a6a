"""Stored tokens: private files, one token per server."""

import stat

import pytest

from mfu_tui.config import Credentials
from mfu_tui.config.credentials import CredentialsError, save_login


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_store_writes_a_0600_file_and_reloads(paths):
    credentials = Credentials.load(paths.credentials_file)
    credentials.store("wss://a/ws", "token-a")
    credentials.store("wss://b/ws", "token-b")
    assert mode(paths.credentials_file) == 0o600
    again = Credentials.load(paths.credentials_file)
    assert again.tokens == {"wss://a/ws": "token-a", "wss://b/ws": "token-b"}
    assert again.default_server == "wss://b/ws"


def test_store_tightens_a_file_that_was_readable(paths):
    paths.config_dir.mkdir(parents=True)
    paths.credentials_file.write_text('{"tokens": {}}')
    paths.credentials_file.chmod(0o644)
    Credentials.load(paths.credentials_file).store("wss://a/ws", "t")
    assert mode(paths.credentials_file) == 0o600


def test_forget_removes_the_token_and_the_file_when_empty(paths):
    credentials = Credentials.load(paths.credentials_file)
    credentials.store("wss://a/ws", "token-a")
    assert credentials.forget() is True
    assert not paths.credentials_file.exists()
    assert credentials.forget() is False


def test_a_damaged_file_says_what_to_do(paths):
    paths.config_dir.mkdir(parents=True)
    paths.credentials_file.write_text("{not json")
    with pytest.raises(CredentialsError, match="delete it and log in again"):
        Credentials.load(paths.credentials_file)


def test_store_makes_the_config_dir_private_and_tightens_a_wider_one(paths, tmp_path):
    fresh = Credentials.load(tmp_path / "new" / "config" / "credentials.json")
    fresh.store("wss://a/ws", "t")
    assert (mode(tmp_path / "new"), mode(tmp_path / "new" / "config")) == (0o700, 0o700)

    paths.config_dir.mkdir(parents=True)
    paths.config_dir.chmod(0o755)  # as a user's `mkdir ~/.config/mfu-chat` leaves it
    Credentials.load(paths.credentials_file).store("wss://a/ws", "t")
    assert (mode(paths.config_dir), mode(paths.credentials_file)) == (0o700, 0o600)


def test_a_token_kept_by_the_app_s_sign_in_leaves_the_default_server_as_it_was(paths):
    credentials = Credentials.load(paths.credentials_file)
    credentials.store("wss://usual/ws", "token-a")  # mfu-chat login
    save_login(paths.credentials_file, "ws://once/ws", "token-b")  # signed in again, in an app run with --server
    again = Credentials.load(paths.credentials_file)
    assert again.tokens == {"wss://usual/ws": "token-a", "ws://once/ws": "token-b"}
    assert again.default_server == "wss://usual/ws"  # a plain mfu-chat goes where it went
