"""The provider's models, cached: what ``list_models`` answers, what a message may name, and which answers it.

A ``message`` naming a model the server cannot use is refused at once with
the models it can use, instead of being stored on the chat and failing at
the model server. The list is fetched again when it is older than ``ttl`` or
when a message names a model not in it (a model pulled into Ollama a moment
ago must work), but at most once every ``min_refresh`` seconds, and all who
ask meanwhile wait for that one fetch: however many ``list_models`` frames
or unknown models clients send, the model server sees one request at a time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from mfu_tui.protocol import ModelInfo
from mfu_tui.server.providers.base import Provider, ProviderError


class ModelCatalog:
    """The provider's models, refreshed lazily, one fetch at a time for everyone.

    Args:
        provider: Whose models to list.
        ttl: Seconds a fetched list is trusted.
        min_refresh: Fewest seconds between two fetches.
        clock: Monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        provider: Provider,
        *,
        ttl: float = 60.0,
        min_refresh: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._provider = provider
        self._ttl = ttl
        self._min_refresh = min_refresh
        self._clock = clock
        self._models: list[ModelInfo] | None = None
        self._error: ProviderError | None = None
        self._fetched_at = -float("inf")
        self._fetching: asyncio.Task[None] | None = None

    async def models(self) -> list[ModelInfo]:
        """The provider's models, fetched at most every ``min_refresh`` seconds.

        Raises:
            ProviderError: the list cannot be fetched (the last attempt failed).
        """
        if self._models is None or self._clock() - self._fetched_at > self._ttl:
            await self._refresh_if_due()
        if self._models is None:
            raise self._error or ProviderError("cannot list models")
        return list(self._models)

    async def unknown(self, model_id: str) -> list[str] | None:
        """``None`` if ``model_id`` may be used, else the ids that may.

        When the list cannot be fetched the model is let through: the answer
        then fails with the model server's own error, which says more.
        """
        if model_id not in self._ids() or self._clock() - self._fetched_at > self._ttl:
            await self._refresh_if_due()
        ids = self._ids()
        return None if self._models is None or model_id in ids else ids

    async def model_for(self, model_id: str | None) -> str:
        """The model that answers a message naming ``model_id``: that one, the provider's
        ``default_model``, or the default of the list.

        From the cached list: a message naming no model asks the model server
        nothing (each asked it for its list, a round trip before the answer).

        Raises:
            ProviderError: no model is named and the list cannot be fetched, or is empty.
        """
        named = model_id or self._provider.default_model
        if named:
            return named
        models = await self.models()
        if not models:
            raise ProviderError("the model server lists no models")
        return next((model.id for model in models if model.default), models[0].id)

    def _ids(self) -> list[str]:
        return [model.id for model in self._models or ()]

    async def _refresh_if_due(self) -> None:
        """Fetch unless one did lately; join a fetch under way whatever its age."""
        if self._fetching is not None or self._clock() - self._fetched_at >= self._min_refresh:
            await self._refresh()

    async def _refresh(self) -> None:
        if self._fetching is None:
            self._fetching = asyncio.get_running_loop().create_task(self._fetch())
        fetching = self._fetching
        try:
            await asyncio.shield(fetching)
        finally:
            if self._fetching is fetching and fetching.done():
                self._fetching = None

    async def _fetch(self) -> None:
        self._fetched_at = self._clock()
        try:
            self._models, self._error = await self._provider.models(), None
        except ProviderError as error:
            self._models, self._error = None, error
