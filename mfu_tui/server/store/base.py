"""What the server needs from storage, independent of the database.

Every method that names a chat or message takes the user too and behaves as
if other users' rows did not exist: ownership is enforced here, in the
queries, so no handler can forget it.
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
from typing import Literal

from mfu_tui.protocol import (
    AttachmentPart,
    ChatDetail,
    ChatPage,
    ChatParams,
    ChatSettings,
    ChatSummary,
    ImportChat,
    SearchResults,
    UpdatedChat,
    Usage,
)
from mfu_tui.server.model_input import ModelTurn
from mfu_tui.server.store.outage import OutageLog

Status = Literal["complete", "streaming", "cancelled", "error"]


class StoreUnavailable(OSError):
    """The database cannot be used (unreachable, refused us, a file we cannot write...); one line."""


class NotEditable(Exception):
    """Only user messages can be edited."""


class BadCursor(ValueError):
    """A ``before`` cursor that this store did not hand out."""


class ChatBusy(Exception):
    """An answer is already generating in this chat (on this node or another)."""


class ImportGap(ValueError):
    """An ``import_chat`` part starts past the entries stored of its conversation; the message says which."""


class UploadRefused(ValueError):
    """An ``attachment_part`` that cannot be stored; the message says why."""


class UploadTooLarge(UploadRefused):
    """The user's unsent uploads would hold more than they may (``too_large``)."""

    def __init__(self, held: int) -> None:
        super().__init__(f"unsent uploads hold {held} bytes")
        #: Bytes the user's unsent uploads hold already.
        self.held = held


class AttachmentsNotReady(ValueError):
    """A message names a file that is not whole, or was sent already (checked again as it is stored)."""


@dataclasses.dataclass(frozen=True)
class Upload:
    """Where one attachment upload stands."""

    client_attachment_id: str
    name: str
    media_type: str
    size: int
    #: Bytes stored so far, from the start.
    received: int
    #: True once a message took it: it can be sent with no other.
    sent: bool

    @property
    def whole(self) -> bool:
        """True when every byte is stored."""
        return self.received == self.size


@dataclasses.dataclass(frozen=True)
class Exchange:
    """A stored user message and the empty assistant reply that will answer it."""

    chat: ChatSummary
    user_message_id: str
    reply_id: str
    #: The conversation up to and including the user message, oldest first.
    history: list[ModelTurn]
    #: True when this ``message`` created the chat.
    created: bool = False
    #: True when the ``clientMessageId`` was already stored: nothing new was written.
    duplicate: bool = False
    #: What the reply is made with (read in the same transaction; the default for a duplicate).
    settings: ChatSettings = dataclasses.field(default_factory=ChatSettings)
    #: For a duplicate: its reply is streaming, claimed by this node, yet was never started (the
    #: database applied the write but its success was lost, as the connection dropped during the
    #: COMMIT). ``history`` and ``settings`` are then read, for the caller to start the answer.
    orphaned: bool = False


@dataclasses.dataclass(frozen=True)
class ChatChange:
    """What ``update_chat`` changes; ``None`` leaves a field as it is."""

    #: A new title is activity, as a rename always was: the chat moves to the top of its section.
    title: str | None = None
    #: ``""`` removes the prompt.
    system_prompt: str | None = None
    #: Replaces all four parameters.
    params: ChatParams | None = None
    pinned: bool | None = None
    archived: bool | None = None

    @property
    def settings_changed(self) -> bool:
        """True when the chat's ``ChatSettings`` change (so ``chat_updated`` carries them)."""
        return self.system_prompt is not None or self.params is not None


@dataclasses.dataclass(frozen=True)
class Edit:
    """The result of ``edit_message``."""

    chat: ChatSummary
    message_id: str
    content: str
    edited_at: float
    #: With ``regenerate``: the new assistant message and the history it answers.
    reply_id: str | None = None
    history: list[ModelTurn] | None = None
    #: True when the ``client_edit_id`` was already applied: nothing new was written (no ``history``).
    duplicate: bool = False
    #: With ``regenerate``: what the new reply is made with.
    settings: ChatSettings = dataclasses.field(default_factory=ChatSettings)


