"""The app states that the snapshot tests check and ``screenshots/make.py`` draws.

Each scene builds an app on a real server and a ``run_before`` coroutine
that drives it (typing, waiting on frames) to the state to show. What would
differ from run to run is then pinned: the client is closed and the status
dot is given a fixed state (a round trip of 12 ms, a retry in 3 s), and the
text cursor does not blink.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
from textual.pilot import Pilot
from textual.widgets import Input, Static, TextArea

from mfu_tui.client import ConnectionState, Status
from mfu_tui.client.attachments import Attachment
from mfu_tui.config import Paths
from mfu_tui.file_lock import Lock
from mfu_tui.local_discovery import Discovery
from mfu_tui.protocol import Cancelled, Chunk, Complete
from mfu_tui.server.auth import mint_token
from mfu_tui.server.storage_status import OUT_OF_REACH
from mfu_tui.tui import ChatApp
from mfu_tui.tui.screens.chat_settings import ChatSettingsScreen
from mfu_tui.tui.screens.details import DetailsScreen
from mfu_tui.tui.screens.search import SearchScreen
from tests.tui.helpers import (
    FrameWaiter,
    StateWaiter,
    finished,
    frame_of,
    local_app,
    local_start_over,
    make_app,
    ready,
    server_thread,
    settle,
    stopped_by_auth,
    type_text,
    until,
)

#: The sizes every scene is drawn at: the smallest supported, and a roomy one.
SIZES = [(80, 24), (120, 36)]

#: Server settings of the scenes: short answers, fast; and slow ones to cancel.
FAST_SERVER = {"demo_words": 52, "demo_delay_ms": 1}
SLOW_SERVER = {"demo_words": 200, "demo_delay_ms": 600}

QUESTION = "How do I print in Python?"

GREEN = ConnectionState(Status.CONNECTED, rtt=0.012)
YELLOW = ConnectionState(Status.RECONNECTING, retry_at=103.0, last_error="connection refused")
#: Connected, to a server whose database is out of reach (what its ``server_status`` says).
STORAGE_OUT = ConnectionState(Status.CONNECTED, rtt=0.012, storage_unavailable=OUT_OF_REACH)
#: Connected, but the server has been silent in the middle of an answer: a probe waits for its pong.
CHECKING = ConnectionState(Status.CONNECTED, rtt=0.012, checking=True)

#: The server port the scenes show (the real one is a free port, different every run).
SHOWN_PORT = 5001

RunBefore = Callable[[Pilot[Any]], Awaitable[None]]


@dataclass
class Servers:
    """The servers scenes run against (``running_server`` handles)."""

    fast: Any
    slow: Any
    #: Its model endpoint does not answer: every answer fails.
    failing: Any


def closed_port() -> int:
    """A loopback port with nothing listening."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def scene_servers(workdir: Path) -> Iterator[Servers]:
    """The servers of the scenes, each in a thread of its own; stopped at the end."""
    failing = {"provider": "openai", "openai_base_url": f"http://127.0.0.1:{closed_port()}"}
    with (
        server_thread(workdir / "fast", **FAST_SERVER) as fast,
        server_thread(workdir / "slow", **SLOW_SERVER) as slow,
        server_thread(workdir / "failing", **failing) as failing_server,
    ):
        yield Servers(fast, slow, failing_server)


@dataclass(frozen=True)
class Scene:
    """A named app state: how to build the app and drive it there."""

    name: str
    description: str
    build: Callable[[Servers, Path, str], tuple[ChatApp, RunBefore]]


def scene_app(
    url: str, token: str, tmp_path: Path, user: str, *, plain: bool = False, ascii_only: bool = False
) -> ChatApp:
    """An app for a scene: its own user and directories, and a cursor that does not blink.

    The header names the server's port, which is a free one, different every
    run: the scenes show a fixed one.
    """
    label = f"alice@127.0.0.1:{SHOWN_PORT}"
    return make_app(
        url, token, tmp_path, user=user, cursor_blink=False, plain=plain, ascii_only=ascii_only, server_label=label
    )


async def pin_status(app: ChatApp, pilot: Pilot[Any], state: ConnectionState) -> None:
    """Stop the client and show a fixed connection state, for a reproducible frame."""
    await app.client.close()
    await settle(app, pilot)
    dot = app.status_dot
    dot.clock = lambda: 100.0
    dot.state = state
    await pilot.pause()


