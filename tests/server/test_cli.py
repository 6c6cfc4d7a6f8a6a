"""`mfu-chat token` and `mfu-chat serve` settings from flags and environment."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mfu_tui.protocol import Chunk, Error
from mfu_tui.server.auth import TokenKeys, verify_token
from mfu_tui.server.config import ConfigError, ServerConfig, env_defaults
from mfu_tui.server.providers.demo import demo_answer
from tests.server.fake_openai import FakeOpenAI, Script
from tests.server.peer import peer, text_of
from tests.server.test_generation import get_chat, send_message
from tests.support.read_only import read_only_database, refusal_reason
from tests.support.server import ServerProcess, new_secret


def run_cli(*args: str, secret: str | None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "MFU_JWT_SECRET"}
    if secret is not None:
        env["MFU_JWT_SECRET"] = secret
    return subprocess.run([sys.executable, "-m", "mfu_tui", *args], capture_output=True, text=True, env=env, timeout=60)


def test_token_prints_a_token_the_server_accepts():
    secret = new_secret()
    done = run_cli("token", "--user", "bob", "--ttl", "120", secret=secret)
    assert done.returncode == 0, done.stderr
    identity = verify_token(done.stdout.strip(), TokenKeys(secret), leeway=0)
    assert identity.user == "bob"


def test_token_without_a_secret_says_why_in_one_line():
    done = run_cli("token", "--user", "bob", secret=None)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "MFU_JWT_SECRET" in done.stderr


@pytest.mark.parametrize(
    ("flags", "line"),
    [
        (["--user", ""], "--user must be a name of 1 to 256 characters, got 0"),
        (["--user", "b" * 257], "--user must be a name of 1 to 256 characters, got 257"),
        (["--user", "bob", "--ttl", "0"], "--ttl must be a positive number of seconds, got 0"),
        (["--user", "bob", "--ttl", "-5"], "--ttl must be a positive number of seconds, got -5"),
    ],
)
def test_token_refuses_what_the_server_would_refuse_in_one_line(flags, line):
    done = run_cli("token", *flags, secret=new_secret())
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"mfu-chat token: {line}\n")


def test_env_settings_and_their_validation():
    assert env_defaults({"MFU_DEMO_WORDS": "7", "MFU_DEMO_DELAY_MS": "2.5", "MFU_OPENAI_BASE_URL": "http://x"}) == {
        "demo_words": 7,
        "demo_delay_ms": 2.5,
        "openai_base_url": "http://x",
    }
    with pytest.raises(ConfigError, match="MFU_DEMO_WORDS"):
        env_defaults({"MFU_DEMO_WORDS": "many"})


async def test_demo_words_come_from_the_environment_and_flags_win(tmp_path):
    for args, expected in (((), 7), (("--demo-words", "4"), 4)):
        process = ServerProcess(tmp_path, *args, env={"MFU_DEMO_WORDS": "7", "MFU_DEMO_DELAY_MS": "0"})
        process.start()
        try:
            async with peer(process.url, process.token()) as alice:
                ack = await send_message(alice, "count my words")
                chunks, _ = await alice.stream(ack.reply_id)
        finally:
            process.kill()
        assert text_of(chunks) == demo_answer("count my words", expected)


async def test_serve_runs_on_the_loop_asked_for(tmp_path):
    try:
        import uvloop  # noqa: F401 (the speed extra: not in the test install)

        expected = {"auto": "uvloop", "asyncio": "asyncio", "uvloop": "uvloop"}
    except ImportError:
        expected = {"auto": "asyncio", "asyncio": "asyncio"}
        done = run_cli("serve", "--loop", "uvloop", "--db", str(tmp_path / "db.sqlite3"), secret=new_secret())
        assert done.returncode == 2 and "pip install 'mfu-chat[speed]'" in done.stderr
    for choice, module in expected.items():
        process = ServerProcess(tmp_path, "--loop", choice, "--demo-words", "3", "--demo-delay-ms", "0")
        process.start()
        try:
            async with peer(process.url, process.token()) as alice:
                ack = await send_message(alice, "which loop")
                chunks, _ = await alice.stream(ack.reply_id)
        finally:
            process.kill()
        assert text_of(chunks) == demo_answer("which loop", 3)
        (line,) = [line for line in process.stderr.splitlines() if "event loop:" in line]
        assert line.split("event loop: ", 1)[1].startswith(f"{module}.")


def test_config_refuses_a_leeway_over_30_seconds():
    with pytest.raises(ConfigError, match="30"):
        ServerConfig(secret=new_secret(), token_leeway=60)


@pytest.mark.parametrize(
    ("flags", "line"),
    [
        (["--port", "{port}"], "cannot listen on 127.0.0.1:{port} (--host 127.0.0.1 --port {port}): "),
        (
            ["--port", "{port}", "--workers", "2"],
            "cannot listen on 127.0.0.1:{port} (--host 127.0.0.1 --port {port}): ",
        ),
        (
            ["--port", "0", "--api-port", "{port}"],
            "cannot listen on 127.0.0.1:{port} (--host 127.0.0.1 --api-port {port}): ",
        ),
        (
            ["--port", "0", "--metrics-port", "{port}"],
            "cannot listen on 127.0.0.1:{port} (--metrics-host 127.0.0.1 --metrics-port {port}): ",
        ),
        (
            ["--port", "0", "--workers", "2", "--metrics-port", "{port}"],
            "cannot listen on 127.0.0.1:{port} (--metrics-host 127.0.0.1 --metrics-port {port}): ",
        ),
    ],
)
def test_a_taken_port_fails_with_one_line_naming_it_before_the_database_is_made(tmp_path, flags, line):
    database = tmp_path / "db.sqlite3"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = run_cli("serve", "--db", str(database), *(flag.format(port=port) for flag in flags), secret=new_secret())
    assert done.returncode == 1 and "Traceback" not in done.stderr
    advice = "another program listens there: stop it, or give another " + flags[flags.index("{port}") - 1]
    assert done.stderr.splitlines()[-1] == f"mfu-chat serve: {line.format(port=port)}Address already in use; {advice}"
    assert not database.exists()  # every port is bound before the store opens the file


@pytest.mark.parametrize(
    ("flags", "line"),
    [
        (["--host", ""], "--host is empty (an unset variable?): give an address, 0.0.0.0 for every interface"),
        (
            ["--metrics-host", "", "--metrics-port", "0"],
            "--metrics-host is empty (an unset variable?): give an address, 0.0.0.0 for every interface",
        ),
        (["--port", "99999"], "--port must be a port number from 0 to 65535, got 99999"),
        (["--port", "-1"], "--port must be a port number from 0 to 65535, got -1"),
    ],
)
def test_an_empty_host_or_a_port_out_of_range_is_refused_in_one_line(tmp_path, flags, line):
    done = run_cli("serve", "--db", str(tmp_path / "db.sqlite3"), *flags, secret=new_secret())
    assert (done.returncode, done.stderr) == (2, f"mfu-chat serve: {line}\n")


@pytest.mark.parametrize(
    ("flags", "where"),
    [
        (["--host", "999.1.1.1", "--port", "0"], "999.1.1.1:0 (--host 999.1.1.1 --port 0)"),
        (
            ["--port", "0", "--metrics-port", "0", "--metrics-host", "999.1.1.1"],
            "999.1.1.1:0 (--metrics-host 999.1.1.1 --metrics-port 0)",
        ),
        (
            ["--port", "0", "--workers", "2", "--metrics-port", "0", "--metrics-host", "999.1.1.1"],
            "999.1.1.1:0 (--metrics-host 999.1.1.1 --metrics-port 0)",
        ),
    ],
)
def test_a_host_that_is_not_an_address_of_this_machine_is_named_with_its_flag(tmp_path, flags, where):
    done = run_cli("serve", "--db", str(tmp_path / "db.sqlite3"), *flags, secret=new_secret())
    assert done.returncode == 1 and "Traceback" not in done.stderr
    last = done.stderr.splitlines()[-1]
    host_flag = flags[flags.index("999.1.1.1") - 1]
    assert last.startswith(f"mfu-chat serve: cannot listen on {where}: ")
    assert last.endswith(f"; give an address of this machine in {host_flag} (0.0.0.0: every interface)")
    assert not (tmp_path / "db.sqlite3").exists()


async def test_the_upstream_idle_timeout_comes_from_the_environment_and_the_flag_wins(tmp_path):
    async with FakeOpenAI() as fake:
        fake.script = Script(pieces=["partial"], then="hold")
        env = {"MFU_OPENAI_BASE_URL": fake.base_url, "MFU_UPSTREAM_IDLE_TIMEOUT": "0.5"}
        for args, environment in (
            ((), env),
            (("--upstream-idle-timeout", "0.5"), env | {"MFU_UPSTREAM_IDLE_TIMEOUT": "600"}),
        ):
            process = ServerProcess(tmp_path, "--provider", "openai", *args, env=environment)
            process.start()
            try:
                async with peer(process.url, process.token()) as alice:
                    ack = await send_message(alice, "think for a long time")
                    # Well within the test's own timeout: 0.5 s of silence ends the answer.
                    chunks, end = await alice.stream(ack.reply_id, timeout=10)
                    error = next(frame for frame in alice.received if isinstance(frame, Error))
            finally:
                process.kill()
            assert (text_of(chunks), end.finish_reason) == ("partial", "error")
            assert error.message == "model server failed: the model server did not answer in time"
    assert env_defaults({"MFU_UPSTREAM_IDLE_TIMEOUT": "90"}) == {"upstream_idle_timeout": 90.0}
    assert ServerConfig(secret=new_secret()).upstream_idle_timeout == 300.0
    with pytest.raises(ConfigError, match="--upstream-idle-timeout"):
        ServerConfig(secret=new_secret(), upstream_idle_timeout=0)


@pytest.mark.parametrize("workers", [1, 2])
async def test_a_second_serve_on_the_same_sqlite_file_is_refused_and_the_first_answers_on(tmp_path, workers):
    async with FakeOpenAI() as fake:
        fake.script = Script(pieces=["half ", "an answer"], then="gate")  # streaming until the gate opens
        env = {"MFU_OPENAI_BASE_URL": fake.base_url}
        first = ServerProcess(tmp_path, "--provider", "openai", "--workers", str(workers), env=env)
        first.start()
        second = ServerProcess(tmp_path, "--provider", "openai", env=env, secret=first.secret)
        try:
            async with peer(first.url, first.token()) as alice:
                ack = await send_message(alice, "take your time")
                first_chunk = await alice.expect(Chunk, message_id=ack.reply_id)
                with pytest.raises(RuntimeError, match="did not start"):
                    await asyncio.to_thread(second.start)
                fake.gate.set()
                chunks, end = await alice.stream(ack.reply_id)
                detail = await get_chat(alice, ack.chat_id)
        finally:
            first.kill()
            second.kill()
    assert second.wait() == 2
    assert second.stderr.splitlines()[-1] == (
        f"mfu-chat serve: another mfu-chat server uses {first.db_path} (pid {first.process.pid}): "
        "stop it, or give this one another --db"
    )
    assert (text_of([first_chunk, *chunks]), end.finish_reason) == ("half an answer", "stop")
    assert [(message.status, message.content) for message in detail.messages] == [
        ("complete", "take your time"),
        ("complete", "half an answer"),
    ]


@pytest.fixture
def unwritable_database(tmp_path) -> Iterator[Path]:
    with read_only_database(tmp_path / "read-only") as database:
        yield database


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_database_that_cannot_be_written_is_named_in_one_line(unwritable_database, workers):
    done = run_cli("serve", "--port", "0", "--workers", workers, "--db", str(unwritable_database), secret=new_secret())
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"mfu-chat serve: --db {unwritable_database}: cannot read and write it ({refusal_reason()}): the user "
        "running the server needs both, on the file and on its directory (SQLite makes chat.sqlite3-wal and -shm there)"
    )


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("below", ["chat.sqlite3", "data/chat.sqlite3"])
def test_a_database_under_a_regular_file_names_the_file_in_the_way(tmp_path, workers, below):
    # Refused even to root, as a directory one cannot write to is refused to others.
    notes = tmp_path / "notes.txt"
    notes.write_text("the admin's notes\n")
    database = notes / below
    done = run_cli("serve", "--port", "0", "--workers", workers, "--db", str(database), secret=new_secret())
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"mfu-chat serve: --db {database}: {notes} is a file, not a directory: "
        "give a path in a directory, or where one can be made"
    )
    assert notes.read_text() == "the admin's notes\n"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_file_that_is_not_a_database_is_named_in_one_line(tmp_path, workers):
    text = tmp_path / "notes.txt"
    text.write_text("not a database, but the admin's notes\n" * 100)
    done = run_cli("serve", "--port", "0", "--workers", workers, "--db", str(text), secret=new_secret())
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"mfu-chat serve: --db {text} is not a SQLite database (file is not a database): "
        "give the server's database, or a path for a new one"
    )
    assert text.read_text() == "not a database, but the admin's notes\n" * 100


@pytest.mark.parametrize(
    ("flag", "value", "line"),
    [
        ("--send-queue-bytes", "0", "--send-queue-bytes must be at least 16384 (16 KiB)"),
        ("--drain-timeout", "-1", "--drain-timeout must not be negative (0: end the running answers at once)"),
        ("--ping-interval", "-5", "--ping-interval must be a positive number of seconds (0: no keepalive)"),
        ("--ping-timeout", "0", "--ping-timeout must be a positive number of seconds"),
        ("--rate-limit", "0", "--rate-limit must be a positive number of messages per minute"),
        ("--rate-limit", "-1", "--rate-limit must be a positive number of messages per minute"),
        ("--demo-words", "-1", "--demo-words must be at least 1"),
    ],
)
def test_a_flag_out_of_its_range_is_refused_in_one_line_naming_it(tmp_path, flag, value, line):
    done = run_cli("serve", "--port", "0", "--db", str(tmp_path / "db.sqlite3"), flag, value, secret=new_secret())
    assert (done.returncode, done.stderr) == (2, f"mfu-chat serve: {line}\n")
    assert not (tmp_path / "db.sqlite3").exists()


async def test_a_url_as_provider_is_the_openai_provider_at_that_url_whatever_the_environment_says(tmp_path):
    async with FakeOpenAI() as fake:
        # As the app's --provider takes it; the flag wins over MFU_OPENAI_BASE_URL, as flags do.
        nowhere = {"MFU_OPENAI_BASE_URL": "http://127.0.0.1:9"}
        process = ServerProcess(tmp_path, "--provider", f"{fake.base_url}/v1", env=nowhere)
        await asyncio.to_thread(process.start)
        try:
            async with peer(process.url, process.token()) as alice:
                ack = await send_message(alice, "hello")
                chunks, end = await alice.stream(ack.reply_id)
        finally:
            process.kill()
    assert (text_of(chunks), end.finish_reason) == ("Hello, world!", "stop")
    assert fake.requests[-1]["messages"][-1] == {"role": "user", "content": "hello"}


@pytest.mark.parametrize("value", ["ollama", "auto", "ftp://127.0.0.1:11434", "http://", "http://127.0.0.1:x/v1"])
def test_a_provider_that_is_neither_a_name_nor_a_url_is_refused_in_one_line(tmp_path, value):
    database = tmp_path / "db.sqlite3"
    done = run_cli("serve", "--port", "0", "--db", str(database), "--provider", value, secret=new_secret())
    wanted = "--provider must be demo, openai, or the http:// or https:// URL of an OpenAI-compatible server"
    assert (done.returncode, done.stderr) == (2, f"mfu-chat serve: {wanted}, got {value!r}\n")
    assert not database.exists()
