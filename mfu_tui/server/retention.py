"""Retention: chats idle for longer than ``--max-chat-age`` days are deleted, in the background.

Every ``retention_interval`` seconds (and once at start) the node deletes the
chats last updated before the cut-off, a batch at a time, as ``delete_chat``
would, and tells their owners' connections on every node that they are gone.
A chat with an answer streaming is never deleted; with several nodes on one
PostgreSQL database, one node prunes at a time (an advisory lock), so the
others find nothing to do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from mfu_tui.protocol import ChatSummary
from mfu_tui.server.store import Store

log = logging.getLogger(__name__)

#: Chats deleted per transaction: a batch never holds the writer for long.
BATCH = 100

SECONDS_PER_DAY = 86_400

#: Tells a user's connections, on every node, that a chat is gone (``Handlers.announce``).
Announce = Callable[[str, ChatSummary], None]


class Retention:
    """Deletes the chats idle for longer than ``max_age_days``.

    Args:
        store: Where the chats are.
        announce: Called with each deleted chat and its owner.
        max_age_days: Days after its last activity (a message, an answer ending, a rename) a chat is deleted.
        interval: Seconds between two runs.
        on_error: Called when a run fails (it is logged, and tried again at the next).
    """

    def __init__(
        self, store: Store, announce: Announce, max_age_days: float, interval: float, on_error: Callable[[], None]
    ) -> None:
        self.store = store
        self.announce = announce
        self.on_error = on_error
        self.max_age = max_age_days * SECONDS_PER_DAY
        self.interval = interval

    async def run_forever(self) -> None:
        """Prune now, then every ``interval`` seconds, until cancelled."""
        while True:
            try:
                await self.prune()
            except Exception as error:
                if not self.store.outages.failed("retention runs failed", error):
                    log.exception("deleting old chats failed; trying again in %g s", self.interval)
                self.on_error()
            await asyncio.sleep(self.interval)

    async def prune(self) -> int:
        """Delete the chats idle for too long now; how many."""
        cutoff = time.time() - self.max_age
        deleted = 0
        while True:
            batch = await self.store.prune_chats(cutoff, BATCH)
            for owner, chat in batch:
                self.announce(owner, chat)
            deleted += len(batch)
            if len(batch) < BATCH:
                break
        if deleted:
            log.info("deleted %d chat(s) idle for more than %g days", deleted, self.max_age / SECONDS_PER_DAY)
        return deleted
