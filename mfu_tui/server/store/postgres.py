"""The PostgreSQL store: the same group commit as the SQLite one, on an asyncpg pool.

Selected by ``mfu-chat serve --db postgresql://...`` (or ``postgres://``).
asyncpg is imported in ``open()`` only, so SQLite users never load it; it
comes with the ``postgres`` extra (``pip install 'mfu-chat[postgres]'``).

Writes (a user message, each chunk of a reply, an edit) are queued to one
writer task. It waits ``commit_interval`` after the first write arrives, then
runs everything queued in ONE transaction: the chunks first, with one
``executemany`` (a chunk is always queued before the ``finish_message`` of
its reply, so this keeps every read-after-write the code relies on), then
each other write in a savepoint of its own, so one failing write does not
undo the others. Only then are the futures settled: persist, then send.

Reads take a connection from the pool and run beside the writer.

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

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from mfu_tui.protocol import (
    AttachmentPart,
    ChatDetail,
    ChatPage,
    ChatSettings,
    ChatSummary,
    ImportChat,
    SearchResults,
    UpdatedChat,
)
from mfu_tui.redaction import redact_password
from mfu_tui.server.model_input import ModelTurn
from mfu_tui.server.store.base import (
    AnswerFigures,
    AttachmentsNotReady,
    BadCursor,
    ChatBusy,
    ChatChange,
    Edit,
    Exchange,
    Imported,
    Interrupted,
    ListedChat,
    MessageState,
    NotEditable,
    Status,
    Store,
    Upload,
    UploadTooLarge,
)
from mfu_tui.server.store.batch import ChunkWrite, Outcome, settle
from mfu_tui.server.store.rows import (
    END_OF_CHAT,
    MESSAGE_COLUMNS,
    SETTINGS_COLUMNS,
    STATE_COLUMNS,
    SUMMARY_COLUMNS,
    UPLOAD_COLUMNS,
    changed_columns,
    check_same_upload,
    figures_values,
    imported_finish_reason,
    make_title,
    message_of,
    message_position,
    new_entries,
    new_id,
    page_cursor,
    page_length,
    parse_cursor,
    settings_of,
    settings_values,
    state_of,
    summary_of,
    turns_of,
    upload_of,
    with_attachments,
)
from mfu_tui.server.store.search import INDEXED_CHARS, hit_of, tsquery

if TYPE_CHECKING:
    # asyncpg ships neither type stubs nor a py.typed marker: its names are Any to mypy.
    import asyncpg  # type: ignore[import-untyped]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: URL schemes that select this store.
URL_SCHEMES = ("postgresql://", "postgres://")

#: ``(version, SQL)``, applied in order; never edit a released step, add a new one.
MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE chats (
            id            TEXT PRIMARY KEY,
            owner         TEXT NOT NULL,
            title         TEXT NOT NULL,
            model_id      TEXT,
            pinned        BOOLEAN NOT NULL DEFAULT FALSE,
            created_at    DOUBLE PRECISION NOT NULL,
            updated_at    DOUBLE PRECISION NOT NULL,
            message_count INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX chats_of_owner ON chats (owner, updated_at DESC, id DESC);

        CREATE TABLE messages (
            n                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- order within a chat
            id                TEXT NOT NULL UNIQUE,
            chat_id           TEXT NOT NULL,
            owner             TEXT NOT NULL,
            role              TEXT NOT NULL,        -- user | assistant
            content           TEXT NOT NULL,        -- a streaming reply: '' until it ends (see chunks)
            status            TEXT NOT NULL,        -- complete | streaming | cancelled | error
            seq               INTEGER NOT NULL DEFAULT 0,
            finish_reason     TEXT,
            model_id          TEXT,
            client_message_id TEXT,                 -- user messages: the sender's idempotency key
            reply_to          TEXT,                 -- assistant messages: the user message answered
            created_at        DOUBLE PRECISION NOT NULL,
            edited_at         DOUBLE PRECISION,
            ended_at          DOUBLE PRECISION
        );
        CREATE INDEX messages_of_chat ON messages (chat_id, n);
        CREATE INDEX replies ON messages (reply_to) WHERE reply_to IS NOT NULL;
        CREATE INDEX streaming ON messages (status) WHERE status = 'streaming';
        CREATE UNIQUE INDEX client_ids ON messages (owner, client_message_id)
            WHERE client_message_id IS NOT NULL;

        -- The pieces of assistant replies as streamed, for resume; pruned after the replay window.
        CREATE TABLE chunks (
            message_id TEXT NOT NULL,
            seq        INTEGER NOT NULL,
            content    TEXT NOT NULL,
            PRIMARY KEY (message_id, seq)
        );
        """,
    ),
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
        """
        -- Applied edits by their sender's idempotency key, so a resent edit_message is applied once.
        CREATE TABLE edits (
            owner          TEXT NOT NULL,
            client_edit_id TEXT NOT NULL,
            chat_id        TEXT NOT NULL,
            message_id     TEXT NOT NULL,
            content        TEXT NOT NULL,
            edited_at      DOUBLE PRECISION NOT NULL,
            reply_id       TEXT,
            PRIMARY KEY (owner, client_edit_id)
        );
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
    (
        6,
        """
        -- Archived chats are listed apart; each chat's system prompt and sampling parameters
        -- (NULL: none, the model's default).
        ALTER TABLE chats ADD COLUMN archived BOOLEAN NOT NULL DEFAULT FALSE;
        ALTER TABLE chats ADD COLUMN system_prompt TEXT;
        ALTER TABLE chats ADD COLUMN temperature DOUBLE PRECISION;
        ALTER TABLE chats ADD COLUMN top_p DOUBLE PRECISION;
        ALTER TABLE chats ADD COLUMN max_tokens INTEGER;
        ALTER TABLE chats ADD COLUMN seed BIGINT;
        -- list_chats: one section of a user's chats, pinned first, each newest first.
        CREATE INDEX chats_listed ON chats (owner, archived, pinned DESC, updated_at DESC, id DESC);
        """,
    ),
    (
        8,
        """
        -- Imported chats (import_chat): the key naming the conversation where it came from, unique
        -- per user, and how many of its entries are stored, so a part sent again stores nothing.
        ALTER TABLE chats ADD COLUMN import_key TEXT;
        ALTER TABLE chats ADD COLUMN imported INTEGER NOT NULL DEFAULT 0;
        CREATE UNIQUE INDEX chat_import_keys ON chats (owner, import_key) WHERE import_key IS NOT NULL;
        """,
    ),
    (
        9,
        """
        -- What the server measured of each answer (NULL: not known, as for user messages
        -- and the answers stored before): the tokens the model server reported, the time
        -- to the first piece of text, and the tokens per second after it.
        ALTER TABLE messages ADD COLUMN prompt_tokens INTEGER;
        ALTER TABLE messages ADD COLUMN completion_tokens INTEGER;
        ALTER TABLE messages ADD COLUMN first_token_ms INTEGER;
        ALTER TABLE messages ADD COLUMN tokens_per_second DOUBLE PRECISION;
        """,
    ),
    (
        10,
        """
        -- Files sent with user messages (attachment_part), by their sender's key; message_id and
        -- chat_id once a message took the file, NULL while it is unsent. Their bytes are in
        -- attachment_parts as they came, one row a part, read in order of start.
        CREATE TABLE attachments (
            id                   TEXT PRIMARY KEY,
            owner                TEXT NOT NULL,
            client_attachment_id TEXT NOT NULL,
            name                 TEXT NOT NULL,
            media_type           TEXT NOT NULL,
            size                 BIGINT NOT NULL,
            received             BIGINT NOT NULL DEFAULT 0,
            created_at           DOUBLE PRECISION NOT NULL,
            chat_id              TEXT,
            message_id           TEXT,
            position             INTEGER
        );
        CREATE UNIQUE INDEX attachment_keys ON attachments (owner, client_attachment_id);
        CREATE INDEX attachments_unsent ON attachments (owner, created_at) WHERE message_id IS NULL;
        CREATE INDEX attachments_of_chat ON attachments (chat_id, message_id, position) WHERE chat_id IS NOT NULL;
        CREATE TABLE attachment_parts (
            attachment_id TEXT NOT NULL,
            start         BIGINT NOT NULL,
            data          BYTEA NOT NULL,
            PRIMARY KEY (attachment_id, start)
        );
        """,
    ),
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
]

#: The database's clock, in seconds since the epoch: leases use it, not the nodes' clocks.
_DB_NOW = "extract(epoch from clock_timestamp())"

#: Unique indexes whose violation means something to the caller.
_CLIENT_IDS = "client_ids"
_ONE_STREAMING_REPLY = "one_streaming_reply_per_chat"
_EDITS_KEY = "edits_pkey"
_IMPORT_KEYS = "chat_import_keys"

#: Key of the advisory lock held while migrating ("mfu" in ASCII).
_MIGRATION_LOCK = 0x6D6675


class StoreUnavailable(OSError):
    """The database cannot be used (unreachable, refused us, or asyncpg is missing); one line."""


def is_postgres_url(location: object) -> bool:
    """True if ``--db`` names a PostgreSQL database rather than a SQLite file."""
    return isinstance(location, str) and location.startswith(URL_SCHEMES)


_Db = Any  # an asyncpg connection (asyncpg is imported lazily)


class _Write:
    """One queued write: a coroutine function of a connection, and its future."""

    __slots__ = ("function", "future")

    def __init__(self, function: Callable[[_Db], Awaitable[Any]], future: asyncio.Future[Any]) -> None:
        self.function = function
        self.future = future


_INSERT_CHUNK = "INSERT INTO chunks (message_id, seq, content) VALUES ($1, $2, $3)"

#: A write's future with its result or its error.


class PostgresStore(Store):
    """``Store`` on a PostgreSQL database.

    Args:
        url: ``postgresql://user[:password]@host[:port]/database``.
        commit_interval: Seconds the writer waits after the first queued write
            to gather more into the same commit.
        pool_size: Most connections held open (the writer uses one at a time).
        node_id: This node's name, recorded on the replies it generates.
        lease: Seconds a reply's lease lasts; ``renew_leases`` must run well within it.
    """

    def __init__(
        self, url: str, commit_interval: float = 0.005, pool_size: int = 8, *, node_id: str = "", lease: float = 10.0
    ) -> None:
        self.url = url
        self.commit_interval = commit_interval
        self.pool_size = pool_size
        self.node_id = node_id or f"node-{new_id()}"
        self.lease = lease
        self._pool: asyncpg.Pool | None = None
        self._queue: collections.deque[_Write | ChunkWrite] = collections.deque()
        self._wake = asyncio.Event()
        self._stopping = False
        self._writer: asyncio.Task[None] | None = None
        #: Commits done, for benchmarks and tests of the batching.
        self.commits = 0

    # --- life cycle ---------------------------------------------------------

    async def open(self) -> list[Interrupted]:
        try:
            import asyncpg
        except ImportError:
            raise StoreUnavailable("a postgresql:// database needs asyncpg: pip install 'mfu-chat[postgres]'") from None
        try:
            self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=self.pool_size, timeout=10)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            reason = str(error) or type(error).__name__
            raise StoreUnavailable(f"cannot use the database {redact_password(self.url)}: {reason}") from None
        async with self._pool.acquire() as db, db.transaction():
            await _migrate(db)
            # This node's replies from before its restart are dead now; so are any whose lease ran out.
            mine_or_expired = f"node_id = $1 OR node_id IS NULL OR lease_until < {_DB_NOW}"
            interrupted = await _end_interrupted(db, mine_or_expired, self.node_id)
        self._stopping = False
        self._writer = asyncio.get_running_loop().create_task(self._write_loop(), name="mfu-store-writer")
        return interrupted

    async def close(self) -> None:
        if self._writer is None:
            return
        self._stopping = True
        self._wake.set()
        await self._writer
        self._writer = None
        assert self._pool is not None
        await self._pool.close()
        self._pool = None

    # --- the writer task ----------------------------------------------------

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self.commit_interval > 0 and not self._stopping:
                await asyncio.sleep(self.commit_interval)
            batch = list(self._queue)
            self._queue.clear()
            if batch:
                await self._commit(batch)
            if self._stopping and not self._queue:
                return

    async def _commit(self, batch: list[_Write | ChunkWrite]) -> None:
        assert self._pool is not None
        try:
            async with self._pool.acquire() as db:
                try:
                    outcomes = await self._transaction(db, batch)
                except Exception:
                    # Something failed below the level of one write (a chunk
                    # insert, the commit itself). Retry each write alone, so one
                    # bad write does not fail the unrelated ones of its batch.
                    log.exception("a group commit of %d writes failed; retrying them one by one", len(batch))
                    outcomes = []
                    for write in batch:
                        try:
                            outcomes += await self._transaction(db, [write])
                        except Exception as error:
                            outcomes.append((write.future, None, error))
        except Exception as error:  # no connection at all: every write of the batch fails
            log.exception("the database is unreachable; %d writes failed", len(batch))
            outcomes = [(write.future, None, error) for write in batch]
        settle(outcomes)

    async def _transaction(self, db: _Db, batch: list[_Write | ChunkWrite]) -> list[Outcome]:
        """Run ``batch`` in one transaction; the outcome of each write, in settling order."""
        outcomes: list[Outcome] = []
        async with db.transaction():
            chunks = [write for write in batch if isinstance(write, ChunkWrite)]
            if chunks:
                await db.executemany(_INSERT_CHUNK, [write.row for write in chunks])
                outcomes.extend((write.future, None, None) for write in chunks)
            for write in batch:
                if isinstance(write, _Write):
                    outcomes.append((write.future, *await _run_one(db, write)))
        self.commits += 1
        return outcomes

    def _write(self, function: Callable[[_Db], Awaitable[_T]]) -> asyncio.Future[_T]:
        future: asyncio.Future[_T] = self._enqueue_future()
        self._queue.append(_Write(function, future))
        self._wake.set()
        return future

    def _enqueue_future(self) -> asyncio.Future[Any]:
        if self._writer is None or self._stopping:
            raise RuntimeError("the store is not open")
        return asyncio.get_running_loop().create_future()

    async def _read(self, function: Callable[[_Db], Awaitable[_T]]) -> _T:
        if self._pool is None:
            raise RuntimeError("the store is not open")
        async with self._pool.acquire() as db:
            return await function(db)

    # --- the Store interface ----------------------------------------------------

    async def record_message(
        self,
        user: str,
        chat_id: str | None,
        content: str,
        client_message_id: str,
        model_id: str | None,
        *,
        settings: ChatSettings | None = None,
        attachments: list[str] | None = None,
    ) -> Exchange | None:
        async def write(db: _Db) -> Exchange | None:
            known = await _known_exchange(db, user, client_message_id)
            if known is not None:
                return known
            try:
                # A savepoint: a twin of this message committed by another node undoes only this.
                async with db.transaction():
                    return await insert(db)
            except Exception as error:
                violated = _violated_index(error)
                if violated == _CLIENT_IDS:
                    return await _known_exchange(db, user, client_message_id)
                if violated == _ONE_STREAMING_REPLY:
                    raise ChatBusy("an answer is still being generated in this chat") from None
                raise

        async def insert(db: _Db) -> Exchange | None:
            now = time.time()
            created = chat_id is None
            target = chat_id or new_id()
            if created:
                await db.execute(
                    f"INSERT INTO chats (id, owner, title, model_id, created_at, updated_at, {SETTINGS_COLUMNS})"
                    " VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9, $10)",
                    target, user, make_title(content), model_id, now, *settings_values(settings or ChatSettings()),
                )  # fmt: skip
            elif await db.fetchval("SELECT 1 FROM chats WHERE id = $1 AND owner = $2", target, user) is None:
                return None
            message_id, reply_id = new_id(), new_id()
            await db.execute(
                "INSERT INTO messages"
                " (id, chat_id, owner, role, content, status, model_id, client_message_id, created_at)"
                " VALUES ($1, $2, $3, 'user', $4, 'complete', $5, $6, $7)",
                message_id, target, user, content, model_id, client_message_id, now,
            )  # fmt: skip
            for position, key in enumerate(attachments or []):
                taken = await db.fetchval(
                    "UPDATE attachments SET chat_id = $1, message_id = $2, position = $3 WHERE owner = $4"
                    " AND client_attachment_id = $5 AND message_id IS NULL AND received = size RETURNING 1",
                    target, message_id, position, user, key,
                )  # fmt: skip
                if taken is None:  # raising undoes this savepoint's rows
                    raise AttachmentsNotReady(f"attachment {key!r} is not whole, or was sent with another message")
            await self._insert_reply(db, reply_id, target, user, model_id, message_id, now)
            await db.execute(
                "UPDATE chats SET updated_at = $1, message_count = message_count + 2,"
                " model_id = COALESCE($2, model_id) WHERE id = $3",
                now, model_id, target,
            )  # fmt: skip
            chat = await _summary(db, target)
            if chat is None:
                # Another node deleted it after the check above: raising undoes this savepoint's rows.
                raise LookupError(f"chat {target} was deleted meanwhile")
            return Exchange(
                chat=chat,
                user_message_id=message_id,
                reply_id=reply_id,
                history=await _history(db, target, reply_id),
                created=created,
                settings=await _settings(db, target),
            )

        return await self._write(write)

    async def store_part(self, user: str, part: AttachmentPart, *, unsent_limit: int, expire_before: float) -> int:
        key = part.client_attachment_id
        select = f"SELECT id, {UPLOAD_COLUMNS} FROM attachments WHERE owner = $1 AND client_attachment_id = $2"

        async def write(db: _Db) -> int:
            # Locked: a part of the same upload on another node waits for this one.
            row = await db.fetchrow(select + " FOR UPDATE", user, key)
            if row is None:
                if part.offset != 0:
                    return 0
                expired = "SELECT id FROM attachments WHERE owner = $1 AND message_id IS NULL AND created_at < $2"
                await db.execute(
                    f"DELETE FROM attachment_parts WHERE attachment_id IN ({expired})", user, expire_before
                )
                await db.execute(
                    "DELETE FROM attachments WHERE owner = $1 AND message_id IS NULL AND created_at < $2",
                    user, expire_before,
                )  # fmt: skip
                unsent = await db.fetchval(
                    "SELECT COALESCE(SUM(size), 0) FROM attachments WHERE owner = $1 AND message_id IS NULL", user
                )
                if unsent + part.size > unsent_limit:
                    raise UploadTooLarge(int(unsent))
                # A twin first part on another node makes this insert nothing: then its row is read.
                await db.execute(
                    "INSERT INTO attachments (id, owner, client_attachment_id, name, media_type, size, created_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                    new_id(), user, key, part.name, part.media_type, part.size, time.time(),
                )  # fmt: skip
                row = await db.fetchrow(select + " FOR UPDATE", user, key)
            attachment_id, upload = row[0], upload_of(tuple(row)[1:])
            check_same_upload(upload, part)
            if upload.sent:
                return upload.size
            if part.offset != upload.received:
                return upload.received
            if part.data:
                await db.execute(
                    "INSERT INTO attachment_parts (attachment_id, start, data) VALUES ($1, $2, $3)",
                    attachment_id, part.offset, part.data,
                )  # fmt: skip
                await db.execute(
                    "UPDATE attachments SET received = received + $1 WHERE id = $2", len(part.data), attachment_id
                )
            return upload.received + len(part.data)

        return await self._write(write)

    async def uploads(self, user: str, client_attachment_ids: list[str]) -> dict[str, Upload]:
        async def read(db: _Db) -> dict[str, Upload]:
            rows = await db.fetch(
                f"SELECT {UPLOAD_COLUMNS} FROM attachments WHERE owner = $1 AND client_attachment_id = ANY($2)",
                user, client_attachment_ids,
            )  # fmt: skip
            return {upload.client_attachment_id: upload for upload in (upload_of(tuple(row)) for row in rows)}

        return await self._read(read)

    async def find_exchange(self, user: str, client_message_id: str) -> Exchange | None:
        return await self._read(lambda db: _known_exchange(db, user, client_message_id))

    def append_chunk(self, message_id: str, seq: int, content: str) -> asyncio.Future[None]:
        future: asyncio.Future[None] = self._enqueue_future()
        self._queue.append(ChunkWrite((message_id, seq, content), future))
        self._wake.set()
        return future

    async def finish_message(
        self,
        message_id: str,
        content: str,
        status: Status,
        finish_reason: str,
        seq: int,
        figures: AnswerFigures | None = None,
    ) -> ChatSummary:
        async def write(db: _Db) -> ChatSummary:
            now = time.time()
            # Still streaming: another node may have ended it (this node lost its lease).
            chat_id = await db.fetchval(
                "UPDATE messages SET content = $1, status = $2, finish_reason = $3, seq = $4, ended_at = $5,"
                " lease_until = NULL, prompt_tokens = $6, completion_tokens = $7, first_token_ms = $8,"
                " tokens_per_second = $9 WHERE id = $10 AND status = 'streaming' RETURNING chat_id",
                content, status, finish_reason, seq, now, *figures_values(figures), message_id,
            )  # fmt: skip
            if chat_id is None:
                raise LookupError(f"message {message_id} is gone or was ended by another node")
            await db.execute("UPDATE chats SET updated_at = $1 WHERE id = $2", now, chat_id)
            chat = await _summary(db, chat_id)
            if chat is None:  # another node deleted the chat as this reply was inserted: as good as gone
                raise LookupError(f"the chat of message {message_id} is gone")
            return chat

        return await self._write(write)

    async def chat(self, user: str, chat_id: str) -> ChatSummary | None:
        return await self._read(lambda db: _summary(db, chat_id, user))

    async def chat_detail(
        self,
        user: str,
        chat_id: str,
        limit: int,
        before: str | None = None,
        *,
        offset: int | None = None,
        at: str | None = None,
    ) -> ChatDetail | None:
        async def read(db: _Db) -> ChatDetail | None:
            # One snapshot for the chat, its messages and their chunks.
            async with db.transaction(isolation="repeatable_read", readonly=True):
                chat = await _summary(db, chat_id, user)
                if chat is None:
                    return None
                settings = await _settings(db, chat_id)
                # Sizes first, so a page of long messages never reads past what it sends.
                if offset is None and at is None:
                    end = END_OF_CHAT
                    if before is not None:
                        found = await db.fetchrow(
                            "SELECT n FROM messages WHERE id = $1 AND chat_id = $2", before, chat_id
                        )
                        end = message_position(found)
                    sizes = await db.fetch(
                        "SELECT n, char_length(content) FROM messages WHERE chat_id = $1 AND n < $2"
                        " ORDER BY n DESC LIMIT $3",
                        chat_id,
                        end,
                        limit + 1,
                    )
                    count = page_length(size for _, size in sizes[:limit])
                    first, last = (sizes[count - 1][0], sizes[0][0]) if count else (end, end)
                else:
                    start, skip = -1, offset or 0
                    if at is not None:
                        found = await db.fetchrow("SELECT n FROM messages WHERE id = $1 AND chat_id = $2", at, chat_id)
                        start, skip = message_position(found, "at"), 0
                    sizes = await db.fetch(
                        "SELECT n, char_length(content) FROM messages WHERE chat_id = $1 AND n >= $2"
                        " ORDER BY n LIMIT $3 OFFSET $4",
                        chat_id,
                        start,
                        limit,
                        skip,
                    )
                    count = page_length(size for _, size in sizes)
                    first, last = (sizes[0][0], sizes[count - 1][0]) if count else (END_OF_CHAT, END_OF_CHAT)
                page_offset = int(
                    await db.fetchval("SELECT COUNT(*) FROM messages WHERE chat_id = $1 AND n < $2", chat_id, first)
                )
                if not count:
                    return ChatDetail(chat=chat, messages=[], settings=settings, offset=page_offset)
                rows = await db.fetch(
                    f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE chat_id = $1 AND n >= $2 AND n <= $3 ORDER BY n",
                    chat_id,
                    first,
                    last,
                )
                messages = []
                for row in rows:
                    id_, _, content, status, seq = row[:5]
                    if status == "streaming":
                        content, seq = await _streamed_so_far(db, id_)
                    messages.append(message_of(row, content, seq))
                chips = await db.fetch(
                    "SELECT message_id, name, media_type, size FROM attachments WHERE chat_id = $1"
                    " AND message_id = ANY($2) ORDER BY message_id, position",
                    chat_id, [message.id for message in messages],
                )  # fmt: skip
                messages = with_attachments(messages, chips)
                cursor = messages[0].id if page_offset else None
                return ChatDetail(
                    chat=chat, messages=messages, next_cursor=cursor, settings=settings, offset=page_offset
                )

        return await self._read(read)

    async def list_chats(self, user: str, limit: int, before: str | None, archived: bool = False) -> ChatPage:
        after = parse_cursor(before) if before else None

        async def read(db: _Db) -> ChatPage:
            if after is None:
                rows = await db.fetch(
                    f"SELECT {SUMMARY_COLUMNS} FROM chats WHERE owner = $1 AND archived = $2"
                    " ORDER BY pinned DESC, updated_at DESC, id DESC LIMIT $3",
                    user, archived, limit + 1,
                )  # fmt: skip
            else:
                # A row value: after the cursor's place in the (descending) order, whichever column decides.
                rows = await db.fetch(
                    f"SELECT {SUMMARY_COLUMNS} FROM chats WHERE owner = $1 AND archived = $2"
                    " AND (pinned, updated_at, id) < ($3, $4, $5)"
                    " ORDER BY pinned DESC, updated_at DESC, id DESC LIMIT $6",
                    user, archived, *after, limit + 1,
                )  # fmt: skip
            chats = [summary_of(row) for row in rows[:limit]]
            cursor = page_cursor(tuple(rows[limit - 1])) if len(rows) > limit else None
            return ChatPage(chats=chats, next_cursor=cursor)

        return await self._read(read)

    async def search(self, user: str, words: list[str], limit: int, before: str | None) -> SearchResults:
        async def read(db: _Db) -> SearchResults:
            # One snapshot for the cursor and the hits.
            async with db.transaction(isolation="repeatable_read", readonly=True):
                end = END_OF_CHAT
                if before is not None:
                    end = await db.fetchval("SELECT n FROM messages WHERE id = $1 AND owner = $2", before, user)
                    if end is None:
                        raise BadCursor("'before' is not a cursor from an earlier search")
                rows = await db.fetch(
                    "SELECT messages.id, messages.chat_id, chats.title, messages.role,"
                    " left(messages.content, $1), messages.created_at"
                    " FROM messages JOIN chats ON chats.id = messages.chat_id"
                    " WHERE messages.search @@ to_tsquery('simple', $2) AND messages.n < $3 AND messages.owner = $4"
                    " ORDER BY messages.n DESC LIMIT $5",
                    INDEXED_CHARS, tsquery(words), end, user, limit + 1,
                )  # fmt: skip
            hits = [hit_of(tuple(row), words) for row in rows[:limit]]
            return SearchResults(hits=hits, next_cursor=hits[-1].message_id if len(rows) > limit else None)

        return await self._read(read)

    async def chats_page(self, user: str, offset: int, limit: int) -> tuple[list[ListedChat], int]:
        async def read(db: _Db) -> tuple[list[ListedChat], int]:
            # One snapshot for the page and the total.
            async with db.transaction(isolation="repeatable_read", readonly=True):
                rows = await db.fetch(
                    f"SELECT {SUMMARY_COLUMNS}, created_at FROM chats WHERE owner = $1"
                    " ORDER BY updated_at DESC, id DESC LIMIT $2 OFFSET $3",
                    user, limit, offset,
                )  # fmt: skip
                total = await db.fetchval("SELECT COUNT(*) FROM chats WHERE owner = $1", user)
            return [ListedChat(summary_of(tuple(row)[:-1]), row[-1]) for row in rows], total

        return await self._read(read)

    async def update_chat(self, user: str, chat_id: str, change: ChatChange) -> UpdatedChat | None:
        columns = changed_columns(change, time.time())
        assignments = ", ".join(f"{column} = ${n}" for n, (column, _) in enumerate(columns, start=1))
        where = f"id = ${len(columns) + 1} AND owner = ${len(columns) + 2}"

        async def write(db: _Db) -> UpdatedChat | None:
            row = await db.fetchrow(
                f"UPDATE chats SET {assignments} WHERE {where} RETURNING {SUMMARY_COLUMNS}, {SETTINGS_COLUMNS}",
                *(value for _, value in columns), chat_id, user,
            )  # fmt: skip
            if row is None:
                return None
            values, split = tuple(row), len(SUMMARY_COLUMNS.split(","))
            return UpdatedChat(chat=summary_of(values[:split]), settings=settings_of(values[split:]))

        return await self._write(write)

    async def delete_chat(self, user: str, chat_id: str) -> ChatSummary | None:
        async def write(db: _Db) -> ChatSummary | None:
            chat = await _summary(db, chat_id, user)
            if chat is None:
                return None
            # The chat first: the trigger counting its bytes then finds no row to update per message.
            await db.execute("DELETE FROM chats WHERE id = $1", chat_id)
            await db.execute(
                "DELETE FROM chunks WHERE message_id IN (SELECT id FROM messages WHERE chat_id = $1)", chat_id
            )
            await db.execute("DELETE FROM messages WHERE chat_id = $1", chat_id)
            await db.execute("DELETE FROM edits WHERE chat_id = $1", chat_id)
            files = "SELECT id FROM attachments WHERE chat_id = $1"
            await db.execute(f"DELETE FROM attachment_parts WHERE attachment_id IN ({files})", chat_id)
            await db.execute("DELETE FROM attachments WHERE chat_id = $1", chat_id)
            return chat

        return await self._write(write)

    async def edit_message(
        self,
        user: str,
        chat_id: str,
        message_id: str,
        content: str,
        regenerate: bool,
        client_edit_id: str | None = None,
    ) -> Edit | None:
        async def write(db: _Db) -> Edit | None:
            if client_edit_id is None:
                return await apply(db)
            known = await _known_edit(db, user, client_edit_id)
            if known is not None:
                return known
            try:
                # A savepoint: the same edit committed by another node meanwhile undoes only this.
                async with db.transaction():
                    return await apply(db)
            except Exception as error:
                if _violated_index(error) == _EDITS_KEY:
                    return await _known_edit(db, user, client_edit_id)
                raise

        async def apply(db: _Db) -> Edit | None:
            row = await db.fetchrow(
                "SELECT n, role, model_id FROM messages WHERE id = $1 AND chat_id = $2 AND owner = $3",
                message_id, chat_id, user,
            )  # fmt: skip
            if row is None:
                return None
            n, role, model_id = row
            if role != "user":
                raise NotEditable("only user messages can be edited")
            now = time.time()
            if client_edit_id is not None:
                # Claimed first: the same edit on another node waits here, then finds it done.
                await db.execute(
                    "INSERT INTO edits (owner, client_edit_id, chat_id, message_id, content, edited_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6)",
                    user, client_edit_id, chat_id, message_id, content, now,
                )  # fmt: skip
            await db.execute("UPDATE messages SET content = $1, edited_at = $2 WHERE id = $3", content, now, message_id)
            reply_id = history = None
            if regenerate:
                if await db.fetchval("SELECT 1 FROM messages WHERE chat_id = $1 AND status = 'streaming'", chat_id):
                    raise ChatBusy("an answer is still being generated in this chat")
                later = "SELECT id FROM messages WHERE chat_id = $1 AND n > $2"
                await db.execute(f"DELETE FROM chunks WHERE message_id IN ({later})", chat_id, n)
                files = f"SELECT id FROM attachments WHERE chat_id = $1 AND message_id IN ({later})"
                await db.execute(f"DELETE FROM attachment_parts WHERE attachment_id IN ({files})", chat_id, n)
                await db.execute(f"DELETE FROM attachments WHERE chat_id = $1 AND message_id IN ({later})", chat_id, n)
                await db.execute("DELETE FROM messages WHERE chat_id = $1 AND n > $2", chat_id, n)
                reply_id = new_id()
                try:
                    async with db.transaction():
                        await self._insert_reply(db, reply_id, chat_id, user, model_id, message_id, now)
                except Exception as error:
                    if _violated_index(error) == _ONE_STREAMING_REPLY:  # another node started one meanwhile
                        raise ChatBusy("an answer is still being generated in this chat") from None
                    raise
                history = await _history(db, chat_id, reply_id)
            await db.execute(
                "UPDATE chats SET updated_at = $1,"
                " message_count = (SELECT COUNT(*) FROM messages WHERE chat_id = $2) WHERE id = $2",
                now, chat_id,
            )  # fmt: skip
            if client_edit_id is not None and reply_id is not None:
                await db.execute(
                    "UPDATE edits SET reply_id = $1 WHERE owner = $2 AND client_edit_id = $3",
                    reply_id,
                    user,
                    client_edit_id,
                )
            chat = await _summary(db, chat_id)
            if chat is None:
                # Another node deleted it after the message was read: raising undoes this edit's rows.
                raise LookupError(f"chat {chat_id} was deleted meanwhile")
            settings = await _settings(db, chat_id)
            return Edit(chat, message_id, content, edited_at=now, reply_id=reply_id, history=history, settings=settings)

        return await self._write(write)

    async def find_edit(self, user: str, client_edit_id: str) -> Edit | None:
        return await self._read(lambda db: _known_edit(db, user, client_edit_id))

    async def import_progress(self, user: str, import_key: str) -> tuple[ChatSummary, int] | None:
        async def read(db: _Db) -> tuple[ChatSummary, int] | None:
            row = await db.fetchrow(
                f"SELECT {SUMMARY_COLUMNS}, imported FROM chats WHERE owner = $1 AND import_key = $2", user, import_key
            )
            return (summary_of(tuple(row)[:-1]), row[-1]) if row else None

        return await self._read(read)

    async def import_chat(self, user: str, part: ImportChat) -> Imported:
        key = part.import_key

        async def write(db: _Db) -> Imported:
            # Locked: a part of the same conversation on another node waits, then finds this one's entries.
            found = await db.fetchrow(
                "SELECT id, imported FROM chats WHERE owner = $1 AND import_key = $2 FOR UPDATE", user, key
            )
            if found is not None:
                return await add(db, found[0], found[1], created=False)
            chat_id = new_id()
            new_entries(part, 0)  # a later part first: refused before the chat is made
            try:
                # A savepoint: the same conversation created by another node meanwhile undoes only this.
                async with db.transaction():
                    await db.execute(
                        "INSERT INTO chats (id, owner, title, created_at, updated_at, import_key)"
                        " VALUES ($1, $2, $3, $4, $5, $6)",
                        chat_id, user, part.title, part.created_at.timestamp(), part.updated_at.timestamp(), key,
                    )  # fmt: skip
            except Exception as error:
                if _violated_index(error) != _IMPORT_KEYS:
                    raise
                found = await db.fetchrow(
                    "SELECT id, imported FROM chats WHERE owner = $1 AND import_key = $2 FOR UPDATE", user, key
                )
                return await add(db, found[0], found[1], created=False)
            return await add(db, chat_id, 0, created=True)

        async def add(db: _Db, chat_id: str, stored: int, *, created: bool) -> Imported:
            entries = new_entries(part, stored)
            last = await db.fetchrow(
                "SELECT id, created_at FROM messages WHERE chat_id = $1 ORDER BY n DESC LIMIT 1", chat_id
            )
            last_id, when = (last[0], last[1]) if last else (None, part.created_at.timestamp())
            for entry in entries:
                if entry.continued and last_id is not None:
                    appended = "UPDATE messages SET content = content || $1 WHERE id = $2"
                    await db.execute(appended, entry.content, last_id)
                    continue
                last_id = new_id()
                when = entry.created_at.timestamp() if entry.created_at else when
                await db.execute(
                    "INSERT INTO messages (id, chat_id, owner, role, content, status, finish_reason, created_at,"
                    " ended_at) VALUES ($1, $2, $3, $4, $5, 'complete', $6, $7, $7)",
                    last_id, chat_id, user, entry.role, entry.content, imported_finish_reason(entry.role), when,
                )  # fmt: skip
            if entries:
                await db.execute(
                    "UPDATE chats SET imported = $1, updated_at = GREATEST(updated_at, $2),"
                    " message_count = (SELECT COUNT(*) FROM messages WHERE chat_id = $3) WHERE id = $3",
                    stored + len(entries), part.updated_at.timestamp(), chat_id,
                )  # fmt: skip
            chat = await _summary(db, chat_id)
            assert chat is not None  # locked or created above, in this transaction
            return Imported(chat, created, stored + len(entries), len(entries))

        return await self._write(write)

    async def message_state(self, user: str, chat_id: str, message_id: str | None) -> MessageState | None:
        columns = STATE_COLUMNS

        async def read(db: _Db) -> MessageState | None:
            if message_id is None:
                row = await db.fetchrow(
                    f"SELECT {columns} FROM messages WHERE chat_id = $1 AND owner = $2 AND role = 'assistant'"
                    " ORDER BY n DESC LIMIT 1",
                    chat_id, user,
                )  # fmt: skip
            else:
                row = await db.fetchrow(
                    f"SELECT {columns} FROM messages WHERE id = $1 AND chat_id = $2 AND owner = $3",
                    message_id, chat_id, user,
                )  # fmt: skip
            return state_of(row) if row else None

        return await self._read(read)

    async def stored_bytes(self, user: str) -> int:
        async def read(db: _Db) -> int:
            return int(
                await db.fetchval(
                    "SELECT (SELECT COALESCE(SUM(bytes), 0) FROM chats WHERE owner = $1)"
                    " + (SELECT COALESCE(SUM(received), 0) FROM attachments WHERE owner = $1)",
                    user,
                )
            )

        return await self._read(read)

    async def chunks_after(self, message_id: str, seq: int) -> list[tuple[int, str]]:
        async def read(db: _Db) -> list[tuple[int, str]]:
            rows = await db.fetch(
                "SELECT seq, content FROM chunks WHERE message_id = $1 AND seq > $2 ORDER BY seq", message_id, seq
            )
            return [(row[0], row[1]) for row in rows]

        return await self._read(read)

    async def renew_leases(self) -> None:
        await self._read(
            lambda db: db.execute(
                f"UPDATE messages SET lease_until = {_DB_NOW} + $1 WHERE node_id = $2 AND status = 'streaming'",
                self.lease,
                self.node_id,
            )  # fmt: skip
        )

    async def reap_expired(self) -> list[Interrupted]:
        async def write(db: _Db) -> list[Interrupted]:
            async with db.transaction():
                return await _end_interrupted(db, f"lease_until < {_DB_NOW}")

        return await self._read(write)

    async def _insert_reply(
        self, db: _Db, reply_id: str, chat_id: str, user: str, model_id: str | None, reply_to: str, now: float
    ) -> None:
        """Insert an empty streaming reply, leased to this node."""
        await db.execute(
            "INSERT INTO messages (id, chat_id, owner, role, content, status, model_id, reply_to, created_at,"
            f" node_id, lease_until) VALUES ($1, $2, $3, 'assistant', '', 'streaming', $4, $5, $6, $7, {_DB_NOW} + $8)",
            reply_id, chat_id, user, model_id, reply_to, now, self.node_id, self.lease,
        )  # fmt: skip

    async def prune_chunks(self, ended_before: float) -> int:
        async def write(db: _Db) -> int:
            status = await db.execute(
                "DELETE FROM chunks WHERE message_id IN"
                " (SELECT id FROM messages WHERE role = 'assistant' AND ended_at < $1)",
                ended_before,
            )
            return int(status.split()[-1])  # "DELETE 42"

        return await self._write(write)


# --- helpers taking a connection ------------------------------------------------


async def _run_one(db: _Db, write: _Write) -> tuple[Any, BaseException | None]:
    # A savepoint per write: one failing write must not undo the others of its batch.
    try:
        async with db.transaction():
            return await write.function(db), None
    except Exception as error:
        return None, error


async def _summary(db: _Db, chat_id: str, user: str | None = None) -> ChatSummary | None:
    if user is None:
        row = await db.fetchrow(f"SELECT {SUMMARY_COLUMNS} FROM chats WHERE id = $1", chat_id)
    else:
        row = await db.fetchrow(f"SELECT {SUMMARY_COLUMNS} FROM chats WHERE id = $1 AND owner = $2", chat_id, user)
    return summary_of(row) if row else None


async def _settings(db: _Db, chat_id: str) -> ChatSettings:
    """The settings of a chat the caller knows to exist."""
    return settings_of(await db.fetchrow(f"SELECT {SETTINGS_COLUMNS} FROM chats WHERE id = $1", chat_id))


async def _known_exchange(db: _Db, user: str, client_message_id: str) -> Exchange | None:
    known = await db.fetchrow(
        "SELECT id, chat_id FROM messages WHERE owner = $1 AND client_message_id = $2", user, client_message_id
    )
    if known is None:
        return None
    message_id, chat_id = known
    reply_id = await db.fetchval("SELECT id FROM messages WHERE reply_to = $1 ORDER BY n DESC LIMIT 1", message_id)
    chat = await _summary(db, chat_id)
    if chat is None:  # deleted since the message was read (each query sees its own snapshot)
        return None
    return Exchange(
        chat=chat,
        user_message_id=message_id,
        reply_id=reply_id or "",
        history=[],
        duplicate=True,
    )


async def _known_edit(db: _Db, user: str, client_edit_id: str) -> Edit | None:
    row = await db.fetchrow(
        "SELECT chat_id, message_id, content, edited_at, reply_id FROM edits WHERE owner = $1 AND client_edit_id = $2",
        user, client_edit_id,
    )  # fmt: skip
    if row is None:
        return None
    chat_id, message_id, content, edited_at, reply_id = row
    chat = await _summary(db, chat_id)
    if chat is None:
        return None
    return Edit(chat, message_id, content, edited_at=edited_at, reply_id=reply_id, duplicate=True)


async def _history(db: _Db, chat_id: str, reply_id: str) -> list[ModelTurn]:
    """The messages before the reply ``reply_id``, oldest first, with their files, as model input.

    An empty answer is left out; a user message never is (it may be files only).
    """
    rows = await db.fetch(
        "SELECT id, role, content FROM messages WHERE chat_id = $1"
        " AND n < (SELECT n FROM messages WHERE id = $2) AND (content <> '' OR role = 'user') ORDER BY n",
        chat_id, reply_id,
    )  # fmt: skip
    files = await db.fetch(
        "SELECT attachments.message_id, attachments.position, name, media_type, attachment_parts.data"
        " FROM attachments LEFT JOIN attachment_parts ON attachment_parts.attachment_id = attachments.id"
        " WHERE attachments.chat_id = $1 AND attachments.message_id IS NOT NULL"
        " ORDER BY attachments.message_id, attachments.position, attachment_parts.start",
        chat_id,
    )  # fmt: skip
    return turns_of([tuple(row) for row in rows], [tuple(row) for row in files])


async def _streamed_so_far(db: _Db, message_id: str) -> tuple[str, int]:
    """The text and last ``seq`` of a reply still streaming, from its chunks."""
    pieces = await db.fetch("SELECT seq, content FROM chunks WHERE message_id = $1 ORDER BY seq", message_id)
    return "".join(piece for _, piece in pieces), (pieces[-1][0] if pieces else 0)


async def _migrate(db: _Db) -> None:
    """Apply the migrations this database lacks (inside the caller's transaction)."""
    await db.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
    await db.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
    )
    current = await db.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")
    newest = MIGRATIONS[-1][0]
    if current > newest:
        raise StoreUnavailable(f"the database has schema version {current}; this mfu-chat knows up to {newest}")
    for version, sql in MIGRATIONS:
        if version > current:
            log.info("migrating the database to schema version %d", version)
            await db.execute(sql)
            await db.execute("INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)", version, time.time())


def _violated_index(error: Exception) -> str | None:
    """The unique index ``error`` violates, if it is a unique violation (SQLSTATE 23505)."""
    if getattr(error, "sqlstate", None) == "23505":
        return getattr(error, "constraint_name", None)
    return None


async def _end_interrupted(db: _Db, where: str, *args: Any) -> list[Interrupted]:
    """End the streaming replies matching ``where``: their chunks become the text, marked interrupted.

    Runs inside the caller's transaction. ``SKIP LOCKED``: a reply another
    node is ending right now is left to it, so each is ended exactly once.
    """
    now = time.time()
    rows = await db.fetch(
        f"SELECT id, chat_id, owner FROM messages WHERE status = 'streaming' AND ({where}) FOR UPDATE SKIP LOCKED",
        *args,
    )
    interrupted = []
    for message_id, chat_id, owner in rows:
        content, seq = await _streamed_so_far(db, message_id)
        await db.execute(
            "UPDATE messages SET content = $1, seq = $2, status = 'error', finish_reason = 'interrupted',"
            " ended_at = $3, lease_until = NULL WHERE id = $4",
            content, seq, now, message_id,
        )  # fmt: skip
        await db.execute("UPDATE chats SET updated_at = $1 WHERE id = $2", now, chat_id)
        chat = await _summary(db, chat_id)
        if chat is None:  # another node deleted the chat as this reply was inserted: nobody is left to tell
            continue
        interrupted.append(Interrupted(user=owner, chat=chat, message_id=message_id, seq=seq))
    return interrupted
