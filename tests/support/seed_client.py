"""The seed's browser chat client, played by ``tests/seed_client/seed_client.mjs`` under Node, for compatibility tests.

mfu-chat serve replaces the MFU Learn AI service (the "seed") and must keep
working with its web page. The Node program puts on the wire what that page
puts there; ``SeedClient`` drives it (one JSON command per line on its stdin)
and lets a test wait on what it reports (one JSON event per line on stdout)::

    async with running_server(tmp_path) as srv, seed_client(srv.url, srv.token()) as seed:
        await seed.connect(chat_id)
        await seed.next_event(lambda event: event["event"] == "open")
        await seed.send_message("", [{"role": "user", "content": "Hi"}], model_id="demo")
        done = await seed.next_frame("complete")

What the page does, read from the public ``patipanbank/MFULearnAi`` repository
(``frontend/src/utils/api.ts``, class ``WebSocketManager``, and the
``frontend/src/pages/Chat.tsx`` that uses it; facts only, the code is ours):

- URL: ``VITE_WS_URL`` (default ``ws://localhost:5001``) less a trailing ``/ws``
  and ``/``, then ``/ws?token=<jwt>`` and ``&chat=<chatId>`` when a chat is
  open, both URI-encoded. The token is only in the query (a browser cannot set
  headers); without a token no socket is opened at all.
- Heartbeat: ``{"type":"ping"}`` every 25 s while the socket is open; pongs are
  swallowed and never checked. A handshake still pending after 10 s is closed.
- Reconnect: after any close but 1000, unless one is pending, wait
  1 s x attempt and connect again (at most 5 attempts; an open resets the
  count). A failed attempt does not schedule another, so a drop in practice
  gets one try. A second ``connect`` opens a new socket without closing the
  old one, which keeps delivering frames.
- Frames it sends: ``{type:"message", chatId, messages, modelId}`` (no
  ``clientMessageId``; ``messages`` is the page's whole list plus the new
  user entry ``{id: Date.now() string, role, content, timestamp}``, assistant
  entries ``{id: the chunks' messageId, role, content, timestamp, model: ""}``;
  ``chatId`` is the page's current chat id, ``""`` when it has none),
  ``{type:"cancel", chatId}``, ``{type:"message_edited", chatId, messageId,
  content}`` (then a REST ``PUT``), ``{type:"ping"}``. A frame is sent only
  while the socket is open, else dropped.
- Frames it reads: ``chunk`` (``content`` appended to the assistant message
  ``messageId``), ``complete`` and ``error`` (``error`` or else ``message``
  shown) end the spinner, ``message_edited`` replaces a message's content,
  ``chat_updated`` reloads the chat list over REST; ``chat_created``,
  ``content`` and anything else are ignored.
- REST: ``VITE_API_URL`` + ``/api/...`` with ``Authorization: Bearer <jwt>``;
  a 401 drops the token (the page goes to its login).

The Node program needs ``node`` and ``npm ci --prefix tests/seed_client``
(``.ci/run`` does both); without them the tests FAIL, never skip, and say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.programs import MissingProgram

#: A safety net only: every wait ends on an event long before this.
WAIT = 30.0

SEED_DIR = Path(__file__).resolve().parent.parent / "seed_client"
SCRIPT = SEED_DIR / "seed_client.mjs"

Event = dict[str, Any]
Predicate = Callable[[Event], object]


def node_command() -> list[str]:
    """``node seed_client.mjs``, once node and the locked ``ws`` package are there.

    Raises:
        MissingProgram: ``node`` is not on PATH, or ``npm ci`` has not been run.
    """
    node = shutil.which("node")
    if node is None:
        raise MissingProgram(
            "node is not installed: apt-get install nodejs npm, then npm ci --prefix tests/seed_client"
            " (.ci/run does both)"
        )
    if not (SEED_DIR / "node_modules" / "ws" / "package.json").is_file():
        raise MissingProgram("the seed client's Node packages are missing: run npm ci --prefix tests/seed_client")
    return [node, str(SCRIPT)]


class SeedClient:
    """The Node seed client as a subprocess: commands in, events out.

    Every event is kept in ``events`` in arrival order. ``next_event`` reads them
    like a stream: it returns the first one after the previous match that fits,
    so a test states what comes next without racing the client.

    Args:
        ws_url: The server's WebSocket URL (``ws://127.0.0.1:PORT/ws``).
        token: The JWT the page holds; None for a logged-out page.
        api_url: The base the page prefixes REST paths with (``http://127.0.0.1:PORT``).
        heartbeat_ms: The ping interval; the seed's 25 s when None.
        reconnect_delay_ms: The reconnect delay unit; the seed's 1 s when None.
        env: More environment for the program (``MFU_ORIGIN``, ``MFU_SEED_PAGE_REST``...).
    """

    def __init__(
        self,
        ws_url: str,
        token: str | None,
        *,
        api_url: str | None = None,
        heartbeat_ms: int | None = None,
        reconnect_delay_ms: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        settings = {
            "MFU_WS_URL": ws_url,
            "MFU_API_URL": api_url or ws_url.replace("ws", "http", 1).removesuffix("/ws"),
            "MFU_TOKEN": token,
            "MFU_SEED_HEARTBEAT_MS": heartbeat_ms,
            "MFU_SEED_RECONNECT_DELAY_MS": reconnect_delay_ms,
        }
        self.env = {name: value for name, value in os.environ.items() if name not in settings}
        self.env.update({name: str(value) for name, value in settings.items() if value is not None})
        self.env.update(env or {})
        self.events: list[Event] = []
        self.stderr_lines: list[str] = []
        self.process: asyncio.subprocess.Process | None = None
        self._cursor = 0
        self._exited = False
        self._changed = asyncio.Event()
        self._readers: list[asyncio.Task[None]] = []
        self._next_request = 0

    async def start(self, timeout: float = WAIT) -> None:
        """Spawn the program and wait for its ``ready`` event.

        Raises:
            MissingProgram: node or its packages are missing (see ``node_command``).
        """
        self.process = await asyncio.create_subprocess_exec(
            *node_command(),
            cwd=SEED_DIR,
            env=self.env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=1 << 24,  # one event is one line, and a frame event carries a whole frame
        )
        self._readers = [
            asyncio.create_task(self._read_events(self.process.stdout)),
            asyncio.create_task(self._read_stderr(self.process.stderr)),
        ]
        await self.next_event(lambda event: event["event"] == "ready", timeout=timeout)

    async def aclose(self, timeout: float = 10.0) -> None:
        """Ask the program to exit (its sockets close with 1001, like a closed tab); kill it if it lingers."""
        if self.process is None:
            return
        if self.process.returncode is None:
            with contextlib.suppress(ConnectionError):
                await self.command("exit")
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        await asyncio.gather(*self._readers, return_exceptions=True)

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)

    # Commands: each writes one line; what follows is read with next_event.

    async def command(self, cmd: str, **fields: Any) -> None:
        """Send the command ``cmd`` with ``fields`` as they are (camelCase, as the program reads them)."""
        assert self.process is not None and self.process.stdin is not None, "start() first"
        self.process.stdin.write((json.dumps({"cmd": cmd, **fields}) + "\n").encode())
        await self.process.stdin.drain()

    async def connect(self, chat_id: str | None = None) -> None:
        """The page's ``connect(chatId)``: a new socket, ``&chat=`` in its URL when ``chat_id`` is given."""
        await self.command("connect", chatId=chat_id)

    async def send_message(
        self,
        chat_id: str,
        messages: list[dict[str, Any]] | None = None,
        *,
        content: str | None = None,
        model_id: str | None = None,
    ) -> None:
        """The page's ``message`` frame (``chat_id`` ``""`` is its "no chat yet").

        Args:
            chat_id: The page's current chat id.
            messages: Sent as they are.
            content: Instead of ``messages``: the page's own list (its sent messages
                and the answers streamed into it) plus a new user entry, as it builds it.
            model_id: The page's selected model.
        """
        fields: dict[str, Any] = {"chatId": chat_id, "modelId": model_id}
        if messages is not None:
            fields["messages"] = messages
        else:
            assert content is not None, "give messages or content"
            fields["content"] = content
        await self.command("send", **fields)

    async def cancel(self, chat_id: str) -> None:
        """The page's stop button: ``{"type": "cancel", "chatId": ...}``."""
        await self.command("cancel", chatId=chat_id)

    async def edit(self, chat_id: str, content: str, message_id: str | None = None) -> None:
        """The page's ``message_edited`` frame; without ``message_id``, its latest user message's id."""
        await self.command("edit", chatId=chat_id, messageId=message_id, content=content)

    async def raw(self, frame: dict[str, Any] | str) -> None:
        """Send ``frame`` on the current socket as it is (a string goes out verbatim)."""
        await self.command("raw", frame=frame)

    async def close(self) -> None:
        """The page's ``close()``: close code 1000, so no reconnect follows."""
        await self.command("close")

    async def rest(self, method: str, path: str, body: Any = None, *, timeout: float = WAIT) -> Event:
        """One of the page's REST calls (``path`` from ``/api/...``); its ``rest`` event (``status``, ``body``)."""
        self._next_request += 1
        request_id = f"r{self._next_request}"
        fields: dict[str, Any] = {"id": request_id, "method": method, "path": path}
        if body is not None:
            fields["body"] = body
        await self.command("rest", **fields)
        return await self.next_event(
            lambda event: event["event"] == "rest" and event["id"] == request_id, timeout=timeout
        )

    async def history(self, *, timeout: float = WAIT) -> list[dict[str, Any]]:
        """The page's message list now: what ``send_message(content=...)`` would send before its new entry."""
        await self.command("history")
        event = await self.next_event(lambda event: event["event"] == "history", timeout=timeout)
        messages: list[dict[str, Any]] = event["messages"]
        return messages

    # Waiting.

    async def next_event(self, predicate: Predicate | None = None, *, timeout: float = WAIT) -> Event:
        """The first event after the last one returned that satisfies ``predicate`` (any event if None).

        Events passed over stay in ``events``.

        Raises:
            AssertionError: None came within ``timeout`` seconds, or the program exited first.
        """
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for index in range(self._cursor, len(self.events)):
                        if predicate is None or predicate(self.events[index]):
                            self._cursor = index + 1
                            return self.events[index]
                    if self._exited:
                        break
                    await self._changed.wait()
        except TimeoutError:
            pass
        why = "the seed client exited" if self._exited else f"nothing matched within {timeout} s"
        seen = "\n".join(json.dumps(event) for event in self.events[self._cursor :])
        raise AssertionError(f"{why}; events since the last match:\n{seen}\nits stderr:\n{self.stderr}")

    async def next_frame(self, frame_type: str, *, timeout: float = WAIT) -> dict[str, Any]:
        """The next received frame of type ``frame_type`` (the frame itself, not the event)."""
        event = await self.next_event(
            lambda event: event["event"] == "frame" and event["frame"].get("type") == frame_type, timeout=timeout
        )
        frame: dict[str, Any] = event["frame"]
        return frame

    def frames(self, frame_type: str | None = None) -> list[dict[str, Any]]:
        """Every frame received so far (of ``frame_type`` only, if given), in order."""
        return [
            event["frame"]
            for event in self.events
            if event["event"] == "frame" and (frame_type is None or event["frame"].get("type") == frame_type)
        ]

    async def _read_events(self, stream: asyncio.StreamReader | None) -> None:
        assert stream is not None
        async for line in stream:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "unparsable", "line": line.decode(errors="replace")}
            self.events.append(event)
            self._poke()
        self._exited = True
        self._poke()

    async def _read_stderr(self, stream: asyncio.StreamReader | None) -> None:
        assert stream is not None
        async for line in stream:
            self.stderr_lines.append(line.decode(errors="replace"))

    def _poke(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


@contextlib.asynccontextmanager
async def seed_client(ws_url: str, token: str | None, **options: Any) -> AsyncIterator[SeedClient]:
    """A started ``SeedClient`` (``options`` as its constructor's), closed at the end.

    Without node or its packages the test fails, saying how to install them.
    """
    client = SeedClient(ws_url, token, **options)
    try:
        await client.start()
    except MissingProgram as error:
        raise pytest.fail.Exception(str(error), pytrace=False) from None  # pytest.fail, without the chain
    try:
        yield client
    finally:
        await client.aclose()
