"""The requests of ``ChatClient``: each sends one frame and waits for its ``result``.

``ChatRequests`` holds what a client can ask the server (the chat list, a
chat's pages, search, renames, imports...) and what it answers from the read
cache while offline. How a request travels (waiting for a connection, the
timeout, failing when the connection drops) is the driver's: ``ChatClient``
implements ``_request``.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

import msgspec

from mfu_tui.client.errors import ClientError, RequestError
from mfu_tui.client.import_parts import import_entries, next_part
from mfu_tui.client.read_cache import ReadCache
from mfu_tui.client.safe_text import clean_marked, clean_text
from mfu_tui.client.session import ChatSession
from mfu_tui.protocol import (
    MAX_TITLE_LENGTH,
    SENT_MESSAGE_CHARS,
    ChatDetail,
    ChatPage,
    ChatParams,
    ChatSummary,
    DeleteChat,
    GetChat,
    GetMessageText,
    ImportChat,
    ImportedMessage,
    ImportResult,
    ListChats,
    ListModels,
    MessageText,
    ModelList,
    RenameChat,
    Request,
    Search,
    SearchResults,
    StoredMessage,
    UpdateChat,
    UpdatedChat,
)

log = logging.getLogger("mfu_tui.client")

_T = TypeVar("_T")

#: Times a request sent until answered (a part of a long message; ``import_chat``, which the server
#: applies once) is sent before its failure is the caller's.
ATTEMPTS_OF_IDEMPOTENT_REQUESTS = 5


class ChatRequests(abc.ABC):
    """The requests a client makes, over a connection its subclass holds."""

    #: The chat list and the chats opened, kept for reading offline (``None``: not kept).
    read_cache: ReadCache | None
    #: The session's rules; a deleted chat leaves its subscriptions.
    session: ChatSession

    @abc.abstractmethod
    async def _request(self, frame: Request, kind: type[_T] | None, *, clean: Callable[[_T], _T] | None = None) -> _T:
        """Send a request and wait for its ``result``, typed as ``kind`` and cleaned."""

    @abc.abstractmethod
    def _running(self) -> bool:
        """Whether the connection worker runs (a request sent again may yet be answered)."""

    async def list_chats(
        self, limit: int | None = None, before: str | None = None, *, archived: bool = False
    ) -> ChatPage:
        """A page of the chat list, pinned chats first, each part newest first; ``archived``: the archived ones."""
        frame = ListChats(request_id=new_id(), limit=limit, before=before, archived=archived)
        page = await self._request(frame, ChatPage)
        # The kept copy is the list a user reads offline: the chats not archived.
        if self.read_cache is not None and before is None and not archived:
            await asyncio.to_thread(self.read_cache.keep_chats, page.chats)
        return page

    async def get_chat(
        self,
        chat_id: str,
        *,
        before: str | None = None,
        offset: int | None = None,
        at: str | None = None,
        limit: int | None = None,
    ) -> ChatDetail:
        """One chat with a page of its messages, oldest first.

        The newest ones by default; give at most one of ``before``, ``offset``
        and ``at`` for another page. The page's ``offset`` says where it is in
        the chat, so a page can be placed anywhere.

        Args:
            chat_id: The chat.
            before: The ``next_cursor`` of a page already loaded, to get the messages before it.
            offset: The index of the page's first message (0: the chat's first).
            at: A message of the chat, to get the page that starts with it.
            limit: At most this many messages (the server's default if ``None``).

        Raises:
            ProtocolError: more than one of ``before``, ``offset`` and ``at``.
        """
        frame = GetChat(request_id=new_id(), chat_id=chat_id, before=before, offset=offset, at=at, limit=limit)
        detail = await self._request(frame, ChatDetail)
        # Only the newest page is kept for reading offline (the one a chat opens with).
        if self.read_cache is not None and before is None and offset is None and at is None:
            await asyncio.to_thread(self.read_cache.keep_chat, detail)
        return detail

    async def get_whole_chat(self, chat_id: str) -> ChatDetail:
        """One chat with all its messages whole, oldest first, asked for a page at a time (for an export)."""
        detail = await self.get_chat(chat_id)
        pages = [detail.messages]
        while detail.next_cursor is not None:
            detail = await self.get_chat(chat_id, before=detail.next_cursor)
            pages.append(detail.messages)
        messages = [await self.whole_message(chat_id, message) for page in reversed(pages) for message in page]
        return ChatDetail(chat=detail.chat, messages=messages)

    async def whole_message(self, chat_id: str, message: StoredMessage) -> StoredMessage:
        """``message`` of a page with its whole text: the same one unless it came cut (``truncated``)."""
        if not message.truncated:
            return message
        content = await self.message_text(chat_id, message)
        return msgspec.structs.replace(message, content=content, truncated=False)

    async def message_text(self, chat_id: str, message: StoredMessage) -> str:
        """The whole text of ``message`` of chat ``chat_id``, cleaned: the rest of one that came cut.

        The rest is asked for a part at a time (``get_message_text``), from
        where the cut ``content`` ends, each part from where the server says
        the one before ended (the cleaned text may be shorter). A part lost
        with its connection, or not answered, is asked for again from the
        same place once connected (``_request_until_answered``).

        Raises:
            RequestError: the server refused a part (``not_found``: the message
                was deleted; ``bad_request``: it was edited, shorter, meanwhile).
            ClientError: the worker stopped, or the connection stayed away through every attempt.
            TimeoutError: a part was not answered through every attempt.
        """
        if not message.truncated:
            return message.content
        pieces, offset = [message.content], SENT_MESSAGE_CHARS
        while True:
            frame = GetMessageText(request_id=new_id(), chat_id=chat_id, message_id=message.id, offset=offset)
            part = await self._request_until_answered(frame, MessageText)
            pieces.append(part.text)
            if part.next_offset >= part.total_chars:
                return "".join(pieces)
            if part.next_offset <= offset:  # a server that sends nothing would be asked forever
                raise ClientError(f"the server sent nothing of message {message.id} past character {offset}")
            offset = part.next_offset

    async def find_message(self, chat_id: str, message_id: str) -> StoredMessage | None:
        """A stored message as the server has it now (its figures included), or None if it is gone.

        Looked for from the newest page back: it is nearly always on the first.
        """
        detail = await self.get_chat(chat_id)
        while True:
            found = next((message for message in detail.messages if message.id == message_id), None)
            if found is not None or detail.next_cursor is None:
                return found
            detail = await self.get_chat(chat_id, before=detail.next_cursor)

    async def rename_chat(self, chat_id: str, title: str) -> ChatSummary:
        """Rename a chat; returns it as the list shows it."""
        return await self._request(RenameChat(request_id=new_id(), chat_id=chat_id, title=title), ChatSummary)

    async def update_chat(
        self,
        chat_id: str,
        *,
        title: str | None = None,
        system_prompt: str | None = None,
        params: ChatParams | None = None,
        pinned: bool | None = None,
        archived: bool | None = None,
    ) -> UpdatedChat:
        """Change a chat; ``None`` leaves a field as it is. Returns the chat and its settings after the change.

        ``system_prompt=""`` removes the prompt; ``params`` replaces all four parameters.

        Raises:
            ProtocolError: nothing to change.
            RequestError: the server refused it (``bad_request`` naming a value out of range, ``not_found``).
        """
        frame = UpdateChat(
            request_id=new_id(),
            chat_id=chat_id,
            title=title,
            system_prompt=system_prompt,
            params=params,
            pinned=pinned,
            archived=archived,
        )
        return await self._request(frame, UpdatedChat)

    async def delete_chat(self, chat_id: str) -> None:
        """Delete a chat and its messages."""
        await self._request(DeleteChat(request_id=new_id(), chat_id=chat_id), None)
        self.session.forget_chat(chat_id)
        await self._forget_cached(chat_id)

    # --- Reading offline -------------------------------------------------------

    async def cached_chats(self) -> list[ChatSummary]:
        """The chat list as last received (empty without ``keep_for_offline``)."""
        return [] if self.read_cache is None else await asyncio.to_thread(self.read_cache.chats)

    async def cached_chat(self, chat_id: str) -> ChatDetail | None:
        """A chat's newest page as last received, or ``None``."""
        return None if self.read_cache is None else await asyncio.to_thread(self.read_cache.chat, chat_id)

    async def search_cached(self, query: str) -> SearchResults:
        """Like ``search``, in the chats kept for reading offline (their newest page each)."""
        if self.read_cache is None:
            return SearchResults(hits=[])
        return await asyncio.to_thread(self.read_cache.search, query)

    async def _keep_listed(self, chat: ChatSummary) -> None:
        if self.read_cache is not None:
            await asyncio.to_thread(self.read_cache.keep_listed, chat)

    async def _forget_cached(self, chat_id: str) -> None:
        if self.read_cache is not None:
            await asyncio.to_thread(self.read_cache.forget_chat, chat_id)

    async def list_models(self) -> ModelList:
        """The models the server can use."""
        return await self._request(ListModels(request_id=new_id()), ModelList)

    async def search(self, query: str, *, limit: int | None = None, before: str | None = None) -> SearchResults:
        """The messages of the user's chats that hold every word of ``query``, newest first.

        Chat titles and snippets come cleaned (``clean_text``), and each hit's
        ``highlights`` are offsets into its cleaned snippet.

        Args:
            query: Plain words, as typed; the last one also matches the start of a longer word.
            limit: At most this many hits (the server's default if ``None``).
            before: The ``next_cursor`` of an earlier page of the same search, for the older hits.

        Raises:
            ProtocolError: ``query`` has no words (``protocol.search_words`` says), or is too long.
            RequestError: the server refused it (``bad_request``: a cursor it did not hand out).
        """
        frame = Search(request_id=new_id(), query=query, limit=limit, before=before)
        return await self._request(frame, SearchResults, clean=_clean_results)

    async def import_chat(
        self,
        import_key: str,
        title: str,
        created_at: datetime,
        updated_at: datetime,
        messages: Sequence[ImportedMessage],
    ) -> ImportResult:
        """Store a conversation from elsewhere as one chat, once per ``import_key``.

        The messages go whole, any length: the client cuts them into entries
        and frames (``import_parts``). Each part is sent until answered, across
        reconnects; the server stores each entry once, so an import cut short
        goes on where it stopped when called again, and one already done
        stores nothing (``created`` false, ``added`` 0).

        Args:
            import_key: Names the conversation where it came from, e.g. ``chatgpt:<its id>``.
            title: The chat's title; cut at 200 characters.
            created_at: When the conversation began (aware).
            updated_at: When it last changed: the chat's place in the list.
            messages: Oldest first; an empty one is left out.

        Returns:
            The chat, whether this call created it, the entries stored and those this call added.

        Raises:
            ValueError: no message has any text.
            RequestError: the server refused it (``quota_exceeded``...).
            ClientError: the connection stopped (auth refused...) or stayed away through every attempt.
        """
        entries = import_entries(messages)
        if not entries:
            raise ValueError("a conversation to import needs a message with some text")
        frame = ImportChat(
            request_id=new_id(),
            import_key=import_key,
            title=title[:MAX_TITLE_LENGTH],
            created_at=created_at,
            updated_at=updated_at,
            first=0,
            total=len(entries),
            messages=entries[:1],
        )
        created, added, first = False, 0, 0
        while True:
            part = msgspec.structs.replace(next_part(frame, entries, first), request_id=new_id())
            result = await self._request_until_answered(part, ImportResult)
            created, added = created or result.created, added + result.added
            if result.stored >= len(entries):
                return ImportResult(chat=result.chat, created=created, stored=result.stored, added=added)
            if result.stored <= first:  # a server that stores nothing would be asked forever
                raise ClientError(f"the server stored nothing of {import_key} past entry {first}")
            first = result.stored  # where the server is: past a part stored before, on resuming

    async def _request_until_answered(self, frame: Request, kind: type[_T]) -> _T:
        """``_request``, sent again after a dropped connection or a silence: for reads, and requests applied once."""
        attempts = 1
        while True:
            try:
                return await self._request(frame, kind)
            except RequestError:
                raise
            except (ClientError, TimeoutError) as error:
                if not self._running() or attempts == ATTEMPTS_OF_IDEMPOTENT_REQUESTS:
                    raise
                log.info("%s not answered (%s): sending it again", type(frame).__name__, error or "no answer")
                attempts += 1


def _clean_results(results: SearchResults) -> SearchResults:
    """Search results with their titles and snippets cleaned, each snippet's highlights moved to match."""
    hits = []
    for hit in results.hits:
        snippet, highlights = clean_marked(hit.snippet, hit.highlights)
        cleaned = msgspec.structs.replace(
            hit, chat_title=clean_text(hit.chat_title), snippet=snippet, highlights=highlights
        )
        hits.append(cleaned)
    return SearchResults(hits=hits, next_cursor=results.next_cursor)


def new_id() -> str:
    """A new random id (``clientMessageId``, ``requestId``...)."""
    return uuid.uuid4().hex
