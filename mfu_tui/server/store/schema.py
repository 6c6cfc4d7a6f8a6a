"""Schema versions as a node and ``mfu-chat migrate`` see them: what was found, what this code knows.

A node migrates an older database as it starts (or ``mfu-chat migrate``
does it beforehand); a database newer than the code, migrated by a newer
release, is refused: this code could misread what that release stores.
"""

from __future__ import annotations

import dataclasses


class SchemaTooNew(OSError):
    """The database's schema is newer than this code knows; the message is one line saying what to do."""

    def __init__(self, found: int, known: int) -> None:
        super().__init__(
            f"the database has schema version {found}, newer than this mfu-chat knows ({known}): "
            "run the mfu-chat release that migrated it (or a newer one), or restore a backup made before it"
        )
        self.found = found
        self.known = known


class SchemaTooOld(OSError):
    """An administration command found a database its migrations have not reached; one line saying what to do."""

    def __init__(self, found: int, known: int) -> None:
        super().__init__(
            f"the database has schema version {found}, older than this mfu-chat's ({known}): "
            "run `mfu-chat migrate` first (with the same --db or MFU_DATABASE_URL)"
        )


@dataclasses.dataclass(frozen=True)
class Migrated:
    """What migrating a database did."""

    #: The schema version found (0: an empty database).
    before: int
    #: The schema version it has now (this code's).
    after: int


def check_not_newer(found: int, known: int) -> None:
    """Refuse a schema this code does not know.

    Raises:
        SchemaTooNew: ``found`` is newer than ``known``.
    """
    if found > known:
        raise SchemaTooNew(found, known)


def check_current(found: int, known: int) -> None:
    """Refuse any schema but this code's (administration commands never migrate by themselves).

    Raises:
        SchemaTooNew: ``found`` is newer than ``known``.
        SchemaTooOld: ``found`` is older.
    """
    check_not_newer(found, known)
    if found < known:
        raise SchemaTooOld(found, known)
