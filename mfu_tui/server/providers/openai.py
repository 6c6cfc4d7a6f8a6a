"""Any OpenAI-compatible endpoint: OpenAI, Ollama, vLLM, llama.cpp, LM Studio, gateways.

Streams ``POST {base}/v1/chat/completions`` with ``stream: true`` and reads
the server-sent events (``data: {...}`` lines, ``data: [DONE]`` at the end).
Models come from ``GET {base}/v1/models``. Each request asks for the
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

import base64
import contextlib
import json
import logging
import os
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import aiohttp

from mfu_tui.protocol import ChatParams, ModelInfo, Usage
from mfu_tui.server.model_input import ModelTurn, turn_text
from mfu_tui.server.providers.base import Finish, Provider, ProviderError, UpstreamErrorKind

log = logging.getLogger(__name__)


def _api_root(base_url: str) -> str:
    """``http://host:8000/v1/`` and ``http://host:8000`` both give ``http://host:8000/v1``."""
    root = base_url.rstrip("/")
    return root if root.endswith("/v1") else root + "/v1"


class OpenAIProvider(Provider):
    """Streams chat completions from an OpenAI-compatible HTTP API.

    Args:
        base_url: The API root, with or without ``/v1``.
        api_key: Sent as a bearer token when given.
        default_model: Used when a message names no model; else the first listed.
        timeout: Seconds for connecting and between two pieces of the stream.
    """

    name = "openai"

    def __init__(
        self, base_url: str, api_key: str | None = None, default_model: str | None = None, timeout: float = 60.0
    ) -> None:
        self._root = _api_root(base_url)
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # No total: an answer may stream for minutes; only a silent upstream is cut.
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        self._default_model = default_model
        self._session: aiohttp.ClientSession | None = None
        #: False once this endpoint refused ``stream_options``: not sent again.
        self._asks_usage = True

    def _client(self) -> aiohttp.ClientSession:
        """The session, made on first use (it must be made inside the running loop)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=self._timeout,
                trust_env=True,
                # One HTTP connection per running answer, with no cap: a cap of N
                # would make answer N+1 wait for another to end.
                connector=aiohttp.TCPConnector(limit=0),
            )
        return self._session

    async def models(self) -> list[ModelInfo]:
        try:
            async with self._client().get(f"{self._root}/models") as response:
                if response.status != 200:
                    raise ProviderError(f"cannot list models: {_said(response, await _refusal(response))}")
                listed = [entry["id"] for entry in (await response.json(content_type=None))["data"]]
        except (aiohttp.ClientError, TimeoutError, KeyError, TypeError, ValueError) as error:
            log.warning("listing the models of %s failed: %s", self._root, error)
            raise ProviderError(f"cannot list models: {_describe(error)}") from None
        default = self._default_model or (listed[0] if listed else None)
        return [ModelInfo(id=model, name=model, provider=self.name, default=model == default) for model in listed]

    async def stream(
        self, model_id: str | None, history: list[ModelTurn], params: ChatParams
    ) -> AsyncGenerator[str | Usage | Finish, None]:
        model = model_id or self._default_model or await self._first_model()
        body: dict[str, Any] = {
            "model": model,
            "stream": True,
            "messages": [_message(turn) for turn in history],
        }
        # Only the parameters the chat sets: a field sent as null is refused by some servers.
        sampling = {"temperature": params.temperature, "top_p": params.top_p, "max_tokens": params.max_tokens}
        body |= {name: value for name, value in (*sampling.items(), ("seed", params.seed)) if value is not None}
        try:
            async with self._completion(body) as response:
                async for line in response.content:  # one line at a time
                    event = _parse_event(line.decode())
                    if event is None:
                        continue
                    if event == "[DONE]":
                        return
                    for item in _pieces(event):
                        yield item
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("streaming from %s failed: %s", self._root, error)
            kind: UpstreamErrorKind = "timeout" if isinstance(error, TimeoutError) else "unreachable"
            raise ProviderError(f"model server failed: {_describe(error)}", kind) from None
        raise ProviderError("model server closed the stream before [DONE]", "truncated")

    @contextlib.asynccontextmanager
    async def _completion(self, body: dict[str, Any]) -> AsyncIterator[aiohttp.ClientResponse]:
        """The streaming answer to ``body``, asking for usage unless this endpoint refused that once.

        Raises:
            ProviderError: the model server refused the request.
        """
        url = f"{self._root}/chat/completions"
        if self._asks_usage:
            async with self._client().post(url, json=body | {"stream_options": {"include_usage": True}}) as response:
                if response.status == 200:
                    yield response
                    return
                detail = await _refusal(response)
                if response.status != 400 or "stream_options" not in detail:
                    raise ProviderError(f"model server answered {_said(response, detail)}", "http_error")
            log.info("%s refuses stream_options: asking it without usage from now on", self._root)
            self._asks_usage = False
        async with self._client().post(url, json=body) as response:
            if response.status != 200:
                raise ProviderError(f"model server answered {_said(response, await _refusal(response))}", "http_error")
            yield response

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _first_model(self) -> str:
        models = await self.models()
        if not models:
            raise ProviderError("the model server lists no models")
        return next((model.id for model in models if model.default), models[0].id)


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


def _parse_event(line: str) -> Any:
    """The JSON of one ``data:`` line, ``"[DONE]"``, or None for other lines."""
    if not line.startswith("data:"):
        return None  # comments (": keep-alive"), "event:" and blank lines
    payload = line[5:].strip()
    if payload == "[DONE]":
        return payload
    try:
        return json.loads(payload)
    except ValueError:
        raise ProviderError("model server sent an unreadable event", "unreadable") from None


def _pieces(event: Any) -> list[str | Usage | Finish]:
    if not isinstance(event, dict):
        return []
    if "error" in event:
        error = event["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise ProviderError(f"model error: {str(message)[:200]}", "model_error")
    items: list[str | Usage | Finish] = []
    for choice in event.get("choices") or []:
        content = (choice.get("delta") or {}).get("content")
        if content:
            items.append(content)
        if choice.get("finish_reason"):
            items.append(Finish(choice["finish_reason"]))
    # With include_usage, the last event (choices: []) has the counts; the others have null.
    usage = event.get("usage")
    if isinstance(usage, dict):
        items.append(
            Usage(
                prompt_tokens=_count(usage.get("prompt_tokens")),
                completion_tokens=_count(usage.get("completion_tokens")),
            )
        )
    return items


def _count(value: Any) -> int | None:
    """A token count as reported, or None for anything that is not one (a server's odd JSON is not ours to trust)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


async def _refusal(response: aiohttp.ClientResponse) -> str:
    """The start of the body of an answer that is not a 200 (enough to find what it names)."""
    return (await response.content.read(2000)).decode(errors="replace")


def _said(response: aiohttp.ClientResponse, detail: str) -> str:
    """``503: <the start of the refusal>``, for people."""
    return f"{response.status}: {detail[:200]}"


def _describe(error: Exception) -> str:
    """One line for people: what went wrong (the server's log has the URL)."""
    if isinstance(error, TimeoutError):
        return "the model server did not answer in time"
    if isinstance(error, aiohttp.ClientConnectorError):
        reason = os.strerror(error.os_error.errno) if error.os_error.errno else str(error.os_error)
        return f"cannot reach the model server ({reason.lower()})"
    return str(error) or type(error).__name__
