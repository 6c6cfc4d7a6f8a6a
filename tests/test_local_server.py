"""The local server: starts on a fresh machine, keeps its secret private,
talks to the real client, is shared by every app of the user on one
database, and stops a grace period after the last app left."""

import asyncio
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
from functools import partial
from pathlib import Path

import pytest

from mfu_tui.client import ChatClient, ClientError
from mfu_tui.config import Paths
from mfu_tui.local_discovery import Discovery, runtime_dir
from mfu_tui.local_server import LOCAL_ACCOUNT, LocalServer, LocalServerError, LocalUse, ensure_secret
from mfu_tui.protocol import Ack, Chunk, Complete
from tests.server.fake_openai import FakeOpenAI
from tests.support.processes import wait_gone
from tests.support.read_only import read_only_database, refusal_reason


@pytest.fixture
def paths(tmp_path, monkeypatch) -> Paths:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    return Paths(config_dir=tmp_path / "config", data_dir=tmp_path / "data", log_dir=tmp_path / "log")


@pytest.fixture
def no_local_models(monkeypatch):
    # Nothing listens on port 9 of loopback: the probe must fall back to demo.
    monkeypatch.setenv("MFU_OPENAI_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("MFU_DEMO_WORDS", "12")
    monkeypatch.setenv("MFU_DEMO_DELAY_MS", "0")
    # The server stops this long after the last app left (5 s for users).
    monkeypatch.setenv("MFU_LOCAL_GRACE", "0.3")


async def hello_answered(server: LocalServer, paths: Paths) -> ChatClient:
    """A client of ``server`` that said hello and has the whole answer; still connected (close it)."""
    client = ChatClient(server.url, server.token, data_dir=paths.data_dir)
    done = asyncio.Event()
    client.on_message(lambda frame: isinstance(frame, Complete) and done.set())
    await client.connect()
    await client.send_message(None, "hello")
    await asyncio.wait_for(done.wait(), 20)
    return client


async def test_starts_with_a_private_secret_and_answers_the_real_client(paths, no_local_models):
    server = LocalServer.join(paths)
    try:
        assert server.provider == "demo"
        assert server.url.startswith("ws://127.0.0.1:")
        assert stat.S_IMODE(paths.secret_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(paths.data_dir.stat().st_mode) == 0o700
        secret = paths.secret_file.read_text()

        client = await hello_answered(server, paths)
        page = await client.list_chats()
        assert [chat.message_count for chat in page.chats] == [2]
        await client.close()
    finally:
        server.leave()
    assert wait_gone(server.pid), "the local server stayed after the last app left"

    # The second run keeps the secret and the chats.
    again = LocalServer.join(paths)
    try:
        assert paths.secret_file.read_text() == secret
        client = ChatClient(again.url, again.token, data_dir=paths.data_dir)
        await client.connect()
        assert len((await client.list_chats()).chats) == 1
        await client.close()
    finally:
        again.leave()


async def test_a_shared_servers_settings_in_the_environment_are_not_the_local_servers(
    paths, no_local_models, monkeypatch
):
    # A user who also runs `mfu-chat serve` may have its settings in their shell: none is for the app's own server.
    metrics = socket.socket()
    metrics.bind(("127.0.0.1", 0))
    metrics_port = metrics.getsockname()[1]
    metrics.close()
    monkeypatch.setenv("MFU_JWT_ISSUER", "https://login.example.edu")
    monkeypatch.setenv("MFU_JWT_AUDIENCE", "mfu-chat")
    monkeypatch.setenv("MFU_BROKER_URL", "redis://127.0.0.1:9/0")  # nothing listens there
    monkeypatch.setenv("MFU_NODE_ID", "node-a")
    monkeypatch.setenv("MFU_METRICS_PORT", str(metrics_port))
    server = LocalServer.join(paths)
    try:
        client = await hello_answered(server, paths)
        await client.close()
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", metrics_port)) != 0, "the local server opened /metrics"
    finally:
        server.leave()


def test_the_server_stops_when_the_last_app_is_killed(paths, no_local_models, tmp_path):
    app = textwrap.dedent(
        f"""
        import json
        from pathlib import Path
        from mfu_tui.config import Paths
        from mfu_tui.local_server import LocalServer, LocalServerError
        paths = Paths(Path({str(paths.config_dir)!r}), Path({str(paths.data_dir)!r}), Path({str(paths.log_dir)!r}))
        server = LocalServer.join(paths)
        print(json.dumps({{"child": server.pid}}), flush=True)
        input()  # stay alive until killed
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", app], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    child = json.loads(parent.stdout.readline())["child"]
    os.kill(child, 0)  # it runs
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert wait_gone(child), "the local server outlived the killed app"


async def list_chats(server: LocalServer, paths: Paths) -> list[str]:
    """The ids of the chats the real client lists through ``server``."""
    client = ChatClient(server.url, server.token, data_dir=paths.data_dir)
    await client.connect()
    try:
        return [chat.id for chat in (await client.list_chats()).chats]
    finally:
        await client.close()


async def test_a_second_app_joins_the_first_ones_server_which_stays_while_it_is_used(paths, no_local_models):
    first = LocalServer.join(paths)
    second = LocalServer.join(paths)
    discovery = Discovery.for_paths(paths)
    try:
        assert (first.started, second.started) == (True, False)
        assert (second.pid, second.url, second.label) == (first.pid, first.url, first.label)
        assert stat.S_IMODE(discovery.info_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(discovery.directory.stat().st_mode) == 0o700
        assert discovery.read_info()["pid"] == first.pid
        await ask(first, paths, "hello")
        first.leave()
        # Three grace periods pass: the second app still uses the server, so it stays.
        assert not wait_gone(first.pid, timeout=1.0), "the server left with the app that started it"
        assert len(await list_chats(second, paths)) == 1
    finally:
        second.leave()
    assert wait_gone(first.pid), "the server stayed after the last app left"
    assert not discovery.info_file.exists()


def local_client(server: LocalServer, paths: Paths, use: LocalUse | None = None) -> ChatClient:
    """The app's client of the local server (as launch.py builds it), with ``use``'s relocate if given."""
    return ChatClient(
        server.url,
        server.token,
        data_dir=paths.data_dir,
        account=LOCAL_ACCOUNT,
        relocate=use.relocate if use else None,
    )


async def test_a_killed_local_server_is_replaced_and_the_message_typed_meanwhile_is_answered(paths, no_local_models):
    use = LocalUse(partial(LocalServer.join, paths))
    first = use.start()
    client = local_client(first, paths, use)
    answered = asyncio.Event()
    client.on_message(lambda frame: isinstance(frame, Complete) and answered.set())
    try:
        await client.connect()
        await client.wait_connected(20)
        os.kill(first.pid, signal.SIGKILL)
        assert wait_gone(first.pid)
        await client.send_message(None, "typed while the server was gone")
        await asyncio.wait_for(answered.wait(), 30)
        chats = (await client.list_chats()).chats
    finally:
        await client.close()
        use.leave()
    assert use.server.pid != first.pid and client.url == use.server.url != first.url
    assert [chat.message_count for chat in chats] == [2]
    assert wait_gone(use.server.pid), "the new server stayed after the last app left"


async def test_a_message_queued_for_a_dead_local_server_is_sent_by_the_next_run_on_its_new_port(paths, no_local_models):
    first = LocalServer.join(paths)
    client = local_client(first, paths)  # no relocate: the app quits before the server is back
    try:
        await client.connect()
        await client.wait_connected(20)
        os.kill(first.pid, signal.SIGKILL)
        assert wait_gone(first.pid)
        await client.send_message(None, "queued when the app quit")
    finally:
        await client.close()
        first.leave()

    again = LocalServer.join(paths)  # the next run: a new server on another port
    client = local_client(again, paths)
    acked = asyncio.Event()
    client.on_message(lambda frame: isinstance(frame, Ack) and acked.set())
    try:
        await client.connect()
        await asyncio.wait_for(acked.wait(), 30)
        chats = (await client.list_chats()).chats
    finally:
        await client.close()
        again.leave()
    assert again.url != first.url
    assert [chat.title for chat in chats] == ["queued when the app quit"]


def test_an_app_that_joins_a_server_started_with_another_provider_is_told(paths, no_local_models):
    first = LocalServer.join(paths, provider="demo")
    second = LocalServer.join(paths, provider="http://alice:hunter2@127.0.0.1:9")
    try:
        assert first.notice is None
        assert (second.provider, second.label) == ("demo", "local · demo model")  # the server's, not its own
        title, message, severity = second.notice
        assert (title, severity) == ("Local server shared", "information")
        assert message == (
            'Another mfu-chat started the local server with provider = "demo"; '
            'yours ("http://alice:***@127.0.0.1:9") applies once every mfu-chat has quit.'
        )
    finally:
        second.leave()
        first.leave()


def test_a_server_waiting_out_its_grace_is_reused_or_replaced_for_another_provider(paths, no_local_models, monkeypatch):
    monkeypatch.setenv("MFU_LOCAL_GRACE", "60")  # it would wait a minute for the next app
    first = LocalServer.join(paths, provider="demo")
    first.leave()
    again = LocalServer.join(paths, provider="demo")  # started again at once: the same server
    assert (again.pid, again.started) == (first.pid, False)
    again.leave()
    # The provider changed in between: the unused server gives way to one with the new setting.
    changed = LocalServer.join(paths, provider="http://127.0.0.1:9")
    try:
        assert changed.started and changed.pid != first.pid
        assert (changed.setting, changed.notice[0]) == ("http://127.0.0.1:9", "Model server not answering")
        assert wait_gone(first.pid)
    finally:
        changed.leave()
        os.kill(changed.pid, signal.SIGTERM)  # a signal stops it at once, grace or not
    assert wait_gone(changed.pid)
    assert not Discovery.for_paths(paths).info_file.exists()


def finished_pid() -> int:
    """The pid of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("pid", [finished_pid, os.getpid], ids=["pid dead", "pid reused"])
async def test_a_stale_discovery_file_is_taken_over(paths, no_local_models, pid):
    discovery = Discovery.for_paths(paths)
    # Left by a server killed with -9: nothing listens on its port (9), its pid is gone
    # or is now another process's.
    stale = {"url": "ws://127.0.0.1:9/ws", "port": 9, "pid": pid(), "token": "stale", "provider": "demo"}
    discovery.write_info(stale)
    server = LocalServer.join(paths)
    try:
        assert server.started and server.pid != stale["pid"] and server.token != "stale"
        assert discovery.read_info()["pid"] == server.pid
        assert await list_chats(server, paths) == []
    finally:
        server.leave()
    assert wait_gone(server.pid)


JOINING_APP = """
import json, sys
from pathlib import Path
from mfu_tui.config import Paths
from mfu_tui.local_server import LocalServer
base = Path(sys.argv[1])
server = LocalServer.join(Paths(base / "config", base / "data", base / "log"))
print(json.dumps({"pid": server.pid, "started": server.started}), flush=True)
sys.stdin.read()  # use it until the test closes stdin
"""


def servers_of(discovery: Discovery) -> list[int]:
    """Pids of the local servers meeting apps in ``discovery``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:
            continue
        if b"mfu_tui.embedded_server" in command and str(discovery.directory).encode() in command:
            found.append(int(entry.name))
    return found


def test_apps_started_at_the_same_instant_end_on_one_server(paths, no_local_models, tmp_path):
    apps = [
        subprocess.Popen(
            [sys.executable, "-c", JOINING_APP, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    try:
        joined = [json.loads(app.stdout.readline()) for app in apps]
        assert len({entry["pid"] for entry in joined}) == 1, joined
        assert sorted(entry["started"] for entry in joined) == [False, False, True]
        assert servers_of(Discovery.for_paths(paths)) == [joined[0]["pid"]]
    finally:
        for app in apps:
            app.stdin.close()
            app.wait()
    assert wait_gone(joined[0]["pid"])


def test_a_second_server_on_the_same_database_refuses_to_start(paths, no_local_models):
    server = LocalServer.join(paths)
    try:
        discovery = Discovery.for_paths(paths)
        command = [
            sys.executable, "-m", "mfu_tui.embedded_server", "--db", str(paths.local_database),
            "--secret-file", str(paths.secret_file), "--user", "me", "--discovery", str(discovery.directory),
        ]  # fmt: skip
        second = subprocess.run(command, capture_output=True, text=True, timeout=20)
        assert second.returncode == 1 and second.stdout == ""
        assert f"another local server uses {paths.local_database}" in second.stderr
        assert discovery.read_info()["pid"] == server.pid
    finally:
        server.leave()


def run_embedded_server(paths: Paths, database: Path) -> subprocess.CompletedProcess[str]:
    """The local server run by hand on ``database``, as the app runs it, to its end."""
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    ensure_secret(paths.secret_file)
    command = [
        sys.executable, "-m", "mfu_tui.embedded_server", "--db", str(database), "--secret-file",
        str(paths.secret_file), "--user", "me", "--discovery", str(Discovery.for_paths(paths).directory),
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=20)


def test_a_file_that_is_not_a_database_stops_it_with_serves_line(paths, no_local_models, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a database, but the user's notes\n" * 100)
    done = run_embedded_server(paths, text)
    assert done.returncode == 1 and done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].endswith(
        f": --db {text} is not a SQLite database (file is not a database): "
        "give the server's database, or a path for a new one"
    )


def test_a_database_it_cannot_write_stops_it_with_serves_line(paths, no_local_models, tmp_path):
    with read_only_database(tmp_path / "read-only") as database:
        done = run_embedded_server(paths, database)
    assert done.returncode == 1 and done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].endswith(
        f": --db {database}: cannot read and write it ({refusal_reason()}): the user running the "
        "server needs both, on the file and on its directory (SQLite makes chat.sqlite3-wal and -shm there)"
    )


def test_a_child_that_cannot_start_says_so_in_one_line(paths, no_local_models):
    # A directory where the database should be: the child cannot open its store.
    paths.local_database.mkdir(parents=True)
    with pytest.raises(LocalServerError) as raised:
        LocalServer.join(paths)
    message = str(raised.value)
    assert message.startswith("the local server did not start (exit code 1)")
    assert "mfu-chat --debug" in message and "\n" not in message


def test_a_secret_that_is_not_a_regular_file_is_refused_at_once(paths, no_local_models):
    paths.config_dir.mkdir(parents=True)
    os.mkfifo(paths.secret_file)  # a child reading it would wait forever
    with pytest.raises(LocalServerError) as raised:
        LocalServer.join(paths)
    message = str(raised.value)
    assert message.startswith(f"{paths.secret_file}: cannot read the local server's secret (not a regular file")
    assert "\n" not in message


def test_a_secret_left_readable_by_others_is_made_private(paths):
    ensure_secret(paths.secret_file)
    paths.secret_file.chmod(0o644)
    paths.config_dir.chmod(0o755)
    secret = paths.secret_file.read_text()
    ensure_secret(paths.secret_file)
    assert paths.secret_file.read_text() == secret
    assert stat.S_IMODE(paths.secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.config_dir.stat().st_mode) == 0o700


async def ask(server: LocalServer, paths: Paths, question: str) -> tuple[str, Complete, list[ClientError]]:
    """Ask the real client's question on a new chat: the answer's text, its end, and the errors reported."""
    client = ChatClient(server.url, server.token, data_dir=paths.data_dir)
    pieces: list[str] = []
    errors: list[ClientError] = []
    ended: asyncio.Future[Complete] = asyncio.get_running_loop().create_future()

    def on_message(frame) -> None:
        if isinstance(frame, Chunk):
            pieces.append(frame.content)
        elif isinstance(frame, Complete) and not ended.done():
            ended.set_result(frame)

    client.on_message(on_message)
    client.on_error(errors.append)
    await client.connect()
    try:
        await client.send_message(None, question)
        complete = await asyncio.wait_for(ended, 20)
    finally:
        await client.close()
    return "".join(pieces), complete, errors


async def start(paths: Paths, **options) -> LocalServer:
    # In a thread: join() blocks on the child's ready line, and the fake model
    # server the child probes runs on this test's event loop.
    return await asyncio.to_thread(LocalServer.join, paths, **options)


async def test_auto_uses_a_model_server_found_by_probing_and_says_which(paths, no_local_models):
    async with FakeOpenAI() as models:
        port = models.base_url.rsplit(":", 1)[1]
        server = await start(paths, probe_url=models.base_url)
        try:
            assert (server.provider, server.models_url, server.answered) == ("openai", models.base_url, True)
            assert server.label == f"local · models at 127.0.0.1:{port}"
            title, message, severity = server.notice
            assert severity == "information"
            assert message.startswith(f"Answers come from the model server at 127.0.0.1:{port} (found by probing).")
            assert f'Pin it with provider = "{models.base_url}" in the config' in message
            text, complete, errors = await ask(server, paths, "hello")
        finally:
            server.leave()
    assert (text, complete.finish_reason, errors) == ("Hello, world!", "stop", [])
    assert models.requests[-1]["messages"][-1] == {"role": "user", "content": "hello"}


async def test_demo_probes_nothing_even_when_a_model_server_listens(paths, no_local_models):
    async with FakeOpenAI() as models:
        server = await start(paths, provider="demo", probe_url=models.base_url)
        try:
            assert (server.provider, server.models_url, server.notice) == ("demo", None, None)
            assert server.label == "local · demo model"
            text, complete, errors = await ask(server, paths, "hello")
        finally:
            server.leave()
    assert text.startswith("## Demo answer") and complete.finish_reason == "stop" and errors == []
    # Not even asked for its models: nothing on this machine learns of the chat.
    assert (models.model_lists, models.requests) == (0, [])


async def test_a_pinned_url_is_used_as_is_and_nothing_is_probed(paths, no_local_models):
    async with FakeOpenAI() as pinned, FakeOpenAI() as probed:
        server = await start(paths, provider=pinned.base_url, probe_url=probed.base_url)
        try:
            assert (server.provider, server.models_url, server.answered) == ("openai", pinned.base_url, True)
            assert server.notice is None  # the header says it; the user chose it
            text, complete, errors = await ask(server, paths, "hello")
        finally:
            server.leave()
    assert (text, complete.finish_reason, errors) == ("Hello, world!", "stop", [])
    assert len(pinned.requests) == 1
    assert (probed.model_lists, probed.requests) == (0, [])


async def test_a_pinned_url_that_does_not_answer_fails_clearly_and_never_becomes_the_demo(paths, no_local_models):
    # Nothing listens on loopback port 9. The password must reach neither the header nor argv (ps).
    server = await start(paths, provider="http://alice:hunter2@127.0.0.1:9")
    try:
        assert (server.provider, server.answered) == ("openai", False)
        assert server.label == "local · models at 127.0.0.1:9"
        title, message, severity = server.notice
        assert (title, severity) == ("Model server not answering", "warning")
        assert message.startswith("The model server at 127.0.0.1:9 (your provider setting) does not answer.")
        assert b"hunter2" not in Path(f"/proc/{server.pid}/cmdline").read_bytes()
        text, complete, errors = await ask(server, paths, "hello")
    finally:
        server.leave()
    assert (text, complete.finish_reason) == ("", "error")
    [error] = errors
    assert error.code == "provider_error" and "cannot reach the model server" in error.message


def test_a_session_with_another_runtime_dir_never_starts_a_second_server(paths, no_local_models, monkeypatch):
    server = LocalServer.join(paths)
    try:
        # As an SSH login without XDG_RUNTIME_DIR beside a desktop session: another meeting place.
        monkeypatch.setenv("MFU_RUNTIME_DIR", str(paths.data_dir / "elsewhere"))
        monkeypatch.setattr("mfu_tui.local_server.START_TIMEOUT", 0.5)
        with pytest.raises(LocalServerError) as raised:
            LocalServer.join(paths)
        assert f"holds {paths.local_database.resolve()} but does not answer" in str(raised.value)
        assert "XDG_RUNTIME_DIR differs" in str(raised.value)
    finally:
        server.leave()
    assert wait_gone(server.pid)


def test_the_discovery_dir_is_in_the_runtime_dir_else_in_the_data_dir(paths, tmp_path, monkeypatch):
    assert runtime_dir(paths) == tmp_path / "run" / "mfu-chat"
    assert Discovery.for_paths(paths).directory.parent == tmp_path / "run" / "mfu-chat"
    # A runtime dir that cannot be made (here under a file): the data dir's run/, 0700.
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "file" / "run"))
    assert runtime_dir(paths) == paths.data_dir / "run"
    assert stat.S_IMODE((paths.data_dir / "run").stat().st_mode) == 0o700


@pytest.mark.skipif(Path(f"/run/user/{os.getuid()}").is_dir(), reason="this machine has a login session's runtime dir")
def test_over_ssh_without_a_runtime_dir_the_data_dir_stands_in_without_a_warning(paths, monkeypatch, recwarn):
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert runtime_dir(paths) == paths.data_dir / "run"  # not platformdirs' /tmp/runtime-UID
    # Again, as the app's next join does (its server died): platformdirs warns only the first time.
    assert runtime_dir(paths) == paths.data_dir / "run"
    assert [str(warning.message) for warning in recwarn] == []
