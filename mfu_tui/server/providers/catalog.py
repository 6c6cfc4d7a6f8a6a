"""Which models a message may name: the provider's list, cached.

A ``message`` naming a model the server cannot use is refused at once with
the models it can use, instead of being stored on the chat and failing at
the model server. The list is fetched again when it is older than ``ttl`` or
when a message names a model not in it (a model pulled into Ollama a moment
ago must work), but at most once every ``min_refresh`` seconds, so a client
naming unknown models cannot make the server hammer the model server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from mfu_tui.server.providers.base import Provider, ProviderError


class ModelCatalog:
    """The ids of the provider's models, refreshed lazily and coalesced.

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
        self._ids: list[str] | None = None
        self._fetched_at = -float("inf")
        self._fetching: asyncio.Task[None] | None = None

    async def unknown(self, model_id: str) -> list[str] | None:
        """``None`` if ``model_id`` may be used, else the ids that may.

        When the list cannot be fetched the model is let through: the answer
        then fails with the model server's own error, which says more.
        """
        age = self._clock() - self._fetched_at
        stale = self._ids is None or age > self._ttl or model_id not in self._ids
        if stale and age >= self._min_refresh:
            await self._refresh()
        if self._ids is None or model_id in self._ids:
            return None
        return list(self._ids)

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
            self._ids = [model.id for model in await self._provider.models()]
        except ProviderError:
            self._ids = None
