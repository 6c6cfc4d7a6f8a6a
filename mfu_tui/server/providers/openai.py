"""Any OpenAI-compatible endpoint: OpenAI, Ollama, vLLM, llama.cpp, LM Studio, gateways.

Streams ``POST {base}/v1/chat/completions`` with ``stream: true`` and reads
the server-sent events (``data: {...}`` lines, ``data: [DONE]`` at the end);
the dialects of the servers are read by ``openai_wire``, their refusals put
into plain sentences by ``openai_errors``. Models come from
``GET {base}/v1/models``; when that fails, the configured model alone is used. Each request asks for the
token counts (``stream_options: {"include_usage": true}``), which arrive in
a last event whose ``choices`` are empty; an endpoint that refuses the option
(an HTTP 400 naming it, as some older servers answer) is asked once more
without it, and never again with it. aiohttp is imported here only, so
``mfu-chat serve --provider demo`` never loads it. It was chosen over httpx
for the relay's CPU per chunk, about half (docs/benchmarks.md); like httpx it
takes proxies from the environment (``HTTPS_PROXY``, ``NO_PROXY``...).

Cancelling the task that iterates ``stream`` leaves the ``async with``
block of the streaming response, which closes the HTTP connection: the
upstream sees the client go away and stops generating (and billing).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import aiohttp
import yarl

from mfu_tui.protocol import ChatParams, ModelInfo
from mfu_tui.redaction import redact_password
from mfu_tui.server.model_input import ModelTurn, turn_text
from mfu_tui.server.providers.base import Finish, Provider, ProviderError, StreamItem, UpstreamErrorKind
from mfu_tui.server.providers.openai_errors import error_text, refusal_sentence, retry_after_seconds
from mfu_tui.server.providers.openai_wire import DONE, AnswerReader, Item, parse_line

log = logging.getLogger(__name__)

#: A 429 asking to wait at most this many seconds is waited out and asked again, once.
RETRY_BY_ITSELF = 10.0

#: Bytes of a refusal's body read to find what it says.
REFUSAL_BYTES = 4000

#: Largest answer read from a server that sends it whole instead of streaming it.
MAX_WHOLE_ANSWER_BYTES = 16 * 1024 * 1024

#: Longest line of an event stream: one event. A server sending more without a newline is
#: refused, so that it cannot make the server hold its bytes without bound.
MAX_EVENT_BYTES = 1024 * 1024


def _api_root(base_url: str) -> str:
    """``http://host:8000/v1/`` and ``http://host:8000`` both give ``http://host:8000/v1``."""
    root = base_url.rstrip("/")
    return root if root.endswith("/v1") else root + "/v1"


def _environment_proxy(url: str) -> tuple[yarl.URL | None, aiohttp.BasicAuth | None]:
    """The proxy the environment names for ``url`` (``HTTPS_PROXY``, ``NO_PROXY``...), read once.

    Not aiohttp's ``trust_env``: that also reads ``~/.netrc`` for every request,
    and an entry there for the model server's host, beside an API key, made
    every request fail ("Cannot combine AUTHORIZATION header with AUTH argument").
    """
    try:
        return aiohttp.helpers.get_env_proxy_for_url(yarl.URL(url))
    except LookupError:  # no proxy for this URL
        return None, None


