"""Helpers of the app's tests: start the app on a real server, wait on frames."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from textual import events
from textual.keys import _character_to_key

from mfu_tui.client import ChatClient, ClientSettings, ConnectionState, Status
from mfu_tui.config import Paths, Settings
from mfu_tui.launch import app_settings
from mfu_tui.local_server import LocalServer, LocalUse
from mfu_tui.tui import AppSettings, ChatApp
from mfu_tui.tui.status_text import LocalStart

#: A safety net only: every wait ends on an event long before this.
#: The worker group of the command palette's search for commands (Textual's).
GATHER = "--textual-command-palette-gather-commands"

TIMEOUT = 20.0


def make_app(url: str, token: str, tmp_path: Path, *, user: str = "alice", **settings: Any) -> ChatApp:
    """An app on ``url`` with its own data and export directories under ``tmp_path``."""
    options: dict[str, Any] = {
        "plain": False,
        # What the app draws is the same whatever terminal runs the tests (TERM, LANG).
        "ascii_only": False,
        "colour": True,
        "client": ClientSettings(data_dir=tmp_path / f"data-{user}"),
        "export_dir": tmp_path / "exports",
    }
    options.update(settings)
    return ChatApp(AppSettings(url=url, token=token, **options))


def local_app(paths: Paths, **settings: Any) -> tuple[ChatApp, LocalUse]:
    """An app with no server configured, wired as ``launch.py`` does: it joins the local server of ``paths``
    (starting it, with the demo model) after its first frame. Call the ``LocalUse``'s ``leave()`` at the end."""
    use = LocalUse(partial(LocalServer.join, paths, provider="demo"))
    options: dict[str, Any] = {"plain": False, "ascii_only": False, "colour": True, **settings}
    return ChatApp(replace(app_settings(Settings(paths=paths, provider="demo"), use), **options)), use


class FrameWaiter:
    """A future resolved by the first frame of a client that matches ``predicate``.

    Create it before the action that causes the frame, then ``await waiter.wait()``.
    """

    def __init__(self, client: ChatClient, predicate: Callable[[Any], bool]) -> None:
        self._future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._predicate = predicate
        self._unsubscribe = client.on_message(self._check)

    def _check(self, frame: Any) -> None:
        if not self._future.done() and self._predicate(frame):
            self._future.set_result(frame)

    async def wait(self) -> Any:
        """The matching frame (``TimeoutError`` after ``TIMEOUT`` seconds)."""
        try:
            async with asyncio.timeout(TIMEOUT):
                return await self._future
        finally:
            self._unsubscribe()


class StateWaiter:
    """A future resolved by the first connection state of a client (the current one
    included) that matches ``predicate``."""

    def __init__(self, client: ChatClient, predicate: Callable[[ConnectionState], bool]) -> None:
        self._future: asyncio.Future[ConnectionState] = asyncio.get_running_loop().create_future()
        self._predicate = predicate
        self._unsubscribe = client.on_state(self._check)
        self._check(client.state)

    def _check(self, state: ConnectionState) -> None:
        if not self._future.done() and self._predicate(state):
            self._future.set_result(state)

    async def wait(self) -> ConnectionState:
        """The matching state (``TimeoutError`` after ``TIMEOUT`` seconds)."""
        try:
            async with asyncio.timeout(TIMEOUT):
                return await self._future
        finally:
            self._unsubscribe()


def stopped_by_auth(state: ConnectionState) -> bool:
    """A predicate: the client gave up because the token was refused."""
    return state.status is Status.DISCONNECTED and (state.reason or "").startswith("auth refused")


def frame_of(kind: type, **fields: Any) -> Callable[[Any], bool]:
    """A predicate: a frame of ``kind`` whose attributes equal ``fields``."""

    def predicate(frame: Any) -> bool:
        return isinstance(frame, kind) and all(getattr(frame, name) == value for name, value in fields.items())

    return predicate


def nth_frame_of(kind: type, count: int) -> Callable[[Any], bool]:
    """A predicate true at the ``count``-th frame of ``kind`` it is shown (``Complete``, 2: the second answer's end)."""
    seen = 0

    def predicate(frame: Any) -> bool:
        nonlocal seen
        seen += isinstance(frame, kind)
        return seen == count

    return predicate