async def pin_port(app: ChatApp, pilot: Pilot[Any]) -> None:
    """Show the notifications with the server's port as ``SHOWN_PORT``, for a reproducible frame."""
    port = f":{urlsplit(app.client.url).port}/"
    notes = list(app._notifications)
    app.clear_notifications()
    for note in notes:
        shown = note.message.replace(port, f":{SHOWN_PORT}/")
        app.notify(shown, title=note.title, severity=note.severity, timeout=note.timeout, markup=False)
    for text in app.screen.query(Static):  # a dialog (the sign-in) that names the server
        words = str(text.render())
        if port in words:
            text.update(words.replace(port, f":{SHOWN_PORT}/"))
    await pilot.pause()


async def ask(app: ChatApp, pilot: Pilot[Any], question: str) -> None:
    """Type a question in the composer and send it."""
    app.composer.focus()
    await type_text(pilot, question)
    await pilot.press("enter")


async def ask_answered(app: ChatApp, pilot: Pilot[Any], question: str) -> None:
    """Ask ``question`` and wait for its answer's end."""
    done = FrameWaiter(app.client, frame_of(Complete))
    await ask(app, pilot, question)
    await done.wait()


def _connected(servers: Servers, tmp_path: Path, user: str) -> tuple[ChatApp, RunBefore]:
    app = scene_app(servers.fast.url, servers.fast.token(user), tmp_path, user)

    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(app, pilot)
        await pin_status(app, pilot, GREEN)

    return app, run_before


def _reconnecting(servers: Servers, tmp_path: Path, user: str) -> tuple[ChatApp, RunBefore]:
    app = scene_app(f"ws://127.0.0.1:{closed_port()}/ws", servers.fast.token(user), tmp_path, user)

    async def run_before(pilot: Pilot[Any]) -> None:
        await StateWaiter(app.client, lambda state: state.status is Status.RECONNECTING).wait()
        await pin_status(app, pilot, YELLOW)

    return app, run_before


def _offline(servers: Servers, tmp_path: Path, user: str, *, plain: bool = False) -> tuple[ChatApp, RunBefore]:
    # Signed with another key: the server's words hold no time, so the frame is the same every run.
    other_key = mint_token("k" * 48, user)
    app = scene_app(servers.fast.url, other_key, tmp_path, user, plain=plain)

    async def run_before(pilot: Pilot[Any]) -> None:
        await StateWaiter(app.client, stopped_by_auth).wait()
        await settle(app, pilot)
        await pin_port(app, pilot)

    return app, run_before


def _answer(
    servers: Servers, tmp_path: Path, user: str, *, ascii_only: bool = False, status: ConnectionState = GREEN
) -> tuple[ChatApp, RunBefore]:
    app = scene_app(servers.fast.url, servers.fast.token(user), tmp_path, user, ascii_only=ascii_only)

    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(app, pilot)
        await ask_answered(app, pilot, QUESTION)
        await pin_status(app, pilot, status)

    return app, run_before


def _checking(servers: Servers, tmp_path: Path, user: str) -> tuple[ChatApp, RunBefore]:
    app = scene_app(servers.slow.url, servers.slow.token(user), tmp_path, user)

    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(app, pilot)
        tenth = FrameWaiter(app.client, lambda f: isinstance(f, Chunk) and f.seq >= 10)
        await ask(app, pilot, QUESTION)
        await tenth.wait()
        await pin_status(app, pilot, CHECKING)

    return app, run_before


def _cancelled(servers: Servers, tmp_path: Path, user: str) -> tuple[ChatApp, RunBefore]:
    app = scene_app(servers.slow.url, servers.slow.token(user), tmp_path, user)

    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(app, pilot)
        # The slow server writes a word every 0.6 s: once the tenth (the end
        # of the quoted question) is here, esc stops the answer before the next.
        tenth = FrameWaiter(app.client, lambda f: isinstance(f, Chunk) and f.seq >= 10)
        cancelled = FrameWaiter(app.client, frame_of(Cancelled))
        await ask(app, pilot, QUESTION)
        await tenth.wait()
        await pilot.press("escape")
        await cancelled.wait()
        await pin_status(app, pilot, GREEN)

    return app, run_before


