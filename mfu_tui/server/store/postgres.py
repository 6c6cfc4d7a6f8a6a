"""The PostgreSQL store: the store algorithm (``sql_store``) on an asyncpg pool, its writer a task.

Selected by ``mfu-chat serve --db postgresql://...`` (or ``postgres://``).
asyncpg is imported in ``open()`` only, so SQLite users never load it; it
comes with the ``postgres`` extra (``pip install 'mfu-chat[postgres]'``).

The writer task commits each batch on a connection from the pool; reads
take another and run beside it. ``PostgresDb`` numbers the algorithm's
``?`` placeholders (``$1``, ``$2``, ...) as asyncpg wants them.

Migrations are a numbered list of SQL steps; ``open()`` applies the ones a
database lacks, recorded in ``schema_version``, under an advisory lock so
several servers starting at once do not race.

Several nodes share one database. Each streaming reply records the node
generating it and a lease (``lease_until``, in the database's clock, so the
nodes' clocks do not matter), which that node renews; when a node dies, any
other node ends its replies once their lease expires (``reap_expired``). A
partial unique index keeps one streaming reply per chat, and the unique index
on ``client_message_id`` makes a message sent to two nodes at once stored once.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from mfu_tui.redaction import redact_password
from mfu_tui.server.store import tables
from mfu_tui.server.store.base import Interrupted, StoreUnavailable
from mfu_tui.server.store.batch import ChunkWrite, Outcome, Write
from mfu_tui.server.store.dialect import Db, Dialect
from mfu_tui.server.store.rows import new_id
from mfu_tui.server.store.schema import Migrated, check_not_newer
from mfu_tui.server.store.search import tsquery
from mfu_tui.server.store.sql_store import SqlStore

if TYPE_CHECKING:
    # asyncpg ships neither type stubs nor a py.typed marker: its names are Any to mypy.
    import asyncpg  # type: ignore[import-untyped]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: URL schemes that select this store.
URL_SCHEMES = ("postgresql://", "postgres://")

#: ``(version, SQL)``, applied in order; never edit a released step, add a new one.
MIGRATIONS: list[tuple[int, str]] = [
    (1, tables.conversations(tables.POSTGRES)),
    (
        2,
        """
        -- Streaming replies: the node generating it, and until when that claim holds.
        ALTER TABLE messages ADD COLUMN node_id TEXT;
        ALTER TABLE messages ADD COLUMN lease_until DOUBLE PRECISION;
        -- One answer generates in a chat at a time, whichever node runs it.
        CREATE UNIQUE INDEX one_streaming_reply_per_chat ON messages (chat_id) WHERE status = 'streaming';
        """,
    ),
    (
        3,
        tables.edits(tables.POSTGRES)
        + """
        CREATE INDEX edits_of_chat ON edits (chat_id);
        """,
    ),
    (
        4,
        """
        -- Bytes of text each chat stores (its messages' content, and the edits kept for
        -- idempotency), so a user's usage is a sum over their chats, not over every message.
        -- A trigger keeps it, in the transaction of every write, whichever code does the write;
        -- it updates the chat's row, which those writes update anyway: no new lock.
        ALTER TABLE chats ADD COLUMN bytes BIGINT NOT NULL DEFAULT 0;
        UPDATE chats SET bytes =
            (SELECT COALESCE(SUM(octet_length(content)), 0) FROM messages WHERE chat_id = chats.id)
            + (SELECT COALESCE(SUM(octet_length(content)), 0) FROM edits WHERE chat_id = chats.id);
        CREATE FUNCTION count_chat_bytes() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            delta BIGINT := 0;
            chat TEXT;
        BEGIN
            IF TG_OP <> 'DELETE' THEN
                delta := octet_length(NEW.content);
                chat := NEW.chat_id;
            END IF;
            IF TG_OP <> 'INSERT' THEN
                delta := delta - octet_length(OLD.content);
                chat := OLD.chat_id;
            END IF;
            IF delta <> 0 THEN  -- an empty reply inserted, a status change: no write
                UPDATE chats SET bytes = bytes + delta WHERE id = chat;
            END IF;
            RETURN NULL;
        END
        $$;
        CREATE TRIGGER message_bytes AFTER INSERT OR DELETE OR UPDATE OF content ON messages
            FOR EACH ROW EXECUTE FUNCTION count_chat_bytes();
        CREATE TRIGGER edit_bytes AFTER INSERT OR DELETE OR UPDATE OF content ON edits
            FOR EACH ROW EXECUTE FUNCTION count_chat_bytes();
        """,
    ),
    (
        5,
        """
        -- Full-text search over the first 100,000 characters of each message (search.INDEXED_CHARS).
        -- A generated column: the database keeps it in step in the statement of every write (an
        -- answer's text is indexed when finish_message stores it), and adding it indexes the
        -- messages already stored. 'simple': words as typed, lower-cased, no stemming, as in SQLite.
        ALTER TABLE messages ADD COLUMN search tsvector
            GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, left(content, 100000))) STORED;
        CREATE INDEX message_search ON messages USING GIN (search);
        """,
    ),
    *zip((6, 8, 9, 10), tables.released_together(tables.POSTGRES)),
    (
        11,
        """
        -- A chat's system prompt counts toward its bytes like its messages: otherwise a user could
        -- hold 20,000 characters per chat outside the storage quota. A BEFORE trigger sets the
        -- row's own count in the same write (an AFTER one would update the row a second time).
        UPDATE chats SET bytes = bytes + octet_length(system_prompt) WHERE system_prompt IS NOT NULL;
        CREATE FUNCTION count_prompt_bytes() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.bytes := NEW.bytes + COALESCE(octet_length(NEW.system_prompt), 0);
            IF TG_OP = 'UPDATE' THEN
                NEW.bytes := NEW.bytes - COALESCE(octet_length(OLD.system_prompt), 0);
            END IF;
            RETURN NEW;
        END
        $$;
        CREATE TRIGGER prompt_bytes BEFORE INSERT OR UPDATE OF system_prompt ON chats
            FOR EACH ROW EXECUTE FUNCTION count_prompt_bytes();
        """,
    ),
    (
        12,
        """
        -- Fencing: each node process takes a new token at start and marks the replies it claims
        -- with it; a chunk is stored, and an answer ended, only while the reply is streaming under
        -- the writer's token, checked in the statement that writes it (see _INSERT_FENCED_CHUNKS).
        CREATE SEQUENCE lease_tokens;
        ALTER TABLE messages ADD COLUMN lease_token BIGINT;
        """,
    ),
    (13, tables.reasoning(tables.POSTGRES)),
    (
        14,
        """
        -- An answer's reasoning is stored text too, and counts toward its chat's bytes like its
        -- content: otherwise a reasoning model could fill the disk outside the storage quota.
        -- Messages get a function of their own (edits, which have no reasoning, keep
        -- count_chat_bytes); dropping the trigger first locks messages, so no write lands between
        -- the new trigger and the recount of every chat from what it holds (the answers stored
        -- since migration 13 had their reasoning uncounted).
        DROP TRIGGER message_bytes ON messages;
        CREATE FUNCTION count_message_bytes() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            delta BIGINT := 0;
            chat TEXT;
        BEGIN
            IF TG_OP <> 'DELETE' THEN
                delta := octet_length(NEW.content) + octet_length(NEW.reasoning);
                chat := NEW.chat_id;
            END IF;
            IF TG_OP <> 'INSERT' THEN
                delta := delta - octet_length(OLD.content) - octet_length(OLD.reasoning);
                chat := OLD.chat_id;
            END IF;
            IF delta <> 0 THEN  -- an empty reply inserted, a status change: no write
                UPDATE chats SET bytes = bytes + delta WHERE id = chat;
            END IF;
            RETURN NULL;
        END
        $$;
        CREATE TRIGGER message_bytes AFTER INSERT OR DELETE OR UPDATE OF content, reasoning ON messages
            FOR EACH ROW EXECUTE FUNCTION count_message_bytes();
        UPDATE chats SET bytes =
            (SELECT COALESCE(SUM(octet_length(content) + octet_length(reasoning)), 0)
             FROM messages WHERE chat_id = chats.id)
            + (SELECT COALESCE(SUM(octet_length(content)), 0) FROM edits WHERE chat_id = chats.id)
            + COALESCE(octet_length(system_prompt), 0);
        """,
    ),
    (15, tables.deleted_users(tables.POSTGRES)),
]

SCHEMA_VERSION = MIGRATIONS[-1][0]

#: The database's clock, in seconds since the epoch: leases use it, not the nodes' clocks.
_DB_NOW = "extract(epoch from clock_timestamp())"

#: The chunks of one commit, each stored only if its reply still streams under this node's token.
#: ``FOR KEY SHARE`` holds the reply's row until the commit: a reaper ending it (``FOR UPDATE SKIP
#: LOCKED``) skips it meanwhile, and one that got there first makes this wait, re-read the row,
#: and store nothing. So no chunk is ever stored after its answer's end. The weakest lock that
#: does it: a lease renewal (an update of no key) goes on beside it instead of waiting.
_INSERT_FENCED_CHUNKS = (
    "INSERT INTO chunks (message_id, seq, content, reasoning)"
    " SELECT chunk.message_id, chunk.seq, chunk.content, chunk.reasoning"
    " FROM unnest(?::text[], ?::int[], ?::text[], ?::boolean[]) AS chunk (message_id, seq, content, reasoning)"
    " WHERE EXISTS (SELECT 1 FROM messages WHERE messages.id = chunk.message_id"
    " AND messages.status = 'streaming' AND messages.lease_token = ? FOR KEY SHARE)"
    " RETURNING message_id, seq"
)

#: Renewing this node's leases (by token, not node name: a stalled process of a node restarted
#: under the same name renews nothing). The replies no other transaction holds, the ids of those renewed:
_RENEW_FREE_LEASES = (
    f"UPDATE messages SET lease_until = {_DB_NOW} + ? WHERE id IN (SELECT id FROM messages"
    " WHERE lease_token = ? AND status = 'streaming' FOR NO KEY UPDATE SKIP LOCKED) RETURNING id"
)
#: The other replies streaming under the token, to renew one at a time:
_STREAMING_BESIDES = "SELECT id FROM messages WHERE lease_token = ? AND status = 'streaming' AND NOT (id = ANY(?))"
_RENEW_ONE_LEASE = (
    f"UPDATE messages SET lease_until = {_DB_NOW} + ? WHERE id = ? AND lease_token = ? AND status = 'streaming'"
)

#: How a node's connections name themselves to PostgreSQL (``application_name``), its node id after it:
#: what ``other_nodes`` looks for in ``pg_stat_activity``.
APPLICATION_NAME = "mfu-chat node "
#: The longest ``application_name`` PostgreSQL keeps (NAMEDATALEN - 1 bytes; it cuts a longer one).
_NAME_BYTES = 63

#: The nodes using the database besides this one: those with a connection open (by the
#: ``application_name`` their pools set) and those holding a live lease on a streaming reply.
_OTHER_NODES = (
    "SELECT substr(application_name, ?) FROM pg_stat_activity"
    " WHERE datname = current_database() AND starts_with(application_name, ?) AND application_name <> ?"
    " UNION"
    f" SELECT node_id FROM messages WHERE status = 'streaming' AND lease_until > {_DB_NOW} AND node_id <> ?"
)

#: Key of the advisory lock held while migrating ("mfu" in ASCII).
_MIGRATION_LOCK = 0x6D6675
#: Key of the advisory lock held while pruning old chats (``--max-chat-age``): one node at a time.
_RETENTION_LOCK = 0x6D667572

_NEEDS_ASYNCPG = "a postgresql:// database needs asyncpg: pip install 'mfu-chat[postgres]'"

_SEARCH = (
    "SELECT messages.id, messages.chat_id, chats.title, messages.role,"
    " left(messages.content, ?), messages.created_at"
    " FROM messages JOIN chats ON chats.id = messages.chat_id"
    " WHERE messages.search @@ to_tsquery('simple', ?) AND messages.n < ? AND messages.owner = ?"
    " ORDER BY messages.n DESC LIMIT ?"
)


def is_postgres_url(location: object) -> bool:
    """True if ``--db`` names a PostgreSQL database rather than a SQLite file."""
    return isinstance(location, str) and location.startswith(URL_SCHEMES)


def _violated_index(error: Exception) -> str | None:
    """The unique index ``error`` violates, if it is a unique violation (SQLSTATE 23505)."""
    if getattr(error, "sqlstate", None) == "23505":
        return getattr(error, "constraint_name", None)
    return None


@functools.lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """``sql`` with its ``?`` placeholders numbered ``$1``, ``$2``, ... (none stands inside a literal)."""
    first, *rest = sql.split("?")
    return first + "".join(f"${n}{piece}" for n, piece in enumerate(rest, start=1))


class PostgresDb:
    """A ``Db`` on an asyncpg connection."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await self._connection.fetch(numbered(sql), *args)]

    async def fetchrow(self, sql: str, *args: Any) -> tuple[Any, ...] | None:
        row = await self._connection.fetchrow(numbered(sql), *args)
        return None if row is None else tuple(row)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._connection.fetchval(numbered(sql), *args)

    async def execute(self, sql: str, *args: Any) -> int:
        status = await self._connection.execute(numbered(sql), *args)
        count = status.rsplit(" ", 1)[-1]  # "DELETE 42", "INSERT 0 1"
        return int(count) if count.isdigit() else 0

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        await self._connection.executemany(numbered(sql), rows)

    def transaction(self) -> AbstractAsyncContextManager[None]:
        return self._connection.transaction()  # type: ignore[no-any-return]

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        # asyncpg makes a transaction inside a transaction a savepoint.
        return self._connection.transaction()  # type: ignore[no-any-return]

    def snapshot(self) -> AbstractAsyncContextManager[None]:
        return self._connection.transaction(isolation="repeatable_read", readonly=True)  # type: ignore[no-any-return]