async def ready(app: ChatApp, pilot: Any) -> None:
    """Wait until the app is connected and shows what the server has."""
    await StateWaiter(app.client, lambda state: state.status is Status.CONNECTED).wait()
    async with asyncio.timeout(TIMEOUT):
        await app.settled()
    await pilot.pause()


async def local_start_over(app: ChatApp) -> LocalStart | None:
    """Wait until the app's start of the local server is over: ``None`` once started, else ``LocalStart.FAILED``."""
    over: asyncio.Future[LocalStart | None] = asyncio.get_running_loop().create_future()

    def check(start: LocalStart | None) -> None:
        if start is not LocalStart.STARTING and not over.done():
            over.set_result(start)

    # The dot says "starting" from the app's mount until the start is over, whichever way.
    app.watch(app.status_dot, "local_start", check)
    async with asyncio.timeout(TIMEOUT):
        return await over


async def finished(app: ChatApp, group: str) -> None:
    """Wait until the app's workers of ``group`` (``rename``, ``delete``, ``export``...) are done."""
    workers = [w for w in app.workers if w.group == group]
    if workers:  # an empty list would mean "all workers", the endless frame loop included
        async with asyncio.timeout(TIMEOUT):
            await app.workers.wait_for_complete(workers)


async def settle(app: ChatApp, pilot: Any) -> None:
    """Wait until the frames received so far are on screen."""
    async with asyncio.timeout(TIMEOUT):
        await app.settled()
    await pilot.pause()


async def type_text(pilot: Any, text: str) -> None:
    """Type ``text`` into the focused widget as one burst of keys, then wait until the app is idle.

    The keys reach the app as the terminal driver sends a fast typist's (or tmux's) keys: one
    ``Key`` event per character, in order. ``pilot.press`` waits for the app to be idle after
    each key (60 ms a key on this machine): typing questions that way was a sixth of the suite.
    """
    await pilot.pause()  # a focus asked for just before is taken first
    app = pilot.app
    for character in text:
        key = events.Key(_character_to_key(character), character)
        key.set_sender(app)
        app._driver.send_message(key)
    await pilot.pause()


def burst(app: ChatApp, *keys: str) -> None:
    """Post ``keys`` at once, as the driver does with the keys of one read (over SSH, a word and an enter).

    Each is a key's name (``ctrl+o``, ``enter``) or a character (``"h"``, ``" "``): ``burst(app, "enter", *"hi")``.
    Unlike ``type_text``, nothing runs before the first: the keys are in the app's queue together.
    """
    for key in keys:
        app.post_message(events.Key(_character_to_key(key), key) if len(key) == 1 else events.Key(key, None))


async def until(pilot: Any, condition: Callable[[], bool], rounds: int = 200) -> None:
    """Let the app run until ``condition`` holds (what it waits for runs when the app is idle), ``rounds`` at most."""
    for _ in range(rounds):
        if condition():
            return
        await pilot.pause()
    raise AssertionError(f"still not true after {rounds} idle rounds")


class ServerThread:
    """The real server in a thread with its own event loop.

    Snapshot tests run the app with ``App.run`` (which owns the main loop),
    so the server cannot share it; it runs here through the same
    ``running_server`` helper the other tests use.
    """

    def __init__(self, tmp_path: Path, **config: Any) -> None:
        self._tmp_path = tmp_path
        self._config = config
        self._started = threading.Event()
        self._handle: Any = None
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="mfu-chat test server", daemon=True)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        from tests.support.server import running_server

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            async with running_server(self._tmp_path, **self._config) as handle:
                self._handle = handle
                self._started.set()
                await self._stop.wait()
        except BaseException as error:
            self._error = error
            self._started.set()

    def __enter__(self) -> Any:
        self._thread.start()
        if not self._started.wait(TIMEOUT) or self._error is not None:
            raise RuntimeError(f"the test server did not start: {self._error!r}")
        return self._handle

    def __exit__(self, *exc_info: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(TIMEOUT)


@contextmanager
def server_thread(tmp_path: Path, **config: Any) -> Iterator[Any]:
    """``running_server`` in a thread, for tests that cannot share its loop."""
    with ServerThread(tmp_path, **config) as handle:
        yield handle
