"""The store algorithm, written once for both databases: idempotency, one reply at a time, paging.

``SqlStore`` implements ``Store`` on any SQL database: its writes go through
the group commit (``group_commit.GroupCommit``), its reads run beside the
writer, each on a connection of its own, and both are written against
``dialect.Db`` with the ``Dialect`` supplying the SQL that differs.

A subclass supplies the database: its ``Dialect``, its connections (the
writer's, ``_read``'s), ``open`` and ``close``. Several nodes may share a
database (PostgreSQL): every write that another node's twin could race is
written so that the database's unique indexes decide
(``Dialect.violated_index``), and rows a write goes on to change are locked
as they are read (``Dialect.lock``).
"""

from __future__ import annotations

import abc
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

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
from mfu_tui.server.store import queries
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
from mfu_tui.server.store.dialect import Db, Dialect
from mfu_tui.server.store.group_commit import BRIEF_TEXT, GroupCommit
from mfu_tui.server.store.rows import (
    END_OF_CHAT,
    SETTINGS_COLUMNS,
    STATE_COLUMNS,
    SUMMARY_COLUMNS,
    UPLOAD_COLUMNS,
    changed_columns,
    check_same_upload,
    figures_values,
    imported_finish_reason,
    make_title,
    new_entries,
    new_id,
    page_cursor,
    parse_cursor,
    settings_of,
    settings_values,
    state_of,
    summary_of,
    upload_of,
)
from mfu_tui.server.store.search import INDEXED_CHARS, hit_of
from mfu_tui.server.store.user_data import delete_chats, users_deleted_after

_T = TypeVar("_T")

#: Unique indexes whose violation by another node's twin write means something.
CLIENT_IDS = "client_ids"
ONE_STREAMING_REPLY = "one_streaming_reply_per_chat"
EDITS_KEY = "edits_pkey"
IMPORT_KEYS = "chat_import_keys"

_BUSY = "an answer is still being generated in this chat"
_STREAMING = "SELECT 1 FROM messages WHERE chat_id = ? AND status = 'streaming' LIMIT 1"

#: Messages a chat may hold for the history of a question stored in it to be read in the event loop
#: (a brief read); a longer one is read in a thread (35 ms for 10,000 messages).
BRIEF_HISTORY = 200


