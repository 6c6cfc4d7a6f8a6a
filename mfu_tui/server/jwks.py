"""An identity provider's public keys, from its JWKS URL: fetched at start, kept, refreshed.

A campus identity provider signs tokens with a private key (RS256, ES256)
and publishes the public halves as a JSON Web Key Set. The server keeps the
set in memory: a token is checked without a request to the provider, and
the provider being down for a while stops no one who has a token.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import jwt

from mfu_tui.redaction import redact_password
from mfu_tui.server.auth import PUBLIC_ALGORITHMS

log = logging.getLogger(__name__)

#: Bytes of a key set read at most: real ones are a few KiB.
MAX_KEY_SET_BYTES = 1 << 20


class ProviderKeys:
    """The public keys of the identity provider at ``url``, by key id.

    Fetched when the server starts, again every ``refresh`` seconds, and when
    a token names a key id not known yet (the provider rotated its keys), at
    most once per ``retry`` seconds: tokens with made-up key ids cannot make
    the server hammer the provider. A failed fetch keeps the keys known.

    Args:
        url: The provider's JWKS URL.
        refresh: Seconds between fetches.
        retry: Seconds at least between two fetches asked for by unknown key ids.
        timeout: Seconds a fetch may take.
        clock: Monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        url: str,
        *,
        refresh: float = 3600.0,
        retry: float = 30.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.refresh = refresh
        self.retry = retry
        self.timeout = timeout
        self._clock = clock
        #: The usable keys of the last fetch that worked, by key id.
        self.keys: dict[str, jwt.PyJWK] = {}
        #: When a token's unknown key id last made us fetch (the periodic fetches do not count).
        self._asked_at = -float("inf")
        self._fetching: asyncio.Task[None] | None = None
        self._refreshing: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Fetch the keys, then keep them fresh; a failure is logged and the provider's tokens wait for a fetch."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        await self._fetch()
        self._refreshing = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def close(self) -> None:
        for task in (self._refreshing, self._fetching):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._session is not None:
            await self._session.close()

    async def know(self, key_id: str | None) -> None:
        """Know ``key_id`` if the provider has it: fetch again for a new one, at most once per ``retry``."""
        if key_id is None or key_id in self.keys or self._clock() - self._asked_at < self.retry:
            return
        self._asked_at = self._clock()
        await self._fetch()

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.refresh)
            await self._fetch()

    async def _fetch(self) -> None:
        """One fetch at a time: connections that arrive meanwhile wait for the same one."""
        if self._fetching is None or self._fetching.done():
            self._fetching = asyncio.get_running_loop().create_task(self._fetch_once())
        await asyncio.shield(self._fetching)

    async def _fetch_once(self) -> None:
        assert self._session is not None
        try:
            async with self._session.get(self.url) as response:
                if response.status != 200:
                    raise ValueError(f"HTTP {response.status}")
                body = await response.content.read(MAX_KEY_SET_BYTES + 1)
            if len(body) > MAX_KEY_SET_BYTES:
                raise ValueError(f"more than {MAX_KEY_SET_BYTES} bytes")
            keys = usable_keys(json.loads(body))
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            log.warning("could not fetch the identity provider's keys from %s: %s", redact_password(self.url), error)
            return
        if set(keys) != set(self.keys):
            log.info("identity provider's keys: %s", ", ".join(sorted(keys)) or "none usable")
        self.keys = keys


def usable_keys(key_set: Any) -> dict[str, jwt.PyJWK]:
    """The keys of a JWKS document that can check tokens: a key id, a signing use, an accepted algorithm.

    Raises:
        ValueError: the document is not a key set.
    """
    if not isinstance(key_set, dict) or not isinstance(key_set.get("keys"), list):
        raise ValueError("not a JSON Web Key Set (no 'keys' list)")
    usable: dict[str, jwt.PyJWK] = {}
    for entry in key_set["keys"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str) or entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(entry)
        except jwt.PyJWTError:
            continue  # a key type this server cannot use (or a secret, kty "oct": never from a public URL)
        if key.algorithm_name in PUBLIC_ALGORITHMS:
            usable[entry["kid"]] = key
    return usable