class PostgresStore(SqlStore):
    """``Store`` on a PostgreSQL database.

    Args:
        url: ``postgresql://user[:password]@host[:port]/database``.
        pool_size: Most connections held open (the writer uses one at a time).
        node_id: This node's name, recorded on the replies it generates.
        lease: Seconds a reply's lease lasts; ``renew_leases`` must run well within it.
    """

    dialect = Dialect(
        lock=" FOR UPDATE",
        lock_skip_locked=" FOR UPDATE SKIP LOCKED",
        greatest="GREATEST",
        ended=", lease_until = NULL",
        search_sql=_SEARCH,
        search_words=tsquery,
        violated_index=_violated_index,
    )

    def __init__(self, url: str, pool_size: int = 8, *, node_id: str = "", lease: float = 10.0) -> None:
        super().__init__()
        self.url = url
        self.pool_size = pool_size
        self.node_id = node_id or f"node-{new_id()}"
        self.lease = lease
        self._pool: asyncpg.Pool | None = None
        #: This process's fencing token (``lease_tokens``), taken at ``open``.
        self._lease_token = 0
        #: ``time.monotonic()`` until which this node's leases surely hold (from the start of the last renewal).
        self._leases_held_until = 0.0

    # --- life cycle ---------------------------------------------------------

    async def open(self) -> list[Interrupted]:
        try:
            import asyncpg
        except ImportError:
            raise StoreUnavailable(_NEEDS_ASYNCPG) from None
        pool = None
        try:
            pool = await asyncpg.create_pool(
                self.url,
                # No floor: asyncpg keeps one by reconnecting in the background, which logs a traceback
                # at each try of an outage (the OutageLog says it once). The lease beat keeps one warm.
                min_size=0,
                max_size=self.pool_size,
                timeout=10,
                server_settings={"application_name": self._application_name},
            )
            await pool.execute("SELECT 1")  # with no floor, nothing is connected yet: is the database there?
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            if pool is not None:
                await pool.close()
            raise StoreUnavailable(_unusable(self.url, error)) from None
        self._pool = pool
        started = time.monotonic()
        try:
            async with self._pool.acquire() as db, db.transaction():
                await _migrate(db)
                self._lease_token = await db.fetchval("SELECT nextval('lease_tokens')")
                # This node's replies from before its restart are dead now; so are any whose lease ran out.
                mine_or_expired = f"node_id = ? OR node_id IS NULL OR lease_until < {_DB_NOW}"
                interrupted = await self._end_interrupted(PostgresDb(db), mine_or_expired, self.node_id)
        except BaseException:  # a schema too new, most likely: the node does not start
            await self._pool.close()
            self._pool = None
            raise
        self._leases_held_until = started + self.lease
        self._start_writer()
        return interrupted

    async def close(self) -> None:
        if not await self._stop_writer():
            return
        assert self._pool is not None
        await self._pool.close()
        self._pool = None

    # --- the writer task ----------------------------------------------------

    async def _commit_batch(self, batch: list[Write | ChunkWrite]) -> list[Outcome]:
        assert self._pool is not None
        try:
            async with self._pool.acquire() as connection:
                return await self._commit(PostgresDb(connection), batch)
        except Exception as error:  # no connection at all: every write of the batch fails
            if not self.outages.failed("commits failed", error):
                log.exception("the database is unreachable; %d writes failed", len(batch))
            return [(write.future, None, error) for write in batch]

    async def _read(self, function: Callable[[Db], Awaitable[_T]], *, brief: bool = False) -> _T:
        # (Brief or not: every read waits for the network in the loop.)
        if self._pool is None:
            raise RuntimeError("the store is not open")
        async with self._pool.acquire() as connection:
            return await function(PostgresDb(connection))

    # --- leases -----------------------------------------------------------------

    def _reply_claim(self) -> tuple[str, str, tuple[Any, ...]]:
        return (
            ", node_id, lease_until, lease_token",
            f", ?, {_DB_NOW} + ?, ?",
            (self.node_id, self.lease, self._lease_token),
        )

    def _fence(self) -> tuple[str, tuple[Any, ...]]:
        return " AND lease_token = ?", (self._lease_token,)

    async def _insert_chunks(self, db: Db, rows: list[tuple[str, int, str, bool]]) -> set[int]:
        columns = [list(column) for column in zip(*rows, strict=True)]
        stored = {
            (message_id, seq) for message_id, seq in await db.fetch(_INSERT_FENCED_CHUNKS, *columns, self._lease_token)
        }
        return {index for index, row in enumerate(rows) if (row[0], row[1]) not in stored}

    async def _retention_turn(self, db: Db) -> bool:
        # Held until the pruning transaction ends; another node trying meanwhile prunes nothing.
        return bool(await db.fetchval("SELECT pg_try_advisory_xact_lock(?)", _RETENTION_LOCK))

    async def renew_leases(self) -> None:
        started = time.monotonic()

        async def renew(db: Db) -> None:
            # Each statement commits alone, and none waits for a row while it holds another: the
            # replies free now in one go, then each busy one (a commit of the writer is ending
            # it) alone. One statement taking them as it found them deadlocked with a commit
            # that held one and wanted another; PostgreSQL broke it a second later, the leases
            # went unrenewed and another node ended the answers.
            renewed = await db.fetch(_RENEW_FREE_LEASES, self.lease, self._lease_token)
            busy = await db.fetch(_STREAMING_BESIDES, self._lease_token, [message_id for (message_id,) in renewed])
            for (message_id,) in busy:
                await db.execute(_RENEW_ONE_LEASE, self.lease, message_id, self._lease_token)

        await self._read(renew)
        self._leases_held_until = started + self.lease
        self.outages.worked()  # an UPDATE done: on an idle node, what says the database is back

    def holds_lease(self) -> bool:
        return time.monotonic() < self._leases_held_until

    async def _ready_to_claim(self) -> None:
        # The beat renews every third of a lease: less than half of one left means it missed a
        # beat (the database was out of reach, or the node stalled), and its next try may come
        # after the lease ran out: a reply claimed now would have its chunks fenced from then
        # on and end interrupted. Renewed first, it has half a lease for the beat to come.
        if self._leases_held_until - time.monotonic() < self.lease / 2:
            await self.renew_leases()

    @property
    def _application_name(self) -> str:
        """``APPLICATION_NAME`` and the node id, as PostgreSQL keeps it (cut to ``_NAME_BYTES``)."""
        name = (APPLICATION_NAME + self.node_id).encode()[:_NAME_BYTES]
        return name.decode(errors="ignore")

    async def other_nodes(self) -> list[str]:
        rows = await self._read(
            lambda db: db.fetch(
                _OTHER_NODES, len(APPLICATION_NAME) + 1, APPLICATION_NAME, self._application_name, self.node_id
            )
        )
        return sorted(row[0] for row in rows)

    async def reap_expired(self) -> list[Interrupted]:
        async def write(db: Db) -> list[Interrupted]:
            async with db.transaction():
                return await self._end_interrupted(db, f"lease_until < {_DB_NOW}")

        return await self._read(write)