def _model_failed(servers: Servers, tmp_path: Path, user: str) -> tuple[ChatApp, RunBefore]:
    app = scene_app(servers.failing.url, servers.failing.token(user), tmp_path, user)

    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(app, pilot)
        # The provider_error comes first (on_error: the notification), then this end.
        failed = FrameWaiter(app.client, lambda f: isinstance(f, Complete) and f.finish_reason == "error")
        await ask(app, pilot, QUESTION)
        await failed.wait()
        await pin_status(app, pilot, GREEN)

    return app, run_before


def _help(servers: Servers, tmp_path: Path, user: str) -> tuple[ChatApp, RunBefore]:
    app, connected = _connected(servers, tmp_path, user)

    async def run_before(pilot: Pilot[Any]) -> None:
        await connected(pilot)
        await pilot.press("f1")
        await pilot.pause()

    return app, run_before


def _prompt_search(servers: Servers, tmp_path: Path, user: str) -> tuple[ChatApp, RunBefore]:
    app = scene_app(servers.fast.url, servers.fast.token(user), tmp_path, user)

    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(app, pilot)
        for question in (QUESTION, "What is a list comprehension?", "How do I print a dict sorted by key?"):
            await ask_answered(app, pilot, question)
        await pin_status(app, pilot, GREEN)
        await pilot.press("ctrl+r", *"print")
        await pilot.pause()
        app.screen.query_one(Input).cursor_blink = False  # one frame, every run
        await pilot.pause()

    return app, run_before


def _search(servers: Servers, tmp_path: Path, user: str) -> tuple[ChatApp, RunBefore]:
    app = scene_app(servers.fast.url, servers.fast.token(user), tmp_path, user)

    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(app, pilot)
        for question in (QUESTION, "And how do I read a file?"):
            await ask_answered(app, pilot, question)
        await settle(app, pilot)
        await pilot.press("ctrl+f")
        screen = app.screen
        assert isinstance(screen, SearchScreen)
        await pilot.press(*"print")
        await screen.settled()
        # A blinking cursor would be drawn on or off depending on the moment: one frame, every run.
        screen.query_one(Input).cursor_blink = False
        # The messages' times are today's: shown as one fixed day (noon UTC is that day everywhere).
        day = datetime(2026, 11, 26, 12, tzinfo=UTC)
        screen.hits = [msgspec.structs.replace(hit, created_at=day) for hit in screen.hits]
        await pin_status(app, pilot, GREEN)

    return app, run_before


def _pinned(servers: Servers, tmp_path: Path, user: str) -> tuple[ChatApp, RunBefore]:
    app = scene_app(servers.fast.url, servers.fast.token(user), tmp_path, user)

    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(app, pilot)
        for number, question in enumerate((QUESTION, "And how do I read a file?", "What is a generator?")):
            if number:
                await pilot.press("ctrl+n")
            await ask_answered(app, pilot, question)
        await settle(app, pilot)
        await pilot.press("ctrl+o", "end", "p")  # the oldest chat: pinned, so listed first
        await finished(app, "update")
        await pin_status(app, pilot, GREEN)

    return app, run_before


def _rename(servers: Servers, tmp_path: Path, user: str) -> tuple[ChatApp, RunBefore]:
    app = scene_app(servers.fast.url, servers.fast.token(user), tmp_path, user)

    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(app, pilot)
        await ask_answered(app, pilot, QUESTION)
        await pin_status(app, pilot, GREEN)
        await pilot.press("f2")
        await pilot.pause()
        field = app.screen.query_one(Input)
        field.cursor_blink = False
        field.value = "Printing in Python: " + "print(), f-strings, sep and end, files and flush; " * 4
        await pilot.pause()

    return app, run_before


def _chat_settings(servers: Servers, tmp_path: Path, user: str) -> tuple[ChatApp, RunBefore]:
    app = scene_app(servers.fast.url, servers.fast.token(user), tmp_path, user)

    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(app, pilot)
        await ask_answered(app, pilot, QUESTION)
        await pin_status(app, pilot, GREEN)
        await pilot.press("f3")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ChatSettingsScreen)
        prompt = screen.query_one(TextArea)
        prompt.cursor_blink = False
        prompt.text = "Answer in French, in three sentences at most."
        for name, typed in (("temperature", "0.3"), ("max_tokens", "lots")):
            field = screen.query_one(f"#{name}", Input)
            field.cursor_blink = False
            field.focus()
            await pilot.press(*typed)
        await pilot.pause()

    return app, run_before


