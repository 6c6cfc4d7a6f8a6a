"""With no server configured, the app is drawn first and joins the local server after, in a thread.

Each test runs the app as ``launch.py`` wires it, on the real local server
(a process of its own, started by the app). Another app starting the
server is stood for by holding the discovery dir's ``start.lock``, as that
app would: the start waits for it, for as long as the test chooses.
"""

from __future__ import annotations

import os
import threading
import unicodedata
from pathlib import Path

import pytest

from mfu_tui.client import Status
from mfu_tui.config import Paths
from mfu_tui.file_lock import Lock
from mfu_tui.local_discovery import Discovery
from mfu_tui.protocol import Ack, Complete
from mfu_tui.tui.status_text import LocalStart
from tests.support.processes import wait_gone
from tests.tui.helpers import FrameWaiter, StateWaiter, frame_of, local_app, local_start_over, settle, type_text

SIZE = (100, 32)
QUESTION = "Typed while the local server starts"


@pytest.fixture
def paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("MFU_DEMO_WORDS", "12")
    monkeypatch.setenv("MFU_DEMO_DELAY_MS", "0")
    # The server stops this long after the last app left (5 s for users).
    monkeypatch.setenv("MFU_LOCAL_GRACE", "0.3")
    return Paths(config_dir=tmp_path / "config", data_dir=tmp_path / "data", log_dir=tmp_path / "log")


async def test_the_app_is_drawn_before_the_local_server_and_what_is_typed_meanwhile_is_answered(paths: Paths) -> None:
    another_app_starting = Lock(Discovery.for_paths(paths).start_lock)
    assert another_app_starting.acquire(1.0)
    app, use = local_app(paths)
    try:
        async with app.run_test(size=SIZE) as pilot:
            dot = app.status_dot
            assert str(dot.render()) == "● starting local server" and dot.has_class("-warning")
            assert str(app.query_one("#identity").render()) == "local"
            await type_text(pilot, QUESTION)
            await pilot.press("enter")
            await pilot.pause()
            assert len(app.client.outbox) == 1  # on disk, not sent: there is no server yet
            assert str(dot.render()) == "● starting local server"

            answered = FrameWaiter(app.client, frame_of(Complete))
            another_app_starting.release()
            await StateWaiter(app.client, lambda state: state.status is Status.CONNECTED).wait()
            await answered.wait()
            await settle(app, pilot)
            assert str(dot.render()).startswith("● online") and dot.has_class("-ok")
            assert str(app.query_one("#identity").render()) == "local · demo model"
            assert len(app.client.outbox) == 0
            chats = (await app.client.list_chats()).chats
            assert [(chat.title, chat.message_count) for chat in chats] == [(QUESTION, 2)]
            await app.client.close()
    finally:
        another_app_starting.release()
        use.leave()
    assert use.server is not None and wait_gone(use.server.pid), "the server stayed after the app left"


async def test_a_local_server_that_cannot_start_is_said_in_the_app_and_the_reconnect_key_starts_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("MFU_LOCAL_GRACE", "0.3")
    # A config dir whose name holds a terminal escape, and a FIFO where the secret goes: refused at once.
    config_dir = tmp_path / "conf\x1b[2Jig"
    paths = Paths(config_dir=config_dir, data_dir=tmp_path / "data", log_dir=tmp_path / "log")
    config_dir.mkdir()
    os.mkfifo(paths.secret_file)
    app, use = local_app(paths)
    try:
        async with app.run_test(size=SIZE) as pilot:
            assert await local_start_over(app) is LocalStart.FAILED
            await pilot.pause()
            dot = app.status_dot
            assert str(dot.render()) == "● offline: local server not started" and dot.has_class("-error")
            [note] = [n for n in app._notifications if n.title == "Local server not started"]
            assert "cannot read the local server's secret (not a regular file" in note.message
            assert note.message.endswith(". Press f9 to try again; what you type is kept and sent once it runs.")
            assert not [c for c in note.message if unicodedata.category(c) == "Cc"]  # the escape is not shown
            await type_text(pilot, QUESTION)
            await pilot.press("enter")
            await pilot.pause()
            assert len(app.client.outbox) == 1

            paths.secret_file.unlink()  # what the notification said to fix
            acked = FrameWaiter(app.client, frame_of(Ack))
            await pilot.press("f9")
            await StateWaiter(app.client, lambda state: state.status is Status.CONNECTED).wait()
            await acked.wait()
            await settle(app, pilot)
            assert str(dot.render()).startswith("● online")
            assert not [n for n in app._notifications if n.title == "Local server not started"]  # withdrawn
            assert [chat.title for chat in (await app.client.list_chats()).chats] == [QUESTION]
            await app.client.close()
    finally:
        use.leave()
    assert use.server is not None and wait_gone(use.server.pid)


async def test_quitting_while_the_local_server_starts_does_not_wait_for_it(paths: Paths) -> None:
    another_app_starting = Lock(Discovery.for_paths(paths).start_lock)
    assert another_app_starting.acquire(1.0)
    # A directory where the database goes: once let through, the start fails, and leaves no server behind.
    paths.local_database.mkdir(parents=True)
    app, use = local_app(paths)
    try:
        async with app.run_test(size=SIZE) as pilot:
            assert str(app.status_dot.render()) == "● starting local server"
            await pilot.press("ctrl+q")
        # The app is gone while its start still waits: in a daemon thread, which the process's end does not wait for.
        [start] = [thread for thread in threading.enumerate() if thread.name == "mfu-chat local server start"]
        assert start.is_alive() and start.daemon
    finally:
        another_app_starting.release()
    start.join(30)
    assert not start.is_alive() and use.server is None  # it failed, and told no one: the app had gone