@dataclasses.dataclass(frozen=True)
class Imported:
    """The result of ``import_chat``."""

    chat: ChatSummary
    #: The part created the chat (its import key was not there).
    created: bool
    #: Entries of the conversation stored now.
    stored: int
    #: Entries this part stored (0: all of them were there already).
    added: int


@dataclasses.dataclass(frozen=True)
class AnswerFigures:
    """What the server measured of one answer; ``None`` where it is not known."""

    #: The tokens the model server reported.
    usage: Usage | None = None
    #: Milliseconds from the request upstream to the first piece of text.
    first_token_ms: int | None = None
    #: Completion tokens over the seconds from the first piece of text to the last.
    tokens_per_second: float | None = None


@dataclasses.dataclass(frozen=True)
class MessageState:
    """How far an assistant message got, for ``resume`` and ``cancel``."""

    id: str
    chat_id: str
    role: str
    status: Status
    seq: int
    finish_reason: str | None
    #: Seconds since the epoch when it stopped streaming; ``None`` while streaming.
    ended_at: float | None
    #: What was measured of it, for the ``complete`` frame a late follower gets.
    figures: AnswerFigures = dataclasses.field(default_factory=AnswerFigures)


@dataclasses.dataclass(frozen=True)
class Interrupted:
    """A reply whose generation died with its node, now stored as ended ("interrupted").

    Whoever follows it must be told: ``complete`` with this ``seq`` and a
    ``chat_updated`` for ``user``.
    """

    user: str
    chat: ChatSummary
    message_id: str
    #: The last chunk stored; the reply's text is chunks 1..seq.
    seq: int


@dataclasses.dataclass(frozen=True)
class ListedChat:
    """A chat of a numbered page (``chats_page``): its summary and when it was created."""

    chat: ChatSummary
    #: Seconds since the epoch.
    created_at: float