async def _open_details(app: ChatApp, pilot: Pilot[Any]) -> DetailsScreen:
    """``i`` on the answer just streamed, whose record is then asked of the server: its details dialog."""
    await ready(app, pilot)
    await ask_answered(app, pilot, QUESTION)
    await settle(app, pilot)
    app.conversation.focus()
    await pilot.press("up", "i")
    screen = app.screen
    assert isinstance(screen, DetailsScreen)
    return screen


def _details(servers: Servers, tmp_path: Path, user: str) -> tuple[ChatApp, RunBefore]:
    app = scene_app(servers.fast.url, servers.fast.token(user), tmp_path, user)

    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await _open_details(app, pilot)
        await until(pilot, lambda: screen.message is not None)
        assert screen.message is not None
        # Measured times differ from run to run: shown as fixed ones, 09:30 here in any time zone.
        written = datetime(2026, 11, 26, 9, 30).astimezone()
        screen.message = msgspec.structs.replace(
            screen.message, created_at=written, first_token_ms=180, tokens_per_second=38.4
        )
        await pin_status(app, pilot, GREEN)

    return app, run_before


def _details_loading(servers: Servers, tmp_path: Path, user: str) -> tuple[ChatApp, RunBefore]:
    app = scene_app(servers.fast.url, servers.fast.token(user), tmp_path, user)

    async def run_before(pilot: Pilot[Any]) -> None:
        screen = await _open_details(app, pilot)
        # The record comes in a few milliseconds: the dialog as it was before is shown again.
        await until(pilot, lambda: screen.message is not None)
        screen.message = None
        await pin_status(app, pilot, GREEN)

    return app, run_before


def _details_failed(servers: Servers, tmp_path: Path, user: str) -> tuple[ChatApp, RunBefore]:
    app = scene_app(servers.fast.url, servers.fast.token(user), tmp_path, user)

    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(app, pilot)
        await ask_answered(app, pilot, QUESTION)
        await pin_status(app, pilot, GREEN)  # the client closed: the record cannot be asked for
        app.conversation.focus()
        await pilot.press("up", "i")
        screen = app.screen
        assert isinstance(screen, DetailsScreen)
        await until(pilot, lambda: screen.failure is not None)
        await pilot.pause()

    return app, run_before


def _reasoning(servers: Servers, tmp_path: Path, user: str, *, expanded: bool) -> tuple[ChatApp, RunBefore]:
    app = scene_app(servers.fast.url, servers.fast.token(user), tmp_path, user)

    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(app, pilot)
        await ask_answered(app, pilot, "think: " + QUESTION)
        await settle(app, pilot)
        app.conversation.focus()
        await pilot.press("up", *(["t"] if expanded else []))
        await settle(app, pilot)
        await pin_status(app, pilot, GREEN)

    return app, run_before


def _attach_prompt(servers: Servers, tmp_path: Path, user: str) -> tuple[ChatApp, RunBefore]:
    app = scene_app(servers.fast.url, servers.fast.token(user), tmp_path, user)

    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(app, pilot)
        await pin_status(app, pilot, GREEN)
        app.composer.focus()
        # A path in the project (the working directory of the tests): the same completion every run.
        await pilot.press("alt+a", *"docs/pro")
        await pilot.pause()
        app.screen.query_one(Input).cursor_blink = False  # one frame, every run
        await pilot.pause()

    return app, run_before


def _attachments(servers: Servers, tmp_path: Path, user: str) -> tuple[ChatApp, RunBefore]:
    app = scene_app(servers.fast.url, servers.fast.token(user), tmp_path, user)

    async def run_before(pilot: Pilot[Any]) -> None:
        await ready(app, pilot)
        await app.pending_files.add(Attachment("notes.md", "text/plain", b"# Plan\n\n- ship it\n" * 20))
        await app.pending_files.add(Attachment("chart.png", "image/png", b"\x89PNG\r\n\x1a\n" + bytes(3000)))
        await ask_answered(app, pilot, "Summarise the notes and the chart")
        await app.pending_files.add(Attachment("next.txt", "text/plain", b"the next file"))
        await pin_status(app, pilot, GREEN)

    return app, run_before


def _local_paths(tmp_path: Path, user: str) -> Paths:
    """Where a scene's app with no server configured keeps its local server's files."""
    home = tmp_path / f"local-{user}"
    return Paths(config_dir=home / "config", data_dir=home / "data", log_dir=home / "log")


