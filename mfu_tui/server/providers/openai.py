"""Any OpenAI-compatible endpoint: OpenAI, Ollama, vLLM, llama.cpp, LM Studio, gateways.

Streams ``POST {base}/v1/chat/completions`` with ``stream: true`` and reads
the server-sent events (``data: {...}`` lines, ``data: [DONE]`` at the end).
Models come from ``GET {base}/v1/models``. httpx is imported here only, so
``mfu-chat serve --provider demo`` never loads it.

Cancelling the task that iterates ``stream`` leaves the ``async with``
block of the streaming response, which closes the HTTP connection: the
upstream sees the client go away and stops generating (and billing).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from mfu_tui.protocol import ModelInfo, Turn
from mfu_tui.server.providers.base import Finish, Provider, ProviderError


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
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # One HTTP connection per running answer. httpx's default pool holds 100,
        # so the 101st concurrent answer would wait for another to end.
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=100)
        self._client = httpx.AsyncClient(base_url=_api_root(base_url), headers=headers, timeout=timeout, limits=limits)
        self._default_model = default_model

    async def models(self) -> list[ModelInfo]:
        try:
            response = await self._client.get("/models")
            response.raise_for_status()
            listed = [entry["id"] for entry in response.json()["data"]]
        except (httpx.HTTPError, KeyError, TypeError, ValueError) as error:
            raise ProviderError(f"cannot list models: {_describe(error)}") from None
        default = self._default_model or (listed[0] if listed else None)
        return [ModelInfo(id=model, name=model, provider=self.name, default=model == default) for model in listed]

    async def stream(self, model_id: str | None, history: list[Turn]) -> AsyncIterator[str | Finish]:
        model = model_id or self._default_model or await self._first_model()
        body = {
            "model": model,
            "stream": True,
            "messages": [{"role": turn.role, "content": turn.content} for turn in history],
        }
        try:
            async with self._client.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code != 200:
                    detail = (await response.aread())[:200].decode(errors="replace")
                    raise ProviderError(f"model server answered {response.status_code}: {detail}")
                async for line in response.aiter_lines():
                    event = _parse_event(line)
                    if event is None:
                        continue
                    if event == "[DONE]":
                        return
                    for item in _pieces(event):
                        yield item
        except httpx.HTTPError as error:
            raise ProviderError(f"model server failed: {_describe(error)}") from None
        raise ProviderError("model server closed the stream before [DONE]")

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _first_model(self) -> str:
        models = await self.models()
        if not models:
            raise ProviderError("the model server lists no models")
        return next((model.id for model in models if model.default), models[0].id)


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
        raise ProviderError("model server sent an unreadable event") from None


def _pieces(event: Any) -> list[str | Finish]:
    if isinstance(event, dict) and "error" in event:
        error = event["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise ProviderError(f"model error: {str(message)[:200]}")
    items: list[str | Finish] = []
    for choice in event.get("choices") or [] if isinstance(event, dict) else []:
        content = (choice.get("delta") or {}).get("content")
        if content:
            items.append(content)
        if choice.get("finish_reason"):
            items.append(Finish(choice["finish_reason"]))
    return items


def _describe(error: Exception) -> str:
    return str(error) or type(error).__name__