class OpenAIProvider(Provider):
    """Streams chat completions from an OpenAI-compatible HTTP API.

    Args:
        base_url: The API root, with or without ``/v1``.
        api_key: Sent as a bearer token when given.
        default_model: Used when a message names no model; else the first listed.
        timeout: Seconds for connecting, for the answer's headers, and between
            two pieces of the stream (``--upstream-idle-timeout``): a model
            loading from disk, or reasoning it does not stream, sends nothing
            for that long.
    """

    name = "openai"

    def __init__(
        self, base_url: str, api_key: str | None = None, default_model: str | None = None, timeout: float = 300.0
    ) -> None:
        self._root = _api_root(base_url)
        #: The root as the log names it: without the password a URL may hold.
        self.upstream = redact_password(self._root)
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # No total: an answer may stream for minutes; only a silent upstream is cut.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        self._idle_limit = timeout
        self.default_model = default_model
        self._session: aiohttp.ClientSession | None = None
        #: False once this endpoint refused ``stream_options``: not sent again.
        self._asks_usage = True

    def _client(self) -> aiohttp.ClientSession:
        """The session, made on first use (it must be made inside the running loop)."""
        if self._session is None:
            proxy, proxy_auth = _environment_proxy(self._root)
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=self._timeout,
                proxy=proxy,
                proxy_auth=proxy_auth,
                # One HTTP connection per running answer, with no cap: a cap of N
                # would make answer N+1 wait for another to end.
                connector=aiohttp.TCPConnector(limit=0),
            )
        return self._session

    async def models(self) -> list[ModelInfo]:
        try:
            listed = await self._listed_models()
        except ProviderError as error:
            # A server without a usable list (a gateway, a proxy) still answers for the model it was set up with.
            fallback = f"; using the configured model {self.default_model} alone" if self.default_model else ""
            log.warning("model server %s: %s%s", self.upstream, error, fallback)
            if self.default_model is None:
                raise
            listed = [self.default_model]
        default = self.default_model or (listed[0] if listed else None)
        return [ModelInfo(id=model, name=model, provider=self.name, default=model == default) for model in listed]

    async def _listed_models(self) -> list[str]:
        """The ids ``GET /models`` lists, as ``{"data": [...]}`` (most) or a bare array (Together).

        Raises:
            ProviderError: the list cannot be had.
        """
        try:
            async with self._client().get(f"{self._root}/models") as response:
                if response.status != 200:
                    said = error_text(await _refusal_body(response))
                    raise ProviderError(f"cannot list models: HTTP {response.status}: {said}", "http_error")
                listed = await response.json(content_type=None)
            entries = listed["data"] if isinstance(listed, dict) else listed
            return [entry["id"] if isinstance(entry, dict) else str(entry) for entry in entries]
        except (aiohttp.ClientError, TimeoutError, KeyError, TypeError, ValueError) as error:
            raise ProviderError(f"cannot list models: {_describe(error)}", "unreachable") from None

    async def stream(
        self, model_id: str, history: list[ModelTurn], params: ChatParams
    ) -> AsyncGenerator[StreamItem, None]:
        body: dict[str, Any] = {
            "model": model_id,
            "stream": True,
            "messages": [_message(turn) for turn in history],
        }
        # Only the parameters the chat sets: a field sent as null is refused by some servers.
        sampling = {"temperature": params.temperature, "top_p": params.top_p, "max_tokens": params.max_tokens}
        body |= {name: value for name, value in (*sampling.items(), ("seed", params.seed)) if value is not None}
        answer = AnswerReader()
        try:
            async with (
                self._completion(body) as response,
                contextlib.aclosing(_items(response, answer, self._idle_limit)) as items,
            ):
                async for item in items:
                    yield item
        except (aiohttp.ClientError, TimeoutError) as error:
            if not answer.finished:
                log.warning("streaming from %s failed: %s", self.upstream, error)
                kind: UpstreamErrorKind = "timeout" if isinstance(error, TimeoutError) else "unreachable"
                raise ProviderError(f"model server failed: {_describe(error)}", kind) from None
            # The model had said it was done: a connection cut before [DONE] loses nothing.
            log.info("%s closed the connection after the answer ended: %s", self.upstream, error)

    @contextlib.asynccontextmanager
    async def _completion(self, body: dict[str, Any]) -> AsyncIterator[aiohttp.ClientResponse]:
        """The answer to ``body``, asking for usage unless this endpoint refused that once.

        A 429 asking to wait a few seconds (``RETRY_BY_ITSELF``) is retried once, after that wait.

        Raises:
            ProviderError: the model server refused the request.
        """
        url = f"{self._root}/chat/completions"
        waited = False
        while True:
            asking_usage = self._asks_usage
            sent = body | {"stream_options": {"include_usage": True}} if asking_usage else body
            async with self._client().post(url, json=sent) as response:
                if response.status == 200:
                    yield response
                    return
                detail = await _refusal_body(response)
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                if asking_usage and response.status == 400 and b"stream_options" in detail:
                    log.info("%s refuses stream_options: asking it without usage from now on", self.upstream)
                    self._asks_usage = False
                    continue
                if response.status == 429 and not waited and wait is not None and wait <= RETRY_BY_ITSELF:
                    log.info("%s is limiting requests: asking again in %.1f s", self.upstream, wait)
                    waited = True
                else:
                    available = await self._available() if response.status == 404 else None
                    said = error_text(detail)
                    log.warning("%s/chat/completions answered %d: %s", self.upstream, response.status, said)
                    raise ProviderError(
                        refusal_sentence(
                            response.status, detail, model=body["model"], retry_after=wait, available=available
                        ),
                        "http_error",
                    )
            await asyncio.sleep(wait)

    async def _available(self) -> list[str] | None:
        """The models the server lists, to name them when it refused one; None if it cannot say."""
        try:
            return await self._listed_models()
        except ProviderError:
            return None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


async def _items(
    response: aiohttp.ClientResponse, answer: AnswerReader, idle_limit: float
) -> AsyncGenerator[Item, None]:
    """The items of a completion: a stream of events, or one JSON object from a server that does not stream.

    Raises:
        ProviderError: the model server sent an error, or ended before the answer did.
    """
    whole = "json" in response.content_type
    done = False
    async with contextlib.aclosing(_whole_answer(response) if whole else _events(response, idle_limit)) as events:
        async for event in events:
            if event is DONE:
                done = True
                break
            for item in answer.event(event):
                if isinstance(item, Finish) and item.reason == "error":
                    # OpenRouter's ending when its provider failed, mostly after an error event that says why.
                    raise ProviderError("the model stopped with an error and gave no reason", "model_error")
                yield item
    for item in answer.end():
        yield item
    # A whole answer is whole; a stream is, with [DONE] or after its finish_reason.
    if not (whole or done or answer.finished):
        raise ProviderError("the model server ended the stream before the answer was finished", "truncated")