class SqlStore(GroupCommit, Store):
    """``Store`` on a SQL database: the algorithm; a subclass supplies the database."""

    #: The SQL that differs between databases.
    dialect: ClassVar[Dialect]

    # --- what a database supplies ---------------------------------------------

    @abc.abstractmethod
    async def _read(self, function: Callable[[Db], Awaitable[_T]], *, brief: bool = False) -> _T:
        """Run ``function`` on a reading connection, beside the writer.

        Args:
            brief: It looks up a few rows by key, as each question does before it is
                stored: SQLite reads it in the event loop, where a hop to a thread
                cost more than the read (``BRIEF_TEXT`` says the same of writes).
        """

    def _reply_claim(self) -> tuple[str, str, tuple[Any, ...]]:
        """Columns, their values' SQL and parameters that mark a new streaming reply as this node's.

        A database that only one node uses (SQLite) has no claims: nothing.
        """
        return "", "", ()

    def _fence(self) -> tuple[str, tuple[Any, ...]]:
        """A condition, and its parameters, that holds of a streaming reply only while this node's lease on it does.

        A database that only one node uses (SQLite) has no leases: nothing.
        """
        return "", ()

    def _claimed_here(self) -> tuple[str, tuple[Any, ...]]:
        """A condition, and its parameters, that holds of a streaming reply this node (this process) claimed.

        Its lease's fence where there are leases: another node's reply, or one of this node's past
        its lease, is ended by ``reap_expired``, never taken over.
        """
        return self._fence()

    async def _ready_to_claim(self) -> None:
        """Make sure a reply claimed next holds its lease for as long as ``holds_lease`` says.

        A database that only one node uses (SQLite) has no leases: nothing to do.
        """

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
        async def write(db: Db) -> Exchange | None:
            known = await queries.known_exchange(db, user, client_message_id)
            if known is not None:
                return known
            try:
                # A savepoint: a twin of this message committed by another node undoes only this.
                async with db.savepoint():
                    return await insert(db)
            except Exception as error:
                violated = self.dialect.violated_index(error)
                if violated == CLIENT_IDS:
                    return await queries.known_exchange(db, user, client_message_id)
                if violated == ONE_STREAMING_REPLY:  # another node started one meanwhile
                    raise ChatBusy(_BUSY) from None
                raise

        async def insert(db: Db) -> Exchange | None:
            now = time.time()
            created = chat_id is None
            target = chat_id or new_id()
            if created:
                await db.execute(
                    f"INSERT INTO chats (id, owner, title, model_id, created_at, updated_at, {SETTINGS_COLUMNS})"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    target, user, make_title(content), model_id, now, now,
                    *settings_values(settings or ChatSettings()),
                )  # fmt: skip
            elif await db.fetchrow("SELECT 1 FROM chats WHERE id = ? AND owner = ?", target, user) is None:
                return None
            elif await db.fetchrow(_STREAMING, target) is not None:
                raise ChatBusy(_BUSY)
            message_id, reply_id = new_id(), new_id()
            await db.execute(
                "INSERT INTO messages"
                " (id, chat_id, owner, role, content, status, model_id, client_message_id, created_at)"
                " VALUES (?, ?, ?, 'user', ?, 'complete', ?, ?, ?)",
                message_id, target, user, content, model_id, client_message_id, now,
            )  # fmt: skip
            for position, key in enumerate(attachments or []):
                taken = await db.execute(
                    "UPDATE attachments SET chat_id = ?, message_id = ?, position = ? WHERE owner = ?"
                    " AND client_attachment_id = ? AND message_id IS NULL AND received = size",
                    target, message_id, position, user, key,
                )  # fmt: skip
                if not taken:  # raising undoes this savepoint's rows
                    raise AttachmentsNotReady(f"attachment {key!r} is not whole, or was sent with another message")
            await self._insert_reply(db, reply_id, target, user, model_id, message_id, now)
            await db.execute(
                "UPDATE chats SET updated_at = ?, message_count = message_count + 2,"
                " model_id = COALESCE(?, model_id) WHERE id = ?",
                now, model_id, target,
            )  # fmt: skip
            chat = await queries.summary(db, target)
            if chat is None:
                # Another node deleted it after the check above: raising undoes this savepoint's rows.
                raise LookupError(f"chat {target} was deleted meanwhile")
            return Exchange(
                chat=chat,
                user_message_id=message_id,
                reply_id=reply_id,
                history=[],  # read once stored (below)
                created=created,
                settings=await queries.settings(db, target),
            )

        await self._ready_to_claim()
        exchange = await self._write(write, brief=len(content) <= BRIEF_TEXT)
        if exchange is None or exchange.duplicate:
            return exchange
        # Read once the question is stored, not in its write: a long chat's history held the
        # writer, and so every answer's chunks, as long as it took. The chat streams the reply
        # from now on: no message can join the history meanwhile (an edit may change one, and
        # the model then gets the edited text).
        chat_id, reply_id = exchange.chat.id, exchange.reply_id
        history = await self._read(
            lambda db: queries.history(db, chat_id, reply_id), brief=exchange.chat.message_count <= BRIEF_HISTORY
        )
        return dataclasses.replace(exchange, history=history)

    async def _insert_reply(
        self, db: Db, reply_id: str, chat_id: str, user: str, model_id: str | None, reply_to: str, now: float
    ) -> None:
        """Insert an empty streaming reply, claimed by this node."""
        columns, values, claim = self._reply_claim()
        await db.execute(
            "INSERT INTO messages (id, chat_id, owner, role, content, status, model_id, reply_to, created_at"
            f"{columns}) VALUES (?, ?, ?, 'assistant', '', 'streaming', ?, ?, ?{values})",
            reply_id, chat_id, user, model_id, reply_to, now, *claim,
        )  # fmt: skip

    async def store_part(self, user: str, part: AttachmentPart, *, unsent_limit: int, expire_before: float) -> int:
        key = part.client_attachment_id
        select = f"SELECT id, {UPLOAD_COLUMNS} FROM attachments WHERE owner = ? AND client_attachment_id = ?"
        select += self.dialect.lock  # a part of the same upload on another node waits for this one

        async def write(db: Db) -> int:
            row = await db.fetchrow(select, user, key)
            if row is None:
                if part.offset != 0:
                    return 0
                await queries.drop_expired_uploads(db, user, expire_before)
                unsent = await db.fetchval(
                    "SELECT COALESCE(SUM(size), 0) FROM attachments WHERE owner = ? AND message_id IS NULL", user
                )
                if unsent + part.size > unsent_limit:
                    raise UploadTooLarge(int(unsent))
                # A twin first part on another node makes this insert nothing: then its row is read.
                await db.execute(
                    "INSERT INTO attachments (id, owner, client_attachment_id, name, media_type, size, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    new_id(), user, key, part.name, part.media_type, part.size, time.time(),
                )  # fmt: skip
                row = await db.fetchrow(select, user, key)
                assert row is not None  # inserted, or its twin's, in this transaction
            attachment_id, upload = row[0], upload_of(row[1:])
            check_same_upload(upload, part)
            if upload.sent:
                return upload.size
            if part.offset != upload.received:
                return upload.received
            if part.data:
                await db.execute(
                    "INSERT INTO attachment_parts (attachment_id, start, data) VALUES (?, ?, ?)",
                    attachment_id, part.offset, part.data,
                )  # fmt: skip
                await db.execute(
                    "UPDATE attachments SET received = received + ? WHERE id = ?", len(part.data), attachment_id
                )
            return upload.received + len(part.data)

        return await self._write(write)

    async def uploads(self, user: str, client_attachment_ids: list[str]) -> dict[str, Upload]:
        if not client_attachment_ids:
            return {}
        marks = ", ".join("?" * len(client_attachment_ids))

        async def read(db: Db) -> dict[str, Upload]:
            rows = await db.fetch(
                f"SELECT {UPLOAD_COLUMNS} FROM attachments WHERE owner = ? AND client_attachment_id IN ({marks})",
                user, *client_attachment_ids,
            )  # fmt: skip
            return {upload.client_attachment_id: upload for upload in map(upload_of, rows)}

        return await self._read(read)

    async def find_exchange(self, user: str, client_message_id: str) -> Exchange | None:
        mine = self._claimed_here()
        return await self._read(lambda db: queries.known_exchange(db, user, client_message_id, mine), brief=True)

    async def finish_message(
        self,
        message_id: str,
        content: str,
        status: Status,
        finish_reason: str,
        seq: int,
        figures: AnswerFigures | None = None,
        *,
        reasoning: str = "",
    ) -> ChatSummary:
        async def write(db: Db) -> ChatSummary:
            now = time.time()
            # Still streaming, and still this node's: another node may have ended it (this node lost its lease).
            fence, token = self._fence()
            chat_id = await db.fetchval(
                "UPDATE messages SET content = ?, reasoning = ?, status = ?, finish_reason = ?, seq = ?, ended_at = ?,"
                " prompt_tokens = ?, completion_tokens = ?, first_token_ms = ?, tokens_per_second = ?"
                f"{self.dialect.ended} WHERE id = ? AND status = 'streaming'{fence} RETURNING chat_id",
                content, reasoning, status, finish_reason, seq, now, *figures_values(figures), message_id, *token,
            )  # fmt: skip
            if chat_id is None:
                raise LookupError(f"message {message_id} is gone or was ended by another node")
            await db.execute("UPDATE chats SET updated_at = ? WHERE id = ?", now, chat_id)
            chat = await queries.summary(db, chat_id)
            if chat is None:  # another node deleted the chat as this reply was inserted: as good as gone
                raise LookupError(f"the chat of message {message_id} is gone")
            return chat

        return await self._write(write, brief=len(content) + len(reasoning) <= BRIEF_TEXT)

    async def chat(self, user: str, chat_id: str) -> ChatSummary | None:
        return await self._read(lambda db: queries.summary(db, chat_id, user), brief=True)

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
        async def read(db: Db) -> ChatDetail | None:
            async with db.snapshot():  # one snapshot for the chat, its messages and their chunks
                chat = await queries.summary(db, chat_id, user)
                if chat is None:
                    return None
                settings = await queries.settings(db, chat_id)
                if offset is None and at is None:
                    count, first, last = await queries.page_before(db, chat_id, limit, before)
                else:
                    count, first, last = await queries.page_from(db, chat_id, limit, offset or 0, at)
                page_offset = int(
                    await db.fetchval("SELECT COUNT(*) FROM messages WHERE chat_id = ? AND n < ?", chat_id, first)
                )
                if not count:
                    return ChatDetail(chat=chat, messages=[], settings=settings, offset=page_offset)
                messages = await queries.page_messages(db, chat_id, first, last)
                cursor = messages[0].id if page_offset else None
                return ChatDetail(
                    chat=chat, messages=messages, next_cursor=cursor, settings=settings, offset=page_offset
                )

        return await self._read(read)

    async def message_text(
        self, user: str, chat_id: str, message_id: str, offset: int, limit: int
    ) -> tuple[str, int] | None:
        async def read(db: Db) -> tuple[str, int] | None:
            async with db.snapshot():  # a reply that ends meanwhile: its chunks and its row agree
                # Cut by the database: a message of many MB is never read whole for one part.
                row = await db.fetchrow(
                    "SELECT status, substr(content, ?, ?), length(content) FROM messages"
                    " WHERE id = ? AND chat_id = ? AND owner = ?",
                    offset + 1, limit, message_id, chat_id, user,
                )  # fmt: skip
                if row is None:
                    return None
                status, part, length = row
                if status == "streaming":
                    content, _, _ = await queries.streamed_so_far(db, message_id)
                    return content[offset : offset + limit], len(content)
                return part, int(length)

        return await self._read(read)

    async def list_chats(self, user: str, limit: int, before: str | None, archived: bool = False) -> ChatPage:
        query = f"SELECT {SUMMARY_COLUMNS} FROM chats WHERE owner = ? AND archived = ?"
        params: list[Any] = [user, archived]
        if before:
            # A row value: after the cursor's place in the (descending) order, whichever column decides.
            query += " AND (pinned, updated_at, id) < (?, ?, ?)"
            params += parse_cursor(before)
        query += " ORDER BY pinned DESC, updated_at DESC, id DESC LIMIT ?"

        async def read(db: Db) -> ChatPage:
            rows = await db.fetch(query, *params, limit + 1)
            chats = [summary_of(row) for row in rows[:limit]]
            cursor = page_cursor(rows[limit - 1]) if len(rows) > limit else None
            return ChatPage(chats=chats, next_cursor=cursor)

        return await self._read(read)

    async def search(self, user: str, words: list[str], limit: int, before: str | None) -> SearchResults:
        dialect = self.dialect

        async def read(db: Db) -> SearchResults:
            async with db.snapshot():  # one snapshot for the cursor and the hits
                end = END_OF_CHAT
                if before is not None:
                    end = await db.fetchval("SELECT n FROM messages WHERE id = ? AND owner = ?", before, user)
                    if end is None:
                        raise BadCursor("'before' is not a cursor from an earlier search")
                query = dialect.search_words(words)
                rows = await db.fetch(dialect.search_sql, INDEXED_CHARS, query, end, user, limit + 1)
            hits = [hit_of(row, words) for row in rows[:limit]]
            return SearchResults(hits=hits, next_cursor=hits[-1].message_id if len(rows) > limit else None)

        return await self._read(read)

    async def chats_page(self, user: str, offset: int, limit: int) -> tuple[list[ListedChat], int]:
        async def read(db: Db) -> tuple[list[ListedChat], int]:
            async with db.snapshot():  # one snapshot for the page and the total
                rows = await db.fetch(
                    f"SELECT {SUMMARY_COLUMNS}, created_at FROM chats WHERE owner = ?"
                    " ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?",
                    user, limit, offset,
                )  # fmt: skip
                total = await db.fetchval("SELECT COUNT(*) FROM chats WHERE owner = ?", user)
            return [ListedChat(summary_of(row[:-1]), row[-1]) for row in rows], int(total)

        return await self._read(read)

    async def update_chat(self, user: str, chat_id: str, change: ChatChange) -> UpdatedChat | None:
        columns = changed_columns(change, time.time())
        assignments = ", ".join(f"{column} = ?" for column, _ in columns)

        async def write(db: Db) -> UpdatedChat | None:
            row = await db.fetchrow(
                f"UPDATE chats SET {assignments} WHERE id = ? AND owner = ?"
                f" RETURNING {SUMMARY_COLUMNS}, {SETTINGS_COLUMNS}",
                *(value for _, value in columns), chat_id, user,
            )  # fmt: skip
            if row is None:
                return None
            split = len(SUMMARY_COLUMNS.split(","))
            return UpdatedChat(chat=summary_of(row[:split]), settings=settings_of(row[split:]))

        return await self._write(write)

    async def delete_chat(self, user: str, chat_id: str) -> ChatSummary | None:
        async def write(db: Db) -> ChatSummary | None:
            chat = await queries.summary(db, chat_id, user)
            if chat is None:
                return None
            await delete_chats(db, [chat_id])
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
        async def write(db: Db) -> Edit | None:
            if client_edit_id is None:
                return await apply(db)
            known = await queries.known_edit(db, user, client_edit_id)
            if known is not None:
                return known
            try:
                # A savepoint: the same edit committed by another node meanwhile undoes only this.
                async with db.savepoint():
                    return await apply(db)
            except Exception as error:
                if self.dialect.violated_index(error) == EDITS_KEY:
                    return await queries.known_edit(db, user, client_edit_id)
                raise

        async def apply(db: Db) -> Edit | None:
            row = await db.fetchrow(
                "SELECT n, role, model_id FROM messages WHERE id = ? AND chat_id = ? AND owner = ?",
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
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    user, client_edit_id, chat_id, message_id, content, now,
                )  # fmt: skip
            await db.execute("UPDATE messages SET content = ?, edited_at = ? WHERE id = ?", content, now, message_id)
            reply_id = history = None
            if regenerate:
                reply_id = await self._regenerate(db, chat_id, user, n, model_id, message_id, now)
                history = await queries.history(db, chat_id, reply_id)
            await db.execute(
                "UPDATE chats SET updated_at = ?,"
                " message_count = (SELECT COUNT(*) FROM messages WHERE chat_id = ?) WHERE id = ?",
                now, chat_id, chat_id,
            )  # fmt: skip
            if client_edit_id is not None and reply_id is not None:
                await db.execute(
                    "UPDATE edits SET reply_id = ? WHERE owner = ? AND client_edit_id = ?",
                    reply_id, user, client_edit_id,
                )  # fmt: skip
            chat = await queries.summary(db, chat_id)
            if chat is None:
                # Another node deleted it after the message was read: raising undoes this edit's rows.
                raise LookupError(f"chat {chat_id} was deleted meanwhile")
            settings = await queries.settings(db, chat_id)
            return Edit(chat, message_id, content, edited_at=now, reply_id=reply_id, history=history, settings=settings)

        if regenerate:
            await self._ready_to_claim()
        return await self._write(write)

    async def _regenerate(
        self, db: Db, chat_id: str, user: str, n: int, model_id: str | None, message_id: str, now: float
    ) -> str:
        """Drop what follows message ``n`` and add a streaming reply to it; the reply's id.

        Raises:
            ChatBusy: a reply is streaming in the chat.
        """
        if await db.fetchrow(_STREAMING, chat_id) is not None:
            raise ChatBusy(_BUSY)
        later = "SELECT id FROM messages WHERE chat_id = ? AND n > ?"
        await db.execute(f"DELETE FROM chunks WHERE message_id IN ({later})", chat_id, n)
        files = f"SELECT id FROM attachments WHERE chat_id = ? AND message_id IN ({later})"
        await db.execute(f"DELETE FROM attachment_parts WHERE attachment_id IN ({files})", chat_id, chat_id, n)
        await db.execute(f"DELETE FROM attachments WHERE chat_id = ? AND message_id IN ({later})", chat_id, chat_id, n)
        await db.execute("DELETE FROM messages WHERE chat_id = ? AND n > ?", chat_id, n)
        reply_id = new_id()
        try:
            async with db.savepoint():
                await self._insert_reply(db, reply_id, chat_id, user, model_id, message_id, now)
        except Exception as error:
            if self.dialect.violated_index(error) == ONE_STREAMING_REPLY:  # another node started one meanwhile
                raise ChatBusy(_BUSY) from None
            raise
        return reply_id

    async def find_edit(self, user: str, client_edit_id: str) -> Edit | None:
        return await self._read(lambda db: queries.known_edit(db, user, client_edit_id), brief=True)

    async def import_progress(self, user: str, import_key: str) -> tuple[ChatSummary, int] | None:
        async def read(db: Db) -> tuple[ChatSummary, int] | None:
            row = await db.fetchrow(
                f"SELECT {SUMMARY_COLUMNS}, imported FROM chats WHERE owner = ? AND import_key = ?", user, import_key
            )
            return (summary_of(row[:-1]), row[-1]) if row else None

        return await self._read(read)

    async def import_chat(self, user: str, part: ImportChat) -> Imported:
        key = part.import_key
        # Locked: a part of the same conversation on another node waits, then finds this one's entries.
        select = "SELECT id, imported FROM chats WHERE owner = ? AND import_key = ?" + self.dialect.lock

        async def write(db: Db) -> Imported:
            found = await db.fetchrow(select, user, key)
            if found is not None:
                return await self._import_entries(db, user, part, found[0], found[1], created=False)
            chat_id = new_id()
            new_entries(part, 0)  # a later part first: refused before the chat is made
            try:
                # A savepoint: the same conversation created by another node meanwhile undoes only this.
                async with db.savepoint():
                    await db.execute(
                        "INSERT INTO chats (id, owner, title, created_at, updated_at, import_key)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        chat_id, user, part.title, part.created_at.timestamp(), part.updated_at.timestamp(), key,
                    )  # fmt: skip
            except Exception as error:
                if self.dialect.violated_index(error) != IMPORT_KEYS:
                    raise
                found = await db.fetchrow(select, user, key)
                assert found is not None  # its twin, committed
                return await self._import_entries(db, user, part, found[0], found[1], created=False)
            return await self._import_entries(db, user, part, chat_id, 0, created=True)

        return await self._write(write)

    async def _import_entries(
        self, db: Db, user: str, part: ImportChat, chat_id: str, stored: int, *, created: bool
    ) -> Imported:
        """Add the entries of ``part`` that the user's chat, holding ``stored`` of them, lacks."""
        entries = new_entries(part, stored)
        last = await db.fetchrow(
            "SELECT id, created_at FROM messages WHERE chat_id = ? ORDER BY n DESC LIMIT 1", chat_id
        )
        last_id, when = last if last else (None, part.created_at.timestamp())
        for entry in entries:
            if entry.continued and last_id is not None:
                await db.execute("UPDATE messages SET content = content || ? WHERE id = ?", entry.content, last_id)
                continue
            last_id = new_id()
            when = entry.created_at.timestamp() if entry.created_at else when
            await db.execute(
                "INSERT INTO messages (id, chat_id, owner, role, content, status, finish_reason, created_at,"
                " ended_at) VALUES (?, ?, ?, ?, ?, 'complete', ?, ?, ?)",
                last_id, chat_id, user, entry.role, entry.content, imported_finish_reason(entry.role), when, when,
            )  # fmt: skip
        if entries:
            await db.execute(
                f"UPDATE chats SET imported = ?, updated_at = {self.dialect.greatest}(updated_at, ?),"
                " message_count = (SELECT COUNT(*) FROM messages WHERE chat_id = ?) WHERE id = ?",
                stored + len(entries), part.updated_at.timestamp(), chat_id, chat_id,
            )  # fmt: skip
        chat = await queries.summary(db, chat_id)
        assert chat is not None  # locked or created above, in this transaction
        return Imported(chat, created, stored + len(entries), len(entries))

    async def message_state(self, user: str, chat_id: str, message_id: str | None) -> MessageState | None:
        async def read(db: Db) -> MessageState | None:
            if message_id is None:
                row = await db.fetchrow(
                    f"SELECT {STATE_COLUMNS} FROM messages WHERE chat_id = ? AND owner = ? AND role = 'assistant'"
                    " ORDER BY n DESC LIMIT 1",
                    chat_id, user,
                )  # fmt: skip
            else:
                row = await db.fetchrow(
                    f"SELECT {STATE_COLUMNS} FROM messages WHERE id = ? AND chat_id = ? AND owner = ?",
                    message_id, chat_id, user,
                )  # fmt: skip
            return state_of(row) if row else None

        return await self._read(read, brief=True)

    async def stored_bytes(self, user: str) -> int:
        async def read(db: Db) -> int:
            return int(
                await db.fetchval(
                    "SELECT (SELECT COALESCE(SUM(bytes), 0) FROM chats WHERE owner = ?)"
                    " + (SELECT COALESCE(SUM(received), 0) FROM attachments WHERE owner = ?)",
                    user,
                    user,
                )  # fmt: skip
            )

        return await self._read(read, brief=True)

    async def users_deleted_after(self, after: int | None) -> tuple[int, list[str]]:
        return await self._read(lambda db: users_deleted_after(db, after))

    async def chunks_after(self, message_id: str, seq: int) -> list[tuple[int, str, bool]]:
        async def read(db: Db) -> list[tuple[int, str, bool]]:
            rows = await db.fetch(
                "SELECT seq, content, reasoning FROM chunks WHERE message_id = ? AND seq > ? ORDER BY seq",
                message_id, seq,
            )  # fmt: skip
            return [(row[0], row[1], bool(row[2])) for row in rows]

        return await self._read(read)

    async def prune_chunks(self, ended_before: float) -> int:
        return await self._write(
            lambda db: db.execute(
                "DELETE FROM chunks WHERE message_id IN"
                " (SELECT id FROM messages WHERE role = 'assistant' AND ended_at < ?)",
                ended_before,
            )
        )

    async def prune_chats(self, updated_before: float, limit: int) -> list[tuple[str, ChatSummary]]:
        # Oldest first, so a run cut short by the limit takes the rest the next time.
        select = (
            f"SELECT owner, {SUMMARY_COLUMNS} FROM chats WHERE updated_at < ?"
            " AND NOT EXISTS (SELECT 1 FROM messages WHERE chat_id = chats.id AND status = 'streaming')"
            " ORDER BY updated_at LIMIT ?" + self.dialect.lock_skip_locked
            # A chat a write of another node holds (a message arriving) is passed over.
        )

        async def write(db: Db) -> list[tuple[str, ChatSummary]]:
            if not await self._retention_turn(db):
                return []
            rows = await db.fetch(select, updated_before, limit)
            await delete_chats(db, [row[1] for row in rows])
            return [(row[0], summary_of(row[1:])) for row in rows]

        return await self._write(write)

    async def _retention_turn(self, db: Db) -> bool:
        """True if this node may prune old chats now (in the transaction that prunes them).

        A database that only one node uses (SQLite): always.
        """
        return True

    async def _end_interrupted(self, db: Db, where: str, *args: Any) -> list[Interrupted]:
        """End the streaming replies matching ``where``: their chunks become the text, marked interrupted.

        Runs inside the caller's transaction. Each is ended exactly once: a
        reply another node is ending right now is left to it (``Dialect.lock_skip_locked``).
        """
        now = time.time()
        rows = await db.fetch(
            f"SELECT id, chat_id, owner FROM messages WHERE status = 'streaming' AND ({where})"
            + self.dialect.lock_skip_locked,
            *args,
        )
        interrupted = []
        for message_id, chat_id, owner in rows:
            content, reasoning, seq = await queries.streamed_so_far(db, message_id)
            await db.execute(
                "UPDATE messages SET content = ?, reasoning = ?, seq = ?, status = 'error',"
                f" finish_reason = 'interrupted', ended_at = ?{self.dialect.ended} WHERE id = ?",
                content, reasoning, seq, now, message_id,
            )  # fmt: skip
            await db.execute("UPDATE chats SET updated_at = ? WHERE id = ?", now, chat_id)
            chat = await queries.summary(db, chat_id)
            if chat is None:  # another node deleted the chat as this reply was inserted: nobody is left to tell
                continue
            interrupted.append(Interrupted(user=owner, chat=chat, message_id=message_id, seq=seq))
        return interrupted
