"""A small OpenAI-compatible HTTP server for tests: the real wire format, scripted answers.

``GET /v1/models`` lists two models (``models``). ``POST /v1/chat/completions`` with
``stream: true`` answers ``text/event-stream`` in chunked transfer encoding,
one ``data: {...}`` event per piece and ``data: [DONE]`` at the end, the way
OpenAI, vLLM and Ollama do. A test scripts what happens next: a clean answer,
a connection dropped mid-stream, an HTTP error, holding the stream open
until the client goes away (which ``disconnected`` reports), or until the
test opens ``gate`` (which may also hold the pieces back: ``gated``). A
request with ``stream_options: {"include_usage": true}`` gets the token
counts in a last event with empty ``choices``, as OpenAI sends it;
``refuses_stream_options`` makes it answer such a request 400, as some older
servers do.

A script may instead give the bytes to send as they are (``body``): the
recorded answers of each dialect (``tests/server/dialects.py``), a refusal
with its headers, or a stream cut anywhere. ``queue`` holds scripts for the
next requests, one each, before ``script`` applies again; ``models_reply``
replaces the model list's answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Script:
    """What the next completion request gets."""

    pieces: list[str] = field(default_factory=lambda: ["Hello", ", ", "world", "!"])
    #: ``finish_reason`` of the last event.
    finish_reason: str = "stop"
    #: After the pieces: "done" (send [DONE]), "drop" (close the socket), "hold" (wait for the client
    #: to leave), or "gate" (wait for ``FakeOpenAI.gate``, then end as "done").
    then: str = "done"
    #: Answer this HTTP status with an error body instead of a stream.
    status: int = 200
    #: The error body's ``error.message``.
    error_message: str = "the model is on fire"
    #: Send the pieces only once ``FakeOpenAI.gate`` is set (the test readies something first);
    #: a "gate" stream then ends at once.
    gated: bool = False
    #: ``(prompt_tokens, completion_tokens)`` reported when the request asks for usage.
    usage: tuple[int, int] = (12, 4)
    #: Bytes to send as the body, as they are (with ``status``, ``content_type`` and ``headers``),
    #: instead of the scripted pieces; ``then`` is "done" (end the body) or "drop" (close the socket).
    body: bytes | None = None
    content_type: str = "text/event-stream"
    headers: dict[str, str] = field(default_factory=dict)
    #: Where ``body`` is cut into chunks of the chunked encoding (offsets), as a network cuts it.
    cuts: tuple[int, ...] = ()
    #: Seconds between two pieces: a slow model.
    pause: float = 0.0


@dataclass
class Reply:
    """A recorded HTTP answer: status, content type and body, as a dialect sends them."""

    status: int
    body: bytes
    content_type: str = "application/json"


class FakeOpenAI:
    """Start with ``async with FakeOpenAI() as fake:``; ``fake.base_url`` is its root."""

    def __init__(self) -> None:
        self.script = Script()
        #: The JSON bodies and headers of the completion requests received.
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        #: Set when a client closed a held stream.
        self.disconnected = asyncio.Event()
        #: Set when a held stream has sent all its pieces.
        self.holding = asyncio.Event()
        #: "gate" streams end once this is set.
        self.gate = asyncio.Event()
        #: What ``GET /v1/models`` lists, and how often it was asked.
        self.models = ["fake-small", "fake-large"]
        self.model_lists = 0
        #: Set once ``GET /v1/models`` was asked.
        self.models_asked = asyncio.Event()
        #: ``GET /v1/models`` waits for this event (set by default).
        self.models_open = asyncio.Event()
        self.models_open.set()
        #: Answer a request that has ``stream_options`` with a 400 naming it.
        self.refuses_stream_options = False
        #: Scripts for the next completion requests, taken one each before ``script`` applies.
        self.queue: list[Script] = []
        #: What ``GET /v1/models`` answers instead of listing ``models``.
        self.models_reply: Reply | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> FakeOpenAI:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    return
                method, path, _ = request_line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                if method == "GET" and path == "/v1/models":
                    self.model_lists += 1
                    self.models_asked.set()
                    await self.models_open.wait()
                    if self.models_reply is not None:
                        reply = self.models_reply
                        await self._send(writer, reply.status, reply.content_type, reply.body)
                    else:
                        listed = {"object": "list", "data": [{"id": model} for model in self.models]}
                        await self._json(writer, 200, listed)
                elif method == "POST" and path == "/v1/chat/completions":
                    self.requests.append(json.loads(body))
                    self.headers.append(headers)
                    if not await self._complete(reader, writer):
                        return
                else:
                    await self._json(writer, 404, {"error": {"message": "no such route"}})
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _json(self, writer: asyncio.StreamWriter, status: int, data: Any) -> None:
        await self._send(writer, status, "application/json", json.dumps(data).encode())

    @staticmethod
    async def _send(
        writer: asyncio.StreamWriter, status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        head = f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
        writer.write(head.encode() + body)
        await writer.drain()

    async def _send_body(self, writer: asyncio.StreamWriter, script: Script) -> bool:
        """Send ``script.body`` as it is; False when the connection must end."""
        assert script.body is not None
        if script.status != 200:
            await self._send(writer, script.status, script.content_type, script.body, script.headers)
            return True
        extra = "".join(f"{name}: {value}\r\n" for name, value in script.headers.items())
        head = f"HTTP/1.1 200 OK\r\nContent-Type: {script.content_type}\r\n{extra}Transfer-Encoding: chunked\r\n\r\n"
        writer.write(head.encode())
        edges = [0, *sorted(cut for cut in set(script.cuts) if 0 < cut < len(script.body)), len(script.body)]
        for start, end in zip(edges, edges[1:]):
            if end > start:
                writer.write(f"{end - start:x}\r\n".encode() + script.body[start:end] + b"\r\n")
                await writer.drain()
        if script.then == "drop":
            writer.transport.abort()
            return False
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    async def _complete(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one completion; False when the connection must end."""
        script = self.queue.pop(0) if self.queue else self.script
        request = self.requests[-1]
        if self.refuses_stream_options and "stream_options" in request:
            refusal = "Unrecognized request argument supplied: stream_options"
            await self._json(writer, 400, {"error": {"message": refusal, "type": "invalid_request_error"}})
            return True
        if script.body is not None:
            return await self._send_body(writer, script)
        if script.status != 200:
            await self._json(writer, script.status, {"error": {"message": script.error_message}})
            return True
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        self._event(writer, ": keep-alive comment\n\n")
        if script.gated:
            await writer.drain()
            await self.gate.wait()
        for index, piece in enumerate(script.pieces):
            if index and script.pause:
                await asyncio.sleep(script.pause)
            last = index == len(script.pieces) - 1 and script.then in ("done", "gate")
            delta = {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "choices": [
                    {"index": 0, "delta": {"content": piece}, "finish_reason": script.finish_reason if last else None}
                ],
            }
            self._event(writer, f"data: {json.dumps(delta)}\n\n")
            await writer.drain()
        if script.then == "drop":
            writer.transport.abort()
            return False
        if script.then == "hold":
            self.holding.set()
            with contextlib.suppress(ConnectionError):
                while await reader.read(1024):
                    pass
            self.disconnected.set()
            return False
        if script.then == "gate":
            await self.gate.wait()
        if (request.get("stream_options") or {}).get("include_usage"):
            prompt, completion = script.usage
            counts = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
            self._event(writer, f"data: {json.dumps({'id': 'chatcmpl-1', 'choices': [], 'usage': counts})}\n\n")
        self._event(writer, "data: [DONE]\n\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    @staticmethod
    def _event(writer: asyncio.StreamWriter, text: str) -> None:
        data = text.encode()
        writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