async def _migrate(db: Any) -> Migrated:
    """Apply the migrations this database lacks (inside the caller's transaction, on an asyncpg connection).

    Raises:
        SchemaTooNew: a newer release migrated it (nothing is changed).
    """
    await db.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
    await db.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
    )
    current = await schema_version(db)
    check_not_newer(current, SCHEMA_VERSION)
    for version, sql in MIGRATIONS:
        if version > current:
            log.info("migrating the database to schema version %d", version)
            await db.execute(sql)
            await db.execute("INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)", version, time.time())
    return Migrated(before=current, after=SCHEMA_VERSION)


async def schema_version(db: Any) -> int:
    """The schema version of the database, on an asyncpg connection (0: an empty one)."""
    exists = await db.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    return int(await db.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")) if exists else 0


async def connect(url: str) -> Any:
    """One asyncpg connection to ``url`` (administration commands).

    Raises:
        StoreUnavailable: asyncpg is missing, or the database cannot be reached (one line, no password).
    """
    try:
        import asyncpg
    except ImportError:
        raise StoreUnavailable(_NEEDS_ASYNCPG) from None
    try:
        return await asyncpg.connect(url, timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise StoreUnavailable(_unusable(url, error)) from None


async def migrate_database(url: str) -> Migrated:
    """``mfu-chat migrate`` on a PostgreSQL database, beside running nodes (under the migration lock).

    Raises:
        StoreUnavailable: it cannot be reached.
        SchemaTooNew: a newer release migrated it.
    """
    db = await connect(url)
    try:
        async with db.transaction():
            return await _migrate(db)
    finally:
        await db.close()


def _unusable(url: str, error: BaseException) -> str:
    """The one line saying the database at ``url`` cannot be used (its password masked)."""
    return f"cannot use the database {redact_password(url)}: {str(error) or type(error).__name__}"
