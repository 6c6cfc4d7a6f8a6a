"""Readiness of a node: ``/readyz`` (``/healthz`` only says the process answers).

A node is ready when its store answers a query, its link to the other nodes
(the broker) is up, and it is not draining. The store is asked for real, with
a short timeout, but at most once every ``cache_for`` seconds whatever the
number of probes (nginx, Kubernetes, a load balancer's every node), and
probes that arrive during a check share it: probes cannot load the store.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from mfu_tui.server.hub import Hub
from mfu_tui.server.store import Store
from mfu_tui.server.store.outage import describe

log = logging.getLogger(__name__)

#: The probe's query: a chat looked up by its key. No token can name the empty user, so it never exists.
PROBE_USER = ""
PROBE_CHAT = "readyz-probe"


@dataclasses.dataclass(frozen=True)
class ReadyReport:
    """What ``/readyz`` answers."""

    store_problem: str | None
    """Why the store did not answer the last check (None: it did)."""

    broker_linked: bool
    """False while the link to the other nodes is broken."""

    draining: bool
    """True once the node stops taking new connections."""

    broker_state: str = "ok"
    """What ``broker`` says while the link is up: ``ok`` with a broker, else how the node does without one."""

    @property
    def ready(self) -> bool:
        """Whether new connections should come here."""
        return self.store_problem is None and self.broker_linked and not self.draining

    def as_json(self) -> dict[str, Any]:
        """The body of ``/readyz``."""
        return {
            "ready": self.ready,
            "store": self.store_problem or "ok",
            "broker": self._broker(),
            "draining": self.draining,
        }

    def _broker(self) -> str:
        return self.broker_state if self.broker_linked else "lost the link to the other nodes"


class Readiness:
    """Checks the store (cached), the broker link and draining for ``/readyz``.

    Args:
        store: The node's store, asked through its public interface.
        hub: The node's hub (``linked``).
        timeout: Seconds the store has to answer a check.
        cache_for: Seconds a check's result is reused.
        on_store_error: Called once per failed check (the metrics count it).
        broker_state: What ``broker`` says while the link to the other nodes is up: ``ok`` with a broker;
            without one, a single node, workers linked to each other, or the warning of ``UnlinkedNodes``
            (which does not make the node unready).
    """

    def __init__(
        self,
        store: Store,
        hub: Hub,
        *,
        timeout: float = 1.0,
        cache_for: float = 1.0,
        on_store_error: Callable[[], None] = lambda: None,
        broker_state: Callable[[], str] = lambda: "ok",
    ) -> None:
        self._store = store
        self._hub = hub
        self._timeout = timeout
        self._cache_for = cache_for
        self._on_store_error = on_store_error
        self._broker_state = broker_state
        #: Set once the node stops taking new connections (stopping, or draining).
        self.draining = False
        self._store_problem: str | None = None
        self._checked_at = -float("inf")
        self._check: asyncio.Task[None] | None = None

    @property
    def last(self) -> ReadyReport:
        """The report as of the last store check, without checking again."""
        return ReadyReport(self._store_problem, self._hub.linked, self.draining, self._broker_state())

    async def report(self) -> ReadyReport:
        """The node's readiness, checking the store unless it was checked less than ``cache_for`` ago."""
        if time.monotonic() - self._checked_at >= self._cache_for:
            if self._check is None:
                self._check = asyncio.get_running_loop().create_task(self._check_store())
            check = self._check
            await asyncio.shield(check)  # a probe that hangs up must not cancel the others' check
        return self.last

    async def _check_store(self) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self._store.chat(PROBE_USER, PROBE_CHAT)
        except Exception as error:  # whatever the driver raises: the store cannot serve
            problem = f"the store does not answer: {describe(error)}"
            # An outage is logged by the store's OutageLog (as it starts, and as the next commit ends it).
            if not self._store.outages.failed("readiness checks failed", error) and self._store_problem is None:
                log.error("%s; /readyz answers 503 until it does", problem)
            self._store_problem = problem
            self._on_store_error()
        else:
            self._store_problem = None
        finally:
            self._checked_at = time.monotonic()
            self._check = None
