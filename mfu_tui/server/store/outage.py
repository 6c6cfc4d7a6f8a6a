"""Telling a database that cannot be reached or written right now from a bug.

A frame that failed because of an outage is refused with ``unavailable``
(the client sends it again later); any other failure is ``internal``.
"""

from __future__ import annotations

import sqlite3
import sys

#: SQLite's primary result codes of a database that cannot be used now (busy, locked, read-only,
#: an I/O error, full, cannot be opened), not of a wrong statement.
_SQLITE_OUTAGES = frozenset({5, 6, 8, 10, 13, 14})


def is_outage(error: BaseException) -> bool:
    """True if ``error`` says the database is out of reach or refuses writes for now: a retry may work."""
    if isinstance(error, (OSError, TimeoutError)):
        return True  # the connection, the pool's wait, the disk
    if isinstance(error, sqlite3.OperationalError):
        code = getattr(error, "sqlite_errorcode", None)
        return code is not None and code & 0xFF in _SQLITE_OUTAGES
    asyncpg = sys.modules.get("asyncpg")  # imported only with a PostgreSQL store
    if asyncpg is not None:
        gone = (
            asyncpg.PostgresConnectionError,  # class 08: the connection failed
            asyncpg.CannotConnectNowError,  # 57P03: starting up or shutting down
            asyncpg.AdminShutdownError,  # 57P01
            asyncpg.TooManyConnectionsError,  # 53300
        )
        return isinstance(error, gone)
    return False
