"""Users an operator deleted leave every node: their open connections are closed.

``mfu-chat admin delete-user`` runs on a connection of its own, beside the
running nodes, and reaches none of them: it records the deletion in the
database (``deleted_users``). Each node reads the deletions after the last it
saw, now and again, and closes the connections of those users with 4410 (the
client stops instead of sending its outbox again into an account just
emptied, and forgets its copy of the chats) and stops their answers running here. Through the database, not the
broker: a node without one (SQLite) is reached the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mfu_tui.server.store import Store

log = logging.getLogger(__name__)

#: The close reason the deleted user's apps show (under 123 bytes).
REASON = "the server's operator deleted this account's data"


class DeletedUsers:
    """Watches the deletions of users and has their connections on this node closed.

    Args:
        store: The node's store.
        close_user: Closes the user's connections and stops their answers on this node; how many connections.
    """

    def __init__(self, store: Store, close_user: Callable[[str], int]) -> None:
        self._store = store
        self._close_user = close_user
        #: The number of the last deletion acted on (None: not read yet).
        self._seen: int | None = None

    async def check(self) -> None:
        """Close the connections of the users deleted since the last check (the first only takes the number)."""
        try:
            last, users = await self._store.users_deleted_after(self._seen)
        except Exception:  # the store's outage: readiness reports it, and the next check asks again
            return
        self._seen = last
        for user in users:
            closed = self._close_user(user)
            log.info("%s was deleted by an operator: closed %d connection(s) of theirs", user, closed)