class Store(abc.ABC):
    """Chats, messages and the chunks of streamed replies."""

    outages: OutageLog
    """The database's outages: what meets one reports it here, which logs its start and its end."""

    @abc.abstractmethod
    async def open(self) -> list[Interrupted]:
        """Create or upgrade the schema; end the replies this node left streaming when it stopped.

        Returns:
            The replies it marked interrupted.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Commit everything queued, then release the database."""

    @abc.abstractmethod
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
        """Store a user message and an empty streaming reply, creating the chat if ``chat_id`` is None.

        ``settings`` are the new chat's, stored with it (ignored for an existing chat).
        ``attachments`` are the user's whole, unsent uploads (``clientAttachmentId``) that the
        message takes, in order; the caller checked them (``uploads``).

        Idempotent on ``(user, client_message_id)``: a known id returns the
        first exchange with ``duplicate=True``. Returns None if the chat is not the user's.

        Raises:
            ChatBusy: a reply is streaming in the chat already.
            AttachmentsNotReady: an attachment was taken by another message meanwhile (nothing is stored).
        """

    @abc.abstractmethod
    async def store_part(self, user: str, part: AttachmentPart, *, unsent_limit: int, expire_before: float) -> int:
        """Store a part of an upload if it starts where the stored bytes end; the bytes stored after it.

        Idempotent on ``(user, client_attachment_id, offset)``: a part at any
        other offset stores nothing. An upload taken by a message answers its
        size. A new upload first drops the user's unsent uploads created before
        ``expire_before``.

        Raises:
            UploadRefused: the part's name, type or size are not its upload's.
            UploadTooLarge: a new upload would make the user's unsent uploads hold more than ``unsent_limit``.
        """

    @abc.abstractmethod
    async def uploads(self, user: str, client_attachment_ids: list[str]) -> dict[str, Upload]:
        """The user's uploads of those ids (an id missing from the answer is none of the user's)."""

    @abc.abstractmethod
    async def find_exchange(self, user: str, client_message_id: str) -> Exchange | None:
        """The exchange stored for ``client_message_id`` (``duplicate=True``), or None.

        ``orphaned`` if its reply is still streaming and this node's: unless it runs here, nothing will end it.
        """

    @abc.abstractmethod
    def append_chunk(self, message_id: str, seq: int, content: str, *, reasoning: bool = False) -> asyncio.Future[None]:
        """Queue a chunk (of the reply's reasoning if ``reasoning``); the future resolves once it is committed.

        Chunks are committed in the order they were appended, so callbacks on
        these futures run in ``seq`` order.
        """

    @abc.abstractmethod
    def extend_chunk(self, message_id: str, seq: int, content: str, *, reasoning: bool = False) -> bool:
        """Add ``content`` to chunk ``seq`` if no commit has taken it yet; False if one has (or it is not the last).

        The text then commits with the chunk, under its future: pieces that
        come while the previous commit runs make one chunk, stored and sent
        together, and none waits longer than it would alone. ``reasoning``
        must be the chunk's own: the two kinds never share a chunk.
        """

    @abc.abstractmethod
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
        """Mark a reply ended with its full text, its reasoning apart, and what was measured of it.

        Returns its chat, updated.
        """

    @abc.abstractmethod
    async def chat(self, user: str, chat_id: str) -> ChatSummary | None:
        """One chat, or None."""

    @abc.abstractmethod
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
        """One chat with a page of its messages, or None (a streaming reply shows the text stored so far).

        The page holds the newest messages (those before message ``before`` if
        given), or, with ``offset`` or ``at``, the messages from that index or
        that message on; oldest first: at most ``limit``, fewer if their text
        passes ``rows.PAGE_CHARS``, and at least one (if there is one there).
        Its ``offset`` is the index of its first message in the chat (with
        none: where it would be).

        Raises:
            BadCursor: ``before`` or ``at`` is not a message of this chat.
        """

    @abc.abstractmethod
    async def message_text(
        self, user: str, chat_id: str, message_id: str, offset: int, limit: int
    ) -> tuple[str, int] | None:
        """Up to ``limit`` characters of a message's text from character ``offset`` on, and its length.

        None if ``user`` has no such message in that chat. A streaming reply's
        text is what its chunks hold so far; past the end, the text is empty.
        """

    @abc.abstractmethod
    async def list_chats(self, user: str, limit: int, before: str | None, archived: bool = False) -> ChatPage:
        """A page of the archived chats, or of the others: pinned first, each group most recently updated first.

        Raises:
            BadCursor: ``before`` is not a cursor from an earlier page.
        """

    @abc.abstractmethod
    async def search(self, user: str, words: list[str], limit: int, before: str | None) -> SearchResults:
        """The user's messages that hold every one of ``words``, newest first.

        A word matches whole, ignoring case; the last one also as a prefix.
        Only a message's first ``search.INDEXED_CHARS`` characters are
        indexed, and an answer only once it has ended.

        Args:
            user: Whose chats to search.
            words: From ``protocol.search_words``; at least one.
            limit: At most this many hits.
            before: A ``next_cursor`` of an earlier page: the hits older than it.

        Raises:
            BadCursor: ``before`` is not one of the user's messages.
        """

    @abc.abstractmethod
    async def chats_page(self, user: str, offset: int, limit: int) -> tuple[list[ListedChat], int]:
        """The user's chats from ``offset``, most recently updated first, and how many the user has.

        The numbered pages of the REST API; both come from one snapshot, so
        the total agrees with the page.
        """

    @abc.abstractmethod
    async def update_chat(self, user: str, chat_id: str, change: ChatChange) -> UpdatedChat | None:
        """Apply ``change`` to a chat; the chat and its settings after it, or None if it is not the user's.

        Only a new title is activity (``updated_at`` moves, as for a rename).
        Settings, pin and archive are not: the chat keeps its place within its
        section of the list.
        """

    async def set_pinned(self, user: str, chat_id: str, pinned: bool) -> ChatSummary | None:
        """Pin or unpin a chat; None if it is not the user's. ``updated_at`` stays (see ``update_chat``)."""
        updated = await self.update_chat(user, chat_id, ChatChange(pinned=pinned))
        return updated.chat if updated else None

    async def rename_chat(self, user: str, chat_id: str, title: str) -> ChatSummary | None:
        """Rename a chat; None if it is not the user's."""
        updated = await self.update_chat(user, chat_id, ChatChange(title=title))
        return updated.chat if updated else None

    @abc.abstractmethod
    async def delete_chat(self, user: str, chat_id: str) -> ChatSummary | None:
        """Delete a chat with its messages and chunks; returns what was deleted, or None."""

    @abc.abstractmethod
    async def edit_message(
        self,
        user: str,
        chat_id: str,
        message_id: str,
        content: str,
        regenerate: bool,
        client_edit_id: str | None = None,
    ) -> Edit | None:
        """Change a user message; with ``regenerate`` drop what follows and add a streaming reply.

        Idempotent on ``(user, client_edit_id)`` when one is given: a known id
        returns the first edit with ``duplicate=True`` and changes nothing.

        Raises:
            NotEditable: the message is an assistant message.
            ChatBusy: ``regenerate`` while a reply is streaming in the chat.
        """

    @abc.abstractmethod
    async def find_edit(self, user: str, client_edit_id: str) -> Edit | None:
        """The edit applied for ``client_edit_id`` (``duplicate=True``), or None."""

    @abc.abstractmethod
    async def import_progress(self, user: str, import_key: str) -> tuple[ChatSummary, int] | None:
        """The chat imported under ``import_key`` and how many entries of it are stored, or None."""

    @abc.abstractmethod
    async def import_chat(self, user: str, part: ImportChat) -> Imported:
        """Store a part of an imported conversation: create its chat on the first, then add what is new.

        Idempotent on ``(user, part.import_key)``: entries already stored are
        skipped, so a part sent again stores nothing. Messages are stored
        complete, with the times they carry (an entry without one takes the
        time of the message before it).

        Raises:
            ImportGap: the part starts past the entries stored.
        """

    @abc.abstractmethod
    async def message_state(self, user: str, chat_id: str, message_id: str | None) -> MessageState | None:
        """An assistant message of the user's chat (``None``: the latest one), or None."""

    @abc.abstractmethod
    async def stored_bytes(self, user: str) -> int:
        """Bytes of text (UTF-8) the user's chats hold: messages' content and the edits kept for idempotency,
        and the bytes of the user's attachments (sent or not).

        A sum over the user's chats of a count each chat keeps up to date in
        the transaction of every write: cheap enough to ask before every message.
        A reply counts from when it ends (its chunks are kept for a while only).
        """

    @abc.abstractmethod
    async def chunks_after(self, message_id: str, seq: int) -> list[tuple[int, str, bool]]:
        """Stored chunks with a ``seq`` above ``seq``, in order: ``(seq, text, True if reasoning)``."""

    async def renew_leases(self) -> None:
        """Extend this node's claim on the replies it is generating (see ``reap_expired``).

        A store that only one node uses (SQLite) has no leases: this does nothing.
        """

    def holds_lease(self) -> bool:
        """Whether this node's leases surely still hold: False once it went a lease without renewing them.

        A node that stalled (a VM paused) past its lease may have had its answers
        ended by another node meanwhile: it must not send what it had queued.
        A store that only one node uses (SQLite) has no leases: always True.
        """
        return True

    @abc.abstractmethod
    async def users_deleted_after(self, after: int | None) -> tuple[int, list[str]]:
        """The users an operator deleted (``mfu-chat admin delete-user``) after deletion number ``after``.

        Returns the number of the last deletion and those users; ``after=None`` gives
        the last number alone (where a node starts watching).
        """

    async def other_nodes(self) -> list[str]:
        """The names of the other nodes this store's database is used by now, as far as it can tell.

        A store that only one node uses (SQLite) has none.
        """
        return []

    async def reap_expired(self) -> list[Interrupted]:
        """End the streaming replies whose node stopped renewing their lease, as ``open`` does for its own.

        A store that only one node uses (SQLite) has no leases: this finds nothing.
        """
        return []

    @abc.abstractmethod
    async def prune_chunks(self, ended_before: float) -> int:
        """Drop the chunks of replies that ended before that time (their text is kept)."""

    @abc.abstractmethod
    async def prune_chats(self, updated_before: float, limit: int) -> list[tuple[str, ChatSummary]]:
        """Delete up to ``limit`` chats last updated before that time, oldest first, as ``delete_chat`` would.

        A chat with an answer streaming is never deleted. With several nodes on
        one database, one prunes at a time: on the others this deletes nothing.

        Returns:
            The deleted chats with their owners.
        """