async def _events(response: aiohttp.ClientResponse, idle_limit: float) -> AsyncGenerator[Any, None]:
    """The events of a server-sent event stream, ``DONE`` included, until the body ends.

    The body is read as it arrives, not a line at a time: one wait for each
    read of the network, whatever the lines it brings (an event is two, its
    ``data:`` line and a blank one). That is 14 of the relay's 255 calls a
    chunk fewer (docs/benchmarks.md).

    Raises:
        ProviderError: a line is longer than ``MAX_EVENT_BYTES``.
        TimeoutError: nothing came for ``idle_limit`` seconds.
    """
    begun: list[bytes] = []  # a line begun in earlier reads, in pieces (joined once, when it ends)
    begun_bytes = 0
    with _IdleLimit(response, idle_limit) as idle:
        while data := await response.content.readany():
            idle.last_read = time.monotonic()
            *lines, rest = data.split(b"\n")
            if lines and begun:
                lines[0] = b"".join((*begun, lines[0]))
                begun, begun_bytes = [], 0
            if rest:
                begun.append(rest)
                begun_bytes += len(rest)
                if begun_bytes > MAX_EVENT_BYTES:
                    raise ProviderError("the model server sent an event too long to read", "unreadable")
            for line in lines:
                if not line:
                    continue  # the blank line after each event
                event = parse_line(line.decode(errors="replace"))
                if event is not None:
                    yield event
    # The last line, if the body did not end with a newline.
    event = parse_line(b"".join(begun).decode(errors="replace"))
    if event is not None:
        yield event


class _IdleLimit:
    """Ends a streaming body with a ``TimeoutError`` once nothing came for ``seconds`` (``with`` it while reading).

    aiohttp's read timeout, which covered the wait for the headers, is turned
    off for the body: it moves a timer at every piece that arrives, 13 of the
    relay's 207 calls a chunk (docs/benchmarks.md). This one looks at the time
    of the last read (``last_read``) once in ``seconds``, or sooner if the
    last read leaves less.
    """

    def __init__(self, response: aiohttp.ClientResponse, seconds: float) -> None:
        self._body = response.content
        self._seconds = seconds
        self._protocol = response.connection.protocol if response.connection is not None else None
        #: When the reader last got something (``time.monotonic()``).
        self.last_read = time.monotonic()
        self._check: asyncio.TimerHandle | None = None

    def __enter__(self) -> _IdleLimit:
        if self._protocol is not None:
            self._protocol.read_timeout = None
            self._protocol.start_timeout()  # stops the timer set for the headers
        self._check = asyncio.get_running_loop().call_later(self._seconds, self._look)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._check is not None:
            self._check.cancel()

    def _look(self) -> None:
        silent = time.monotonic() - self.last_read
        if silent >= self._seconds:
            self._body.set_exception(TimeoutError(f"nothing from the model server for {silent:.0f} s"))
        else:
            self._check = asyncio.get_running_loop().call_later(self._seconds - silent, self._look)


async def _whole_answer(response: aiohttp.ClientResponse) -> AsyncGenerator[Any, None]:
    """The one JSON object of a server that answered whole instead of streaming."""
    body = await _read_at_most(response, MAX_WHOLE_ANSWER_BYTES + 1)
    if len(body) > MAX_WHOLE_ANSWER_BYTES:
        raise ProviderError("the model server sent an answer too large to read", "unreadable")
    try:
        whole = json.loads(body)
    except ValueError:
        raise ProviderError("the model server sent an unreadable answer", "unreadable") from None
    yield whole


def _message(turn: ModelTurn) -> dict[str, Any]:
    """A turn as a chat message: its text (text files in fenced blocks), and its images as content parts.

    A turn without images keeps the plain string form every compatible server takes;
    one with images uses the content-parts form, each image an ``image_url`` with a ``data:`` URL.
    """
    text = turn_text(turn)
    if not turn.images:
        return {"role": turn.role, "content": text}
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for image in turn.images:
        url = f"data:{image.media_type};base64,{base64.b64encode(image.data).decode()}"
        parts.append({"type": "image_url", "image_url": {"url": url}})
    return {"role": turn.role, "content": parts}


async def _refusal_body(response: aiohttp.ClientResponse) -> bytes:
    """The start of the body of an answer that is not a 200 (enough to find what it says)."""
    return await _read_at_most(response, REFUSAL_BYTES)


async def _read_at_most(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body up to its end or ``limit`` bytes, whichever comes first (``read(n)`` stops at what has arrived)."""
    body = bytearray()
    while len(body) < limit:
        piece = await response.content.read(limit - len(body))
        if not piece:
            break
        body += piece
    return bytes(body)


def _describe(error: Exception) -> str:
    """One line for people: what went wrong (the server's log has the URL)."""
    if isinstance(error, TimeoutError):
        return "the model server did not answer in time"
    if isinstance(error, (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError)):
        return "the connection to the model server was cut before the answer ended"
    if isinstance(error, aiohttp.ClientConnectorError):
        reason = os.strerror(error.os_error.errno) if error.os_error.errno else str(error.os_error)
        return f"cannot reach the model server ({reason.lower()})"
    return str(error) or type(error).__name__
