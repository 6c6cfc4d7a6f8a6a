"""`mfu-chat import FILE`, the real command in a fresh HOME: against a server process, against the
local one it starts itself, and with files that are no export (one line naming the file, exit 2)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mfu_tui.client import ChatClient
from mfu_tui.importing.chatgpt import MAX_EXPORT_BYTES
from tests.config.test_hostile_files import REPO, TIMEOUT, limit_memory
from tests.importing.export_fixture import CONVERSATIONS, broken_chain, write_export
from tests.support.server import ServerProcess
from tests.support.tmux import fresh_home

SUMMARY_FIRST = (
    "3 conversations imported, 0 already there, 2 skipped (1 with no messages, 1 with a broken parent chain)."
)
SUMMARY_AGAIN = (
    "0 conversations imported, 3 already there, 2 skipped (1 with no messages, 1 with a broken parent chain)."
)
ATTACHMENTS = "1 image or file not imported: its place is marked in the text."


def mfu_import(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **fresh_home(home), "MFU_OPENAI_BASE_URL": "http://127.0.0.1:9", **(env or {})}
    for name in ("MFU_WS_URL", "VITE_WS_URL", "MFU_TOKEN", "MFU_CONFIG_DIR", "MFU_DATA_DIR", "MFU_LOG_DIR"):
        if name not in (env or {}):
            environment.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "mfu_tui", "import", *args],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 3,
        stdin=subprocess.DEVNULL,
        preexec_fn=limit_memory,
    )


@pytest.fixture
def export(tmp_path) -> Path:
    return write_export(tmp_path / "conversations.json", [*CONVERSATIONS, broken_chain()])


def test_importing_twice_into_a_server_adds_nothing_the_second_time(tmp_path, export):
    server = ServerProcess(tmp_path)
    server.start()
    try:
        env = {"MFU_TOKEN": server.token("alice")}
        first = mfu_import(tmp_path, str(export), "--server", server.url, env=env)
        again = mfu_import(tmp_path, str(export), "--server", server.url, env=env)

        async def chats() -> list[str]:
            client = ChatClient(server.url, server.token("alice"), data_dir=tmp_path / "client")
            await client.connect()
            try:
                return [chat.title for chat in (await client.list_chats()).chats]
            finally:
                await client.close()

        titles = asyncio.run(chats())
    finally:
        server.kill()
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [SUMMARY_FIRST, ATTACHMENTS]
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [SUMMARY_AGAIN, ATTACHMENTS]
    assert titles == ["What is in this chart?", "Rust lifetimes", "Sourdough starter"]
    warnings = [line for line in first.stderr.splitlines() if "skipping" in line]
    assert warnings == [
        'mfu-chat import: skipping "New chat" (c0a4-empty): it has no message of yours or the assistant\'s with text',
        'mfu-chat import: skipping "Broken" (c0a5-broken): message u2 names message gone, which is not in it',
    ]
    # Not a terminal: one line per tenth, never a bar redrawn with carriage returns.
    assert "\r" not in first.stderr and "import: 100% (3 of 3 conversations)" in first.stderr


def test_with_no_server_configured_it_imports_into_the_local_one_the_app_uses(tmp_path, export):
    # The zip as downloaded first, then the conversations.json in it: the same conversations.
    downloaded = tmp_path / "chatgpt-export.zip"
    with zipfile.ZipFile(downloaded, "w") as zip_file:
        zip_file.write(export, "conversations.json")
    first = mfu_import(tmp_path, str(downloaded))
    again = mfu_import(tmp_path, str(export))
    assert (first.returncode, again.returncode) == (0, 0), first.stderr + again.stderr
    assert first.stdout.splitlines()[0] == SUMMARY_FIRST
    assert again.stdout.splitlines()[0] == SUMMARY_AGAIN
    assert (tmp_path / ".local" / "share" / "mfu-chat" / "local.sqlite3").exists()


def make_fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def make_huge(path: Path) -> Path:
    with path.open("wb") as sparse:  # sparse: only its size is looked at
        sparse.truncate(MAX_EXPORT_BYTES + 1)
    return path


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: p.write_bytes(b'[{"title": "cut') and p, "not JSON"),
        (lambda p: p.write_bytes(b'{"title": "one"}') and p, "not a ChatGPT export"),
        (lambda p: p.write_bytes(b"PK\x03\x04zip") and p, "a zip archive that cannot be read"),
        (make_fifo, "not a regular file but a FIFO"),
        (lambda p: p.mkdir() or p, "not a regular file but a directory"),
        (make_huge, "larger than 1024 MiB"),
        (lambda p: p, "no such file"),
    ],
    ids=["not-json", "not-a-list", "zip", "fifo", "directory", "huge", "missing"],
)
def test_a_file_that_is_no_export_is_one_line_naming_it_and_exit_2(tmp_path, make, problem):
    path = make(tmp_path / "conversations.json")
    result = mfu_import(tmp_path, str(path))
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result
    assert result.stderr == f"mfu-chat import: {path}: {result.stderr.split(': ', 2)[2]}"
    assert problem in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / ".config" / "mfu-chat" / "local-secret").exists()  # no server was started


def test_a_remote_server_without_a_token_says_how_to_log_in(tmp_path, export):
    result = mfu_import(tmp_path, str(export), "--server", "wss://chat.example.edu/ws")
    assert result.returncode == 2
    assert result.stderr == (
        "mfu-chat import: no token for wss://chat.example.edu/ws: store one with "
        "`mfu-chat login --server wss://chat.example.edu/ws`, or pass --token (or set MFU_TOKEN)\n"
    )
