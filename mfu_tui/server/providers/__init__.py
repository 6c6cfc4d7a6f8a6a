"""Model providers behind one interface (``Provider``)."""

from __future__ import annotations

from mfu_tui.protocol import Usage
from mfu_tui.server.config import ServerConfig
from mfu_tui.server.providers.base import Finish, Provider, ProviderError, Reasoning, StreamItem


def make_provider(config: ServerConfig) -> Provider:
    """The provider named by ``config.provider`` (aiohttp is imported only for ``openai``)."""
    if config.provider == "openai":
        from mfu_tui.server.providers.openai import OpenAIProvider

        return OpenAIProvider(
            config.openai_base_url, config.openai_api_key, config.openai_model, config.upstream_idle_timeout
        )
    from mfu_tui.server.providers.demo import DemoProvider

    return DemoProvider(config.demo_words, config.demo_delay_ms)


__all__ = ["Finish", "Provider", "ProviderError", "Reasoning", "StreamItem", "Usage", "make_provider"]