def _local_starting(servers: Servers, tmp_path: Path, user: str) -> tuple[ChatApp, RunBefore]:
    paths = _local_paths(tmp_path, user)
    # Another app starting the local server holds start.lock: this app's start waits for it. Held until this
    # process ends: the start gives up then (JOIN_TIMEOUT), and no server is started for an app long gone.
    another_app_starting = Lock(Discovery.for_paths(paths).start_lock)
    if not another_app_starting.acquire(1.0):
        raise RuntimeError(f"{another_app_starting.path} is held")
    app, _ = local_app(paths, cursor_blink=False)

    async def run_before(pilot: Pilot[Any]) -> None:
        await ask(app, pilot, QUESTION)  # kept in the outbox, sent once the server runs
        await settle(app, pilot)

    return app, run_before


def _local_not_started(servers: Servers, tmp_path: Path, user: str) -> tuple[ChatApp, RunBefore]:
    paths = _local_paths(tmp_path, user)
    # A directory where the database goes: the server the app starts exits at once, with status 1.
    paths.local_database.mkdir(parents=True)
    app, _ = local_app(paths, cursor_blink=False)

    async def run_before(pilot: Pilot[Any]) -> None:
        await local_start_over(app)
        await pilot.pause()

    return app, run_before


SCENES = [
    Scene("connected", "An empty app, connected (green dot with the round trip).", _connected),
    Scene("reconnecting", "The server is away: yellow dot counting down to the next try.", _reconnecting),
    Scene(
        "storage-unavailable",
        "Connected, but the server's database is out of reach: yellow dot; messages wait and go once it is back.",
        partial(_answer, status=STORAGE_OUT),
    ),
    Scene(
        "checking",
        "The server silent in the middle of an answer: yellow dot while a probe waits; reconnects if none comes.",
        _checking,
    ),
    Scene("offline", "The token was refused: red dot and a notification saying what to do.", _offline),
    Scene(
        "local-starting",
        "No server configured: drawn at once while the local server starts; a message typed meanwhile waits.",
        _local_starting,
    ),
    Scene(
        "local-not-started",
        "The local server did not start: red dot, the reason, and f9 to try again.",
        _local_not_started,
    ),
    Scene(
        "offline-plain",
        "The same with NO_COLOR: words for the dot (ASCII-only terminals also get answer-ascii's look).",
        partial(_offline, plain=True),
    ),
    Scene("answer", "A streamed answer in Markdown with a highlighted code block.", _answer),
    Scene(
        "answer-ascii",
        "The same where only ASCII can be shown (LANG=C, TERM=linux, TERM=dumb): borders, bullets, keys in ASCII.",
        partial(_answer, ascii_only=True),
    ),
    Scene("cancelled", "An answer stopped with esc: the partial text stays, marked cancelled.", _cancelled),
    Scene(
        "model-failed", "The model endpoint does not answer: the answer is marked failed, with advice.", _model_failed
    ),
    Scene("help", "F1: every key binding with its id.", _help),
    Scene("prompt-search", "ctrl+r in the message box: earlier prompts that contain what is typed.", _prompt_search),
    Scene("search", "ctrl+f: every chat searched as you type, the matched words marked.", _search),
    Scene("pinned", "A pinned chat listed first, marked ★; p pins, a archives, f4 shows the archive.", _pinned),
    Scene("rename", "f2: the chat's new title; one over the limit is said to be, and kept to shorten.", _rename),
    Scene(
        "chat-settings",
        "f3: the chat's system prompt and parameters, each field checked as it is typed.",
        _chat_settings,
    ),
    Scene(
        "details",
        "i on a selected message: its model, time, how it ended, its tokens and speed.",
        _details,
    ),
    Scene("details-loading", "i on an answer streamed in this run: its details asked of the server.", _details_loading),
    Scene("details-failed", "i on an answer whose details could not be asked for: why, in one line.", _details_failed),
    Scene(
        "reasoning",
        "An answer after the model's reasoning, which is one collapsed line above it.",
        partial(_reasoning, expanded=False),
    ),
    Scene(
        "reasoning-expanded",
        "t on the selected answer: its reasoning in full, above it.",
        partial(_reasoning, expanded=True),
    ),
    Scene("attach", "alt+a: the path of a file to attach, completed as it is typed.", _attach_prompt),
    Scene(
        "attachments",
        "Files sent with a message shown as chips on it, and one more waiting above the message box.",
        _attachments,
    ),
]
