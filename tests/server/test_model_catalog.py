"""ModelCatalog: which models a message may name, from a real OpenAI-compatible wire, with bounded upstream calls."""

from __future__ import annotations

import asyncio

from mfu_tui.server.providers.catalog import ModelCatalog
from mfu_tui.server.providers.openai import OpenAIProvider
from tests.server.fake_openai import FakeOpenAI
from tests.support.programs import free_port


class Clock:
    """Monotonic seconds the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_known_models_pass_unknown_ones_get_the_list_and_misses_refetch_at_most_every_few_seconds():
    clock = Clock()
    async with FakeOpenAI() as fake:
        provider = OpenAIProvider(fake.base_url)
        catalog = ModelCatalog(provider, ttl=60, min_refresh=5, clock=clock)
        try:
            assert await catalog.unknown("fake-small") is None
            assert await catalog.unknown("nope") == ["fake-small", "fake-large"]
            assert await catalog.unknown("nope") == ["fake-small", "fake-large"]
            assert fake.model_lists == 1  # misses within min_refresh ask nobody
            # A model pulled a moment ago is found on the next miss after min_refresh.
            fake.models.append("fake-new")
            clock.now += 6
            assert await catalog.unknown("fake-new") is None
            assert fake.model_lists == 2
            # Hits never refetch until the list is older than ttl.
            clock.now += 30
            assert await catalog.unknown("fake-large") is None
            assert fake.model_lists == 2
            clock.now += 31
            assert await catalog.unknown("fake-large") is None
            assert fake.model_lists == 3
        finally:
            await provider.aclose()


async def test_concurrent_checks_share_one_fetch():
    async with FakeOpenAI() as fake:
        fake.models_open.clear()
        provider = OpenAIProvider(fake.base_url)
        catalog = ModelCatalog(provider)
        try:
            checks = [asyncio.create_task(catalog.unknown(f"model-{n}")) for n in range(10)]
            await fake.models_asked.wait()  # the one fetch is under way, and held
            fake.models_open.set()
            answers = await asyncio.gather(*checks)
        finally:
            await provider.aclose()
    assert answers == [["fake-small", "fake-large"]] * 10
    assert fake.model_lists == 1


async def test_a_model_server_that_cannot_list_lets_the_model_through():
    provider = OpenAIProvider(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    try:
        assert await ModelCatalog(provider).unknown("anything") is None
    finally:
        await provider.aclose()
