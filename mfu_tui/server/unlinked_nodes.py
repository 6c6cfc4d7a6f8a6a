"""A node without a broker on a database other nodes use: their answers never reach its clients.

The nodes reach each other's clients through the broker (``--broker``): without
one, a node sends its clients only what it generates itself. That is right for
one node alone, and wrong once another node uses the same PostgreSQL database:
a user connected here does not see the answer their other terminal, served by
another node, is streaming, nor its new chats, until they reload. Nothing
fails, so nothing else would say so.

``UnlinkedNodes`` asks the store which other nodes use the database
(``Store.other_nodes``: PostgreSQL's own list of connections, which name
their node, and the live leases of streaming replies), at start and then
now and again, says so in one log line whenever that changes, and keeps the
names for ``/readyz``.
"""

from __future__ import annotations

import logging

from mfu_tui.server.store import Store

log = logging.getLogger(__name__)


class UnlinkedNodes:
    """The other nodes on this node's database while it has no broker.

    Args:
        store: The node's store.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        #: The other nodes seen at the last check, by name (empty: none, or not checked yet).
        self.seen: tuple[str, ...] = ()

    async def check(self) -> None:
        """Ask the store again; one log line if the answer changed."""
        try:
            nodes = tuple(await self._store.other_nodes())
        except Exception:  # the store's outage: readiness reports it, and the next check asks again
            return
        if nodes and nodes != self.seen:
            log.warning(
                "no broker (--broker), but other nodes use this database (%s): answers they generate do not"
                " reach this node's clients, nor this node's theirs; give every node the same --broker",
                ", ".join(nodes),
            )
        elif self.seen and not nodes:
            log.info("no other node uses this database any more")
        self.seen = nodes

    def warning(self) -> str | None:
        """What ``/readyz`` says of it, None while no other node is seen."""
        if not self.seen:
            return None
        return (
            f"none, but other nodes use this database ({', '.join(self.seen)}): their answers do not"
            " reach this node's clients; give every node the same --broker"
        )
