"""Typed frames of protocol v1, both directions.

Every frame is a msgspec ``Struct`` tagged by its ``type`` field, with
camelCase names on the wire (``chat_id`` here is ``chatId`` there). The
``ClientFrame`` and ``ServerFrame`` unions are what the codec decodes into.
See ``docs/protocol.md`` for the meaning of each frame.

Every field is sent, ``null`` included, so a peer never has to guess a
default; only ``message`` leaves out what it does not use, since the seed's
``messages`` array is never sent by us. Unknown fields are ignored rather than rejected so that a newer peer can add
fields without breaking an older one. Within each class, required fields come
before optional ones (a msgspec rule); construct frames with keywords.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from mfu_tui.protocol.errors import ProtocolError
from mfu_tui.protocol.search import search_words

PROTOCOL_VERSION = 1

#: Ids are opaque strings; the bound keeps a hostile frame from making us
#: store or echo megabytes in an id.
MAX_ID_LENGTH = 128
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
#: A sequence number of a streamed chunk; 0 means "nothing yet".
Seq = Annotated[int, msgspec.Meta(ge=0)]
#: Page sizes a client may ask for.
PageSize = Annotated[int, msgspec.Meta(ge=1, le=200)]
#: Most characters of a chat title.
MAX_TITLE_LENGTH = 200
#: Chat titles, as shown in the chat list.
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TITLE_LENGTH)]
#: Most characters of a ``search`` query.
MAX_QUERY_LENGTH = 500
#: A ``message``'s chat: ``""`` (the seed page's "no chat yet") means a new chat, like ``null``.
NewOrChatId = Annotated[str, msgspec.Meta(max_length=MAX_ID_LENGTH)] | None
#: The seed page names a message it edits by its own id, ``Date.now()``: a number.
PageMessageId = Id | Annotated[int, msgspec.Meta(ge=0)]
#: Most characters of a chat's system prompt: room for long instructions, well inside a 64 KiB frame.
MAX_SYSTEM_PROMPT = 20_000
#: Bounds of a chat's sampling parameters (the OpenAI API's).
MAX_TEMPERATURE = 2.0
MAX_TOP_P = 1.0
#: Most tokens an answer may be asked to stop at: an answer ends at 1,000,000 characters
#: anyway (``--max-answer-chars``), and a token is at least one character.
MAX_TOKENS = 1_000_000
#: A seed is a signed 64-bit integer, as the OpenAI API and both databases take it.
MIN_SEED, MAX_SEED = -(2**63), 2**63 - 1
SystemPrompt = Annotated[str, msgspec.Meta(max_length=MAX_SYSTEM_PROMPT)]
#: Most characters of one entry of an ``import_chat``: a longer message is sent as several
#: entries, the later ones ``continued``. A constant of the protocol, so that an entry's index
#: in its conversation is the same whichever client splits it, and a resumed import lines up.
#: 8,000 characters are at most 48,000 bytes of JSON (a control character is escaped in 6).
IMPORT_PIECE_CHARS = 8000
#: The media type of an attached text file: its text reaches the model in a fenced block.
TEXT_MEDIA_TYPE = "text/plain"
#: The image types the models take (OpenAI's image input); an attachment of another type is refused.
IMAGE_MEDIA_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
#: Characters of a message's text a ``get_chat`` page sends at most: a longer message comes cut
#: to exactly this many, marked ``truncated`` (a page stays under the client's frame limit even if
#: every character is JSON-escaped in 6 bytes). ``get_message_text`` gives the rest from here.
SENT_MESSAGE_CHARS = 2_000_000
#: Characters of a message's text one ``get_message_text`` answer carries at most: 6,000,000
#: bytes of JSON if every one is escaped, well under the client's 16 MiB frame limit.
MESSAGE_TEXT_PART_CHARS = 1_000_000
#: Bytes of a file one ``attachment_part`` carries at most. Base64 makes them 61,440 characters,
#: and the rest of the frame (ids and name at their longest, every character JSON-escaped in 6
#: bytes) stays under 4 KiB: a part is always under the 64 KiB frame limit.
ATTACHMENT_PART_BYTES = 45 * 1024
#: Bytes the files of one message may hold together on a server left at its default
#: (``--max-attachment-bytes``); clients check a file against it before queueing it.
DEFAULT_MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
#: Most characters of an attachment's file name.
MAX_ATTACHMENT_NAME = 255
#: Most attachments one message carries.
MAX_ATTACHMENTS = 16
AttachmentName = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ATTACHMENT_NAME)]
#: Media types are short ASCII words (``image/png``); the bound keeps the frame's size known.
MediaType = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


#: What a ``server_status`` says of the server's storage.
StorageState = Literal["ok", "unavailable"]


class ErrorCode(str, enum.Enum):
    """Codes of ``error`` frames. Peers must accept codes not listed here."""

    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    RATE_LIMITED = "rate_limited"
    TOO_LARGE = "too_large"
    QUOTA_EXCEEDED = "quota_exceeded"
    PROVIDER_ERROR = "provider_error"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class Frame(
    msgspec.Struct,
    tag_field="type",
    rename="camel",
):
    """Base of every frame: a JSON object whose ``type`` names the class."""


class Record(msgspec.Struct, rename="camel"):
    """Base of the plain objects nested inside frames (chats, messages)."""


# --- Records ---------------------------------------------------------------


class ChatSummary(Record):
    """One chat as the chat list shows it.

    Its system prompt and parameters are not here: the list does not need them,
    and this record goes out after every answer. They are ``ChatSettings``.
    """

    id: Id
    title: str
    updated_at: datetime
    model_id: str | None = None
    message_count: Seq = 0
    #: Listed before the others.
    pinned: bool = False
    #: Listed only when ``list_chats`` asks for the archived chats.
    archived: bool = False


def in_list_order(chats: Iterable[ChatSummary]) -> list[ChatSummary]:
    """``chats`` in the order ``list_chats`` gives them: pinned first, then the most recently updated (the id last)."""
    return sorted(chats, key=lambda chat: (chat.pinned, chat.updated_at, chat.id), reverse=True)


class ChatParams(Record):
    """A chat's sampling parameters, sent upstream with each of its answers; ``None``: the model's default."""

    temperature: Annotated[float, msgspec.Meta(ge=0.0, le=MAX_TEMPERATURE)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0.0, le=MAX_TOP_P)] | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=1, le=MAX_TOKENS)] | None = None
    seed: Annotated[int, msgspec.Meta(ge=MIN_SEED, le=MAX_SEED)] | None = None


class ChatSettings(Record):
    """What a chat's answers are made with, beside its model: the settings screen's fields."""

    #: Sent to the model as the first message (role ``system``); ``None``: none.
    system_prompt: str | None = None
    params: ChatParams = msgspec.field(default_factory=ChatParams)


class UpdatedChat(Record):
    """``result`` data of ``update_chat``: the chat as listed, and its settings."""

    chat: ChatSummary
    settings: ChatSettings


MessageStatus = Literal["complete", "streaming", "cancelled", "error"]
#: Which text a ``chunk`` carries: the answer, or the reasoning before it.
ChunkKind = Literal["content", "reasoning"]

#: A count of tokens, as a model server reports it.
TokenCount = Annotated[int, msgspec.Meta(ge=0)]
#: A duration the server measured, in whole milliseconds.
Milliseconds = Annotated[int, msgspec.Meta(ge=0)]
#: Tokens per second the server measured.
TokenRate = Annotated[float, msgspec.Meta(ge=0)]


class Usage(Record):
    """The tokens one answer took, as the model server reported them; ``None``: not reported."""

    #: Tokens of the conversation sent (the system prompt and the history included).
    prompt_tokens: TokenCount | None = None
    #: Tokens of the answer.
    completion_tokens: TokenCount | None = None


class AttachmentInfo(Record):
    """A file sent with a user message, as its chip shows it (the bytes stay on the server)."""

    name: str
    media_type: str
    #: Bytes of the file.
    size: Seq


class StoredMessage(Record):
    """One message of a chat, as stored by the server."""

    id: Id
    role: Literal["user", "assistant"]
    content: str
    created_at: datetime
    status: MessageStatus = "complete"
    #: For assistant messages: the last chunk's ``seq`` stored so far.
    seq: Seq = 0
    model_id: str | None = None
    client_message_id: str | None = None
    edited_at: datetime | None = None
    #: For ended assistant messages: ``stop``, ``length``, ``cancelled``, ``error``,
    #: ``interrupted`` (the server stopped while it streamed), or ``store_failed``
    #: (the server's storage failed while it streamed or ended).
    finish_reason: str | None = None
    #: True when ``content`` is only the first ``SENT_MESSAGE_CHARS`` characters of a message too
    #: long to send whole (one stored before the server capped answers): ``get_message_text`` gives the rest.
    truncated: bool = False
    #: For ended answers: what the model server reported (``None`` for user messages and old rows).
    usage: Usage | None = None
    #: For ended answers: milliseconds from the request upstream to the first piece of text.
    first_token_ms: Milliseconds | None = None
    #: For ended answers with a reported ``completion_tokens``: those over the seconds from
    #: the first piece of text to the last.
    tokens_per_second: TokenRate | None = None
    #: For user messages: the files sent with it, in the order attached.
    attachments: list[AttachmentInfo] = msgspec.field(default_factory=list)
    #: For answers: what the model reasoned before answering (its ``reasoning`` chunks), never part of ``content``.
    reasoning: str = ""


class ChatPage(Record):
    """``result`` data of ``list_chats``: pinned chats first, then the others, each newest first."""

    chats: list[ChatSummary]
    #: Pass as ``before`` to get the next page; ``None`` on the last page.
    next_cursor: str | None = None


class ChatDetail(Record):
    """``result`` data of ``get_chat``: the chat and a page of its messages, oldest first."""

    chat: ChatSummary
    messages: list[StoredMessage]
    #: Pass as ``before`` to get the messages before this page; ``None`` when it starts at the first.
    next_cursor: str | None = None
    settings: ChatSettings = msgspec.field(default_factory=ChatSettings)
    #: The index in the chat of the page's first message (0: the chat's first), so a page can be placed anywhere.
    offset: Seq = 0


class MessageText(Record):
    """``result`` data of ``get_message_text``: a part of one message's text."""

    message_id: Id
    #: Where ``text`` starts in the message, in characters (code points) of the stored text.
    offset: Seq
    #: At most ``MESSAGE_TEXT_PART_CHARS`` characters; empty at the end of the message.
    text: str
    #: Where the next part starts: ``offset`` plus the characters of ``text`` as stored (a client
    #: that strips characters from ``text`` before showing it still asks for the right place).
    next_offset: Seq
    #: Characters of the whole message: it is whole once ``next_offset`` reaches this.
    total_chars: Seq


class SearchHit(Record):
    """One message that matched a ``search``, with a piece of its text around the match."""

    chat_id: Id
    chat_title: str
    message_id: Id
    role: Literal["user", "assistant"]
    #: Plain text: a line of the message around its first match, ``…`` where it was cut.
    snippet: str
    #: ``[start, end)`` of each matched word in ``snippet``, in characters (code points), in order.
    highlights: list[tuple[Annotated[int, msgspec.Meta(ge=0)], Annotated[int, msgspec.Meta(ge=0)]]]
    created_at: datetime


class SearchResults(Record):
    """``result`` data of ``search``: the matching messages, newest first."""

    hits: list[SearchHit]
    #: Pass as ``before`` to get the older matches; ``None`` on the last page.
    next_cursor: str | None = None


class ModelInfo(Record):
    """One model the server can use."""

    id: Id
    name: str
    provider: str
    default: bool = False


class ModelList(Record):
    """``result`` data of ``list_models``."""

    models: list[ModelInfo]


class ImportedMessage(Record):
    """One entry of an ``import_chat``: a message of the conversation, or the next piece of one."""

    role: Literal["user", "assistant"]
    content: Annotated[str, msgspec.Meta(min_length=1, max_length=IMPORT_PIECE_CHARS)]
    #: When it was written; ``None``: when the message before it was (or the chat, for the first).
    created_at: datetime | None = None
    #: This entry continues the text of the one before it (a message longer than ``IMPORT_PIECE_CHARS``).
    continued: bool = False


class ImportResult(Record):
    """``result`` data of ``import_chat``."""

    chat: ChatSummary
    #: This frame created the chat; false when its import key was already there.
    created: bool
    #: Entries of the conversation stored now, this frame's included.
    stored: Seq
    #: Entries this frame stored: 0 for a part sent again.
    added: Seq


class Turn(msgspec.Struct):
    """One entry of the seed clients' ``messages`` array."""

    role: str
    content: str


# --- Client to server ------------------------------------------------------


class Ping(Frame, tag="ping"):
    """Heartbeat; the server answers ``pong`` with the same ``ts``."""

    ts: float | None = None


class Message(Frame, tag="message", omit_defaults=True):
    """A new user message. ``chat_id=None`` (or ``""``) creates a chat.

    The seed's clients send ``messages: [{role, content}]`` instead of
    ``content``: the last ``user`` entry becomes ``content`` and the array is
    dropped, so both forms decode to the same frame. The server's stored
    history is the truth, never the array. The seed's clients send no
    ``client_message_id`` either: such a message is not idempotent (the
    server names it itself, and a resend is a new message).

    A message that creates a chat may carry the chat's ``system_prompt`` and
    ``params``: stored with the chat in the same transaction, so its first
    answer is made with them, and resent with the message until it is acked.
    """

    chat_id: NewOrChatId
    client_message_id: Id | None = None
    content: str = ""
    model_id: Id | None = None
    messages: list[Turn] | None = None
    system_prompt: SystemPrompt | None = None
    params: ChatParams | None = None
    #: The ``clientAttachmentId`` of each file sent with it, every one uploaded whole first.
    attachments: Annotated[list[Id], msgspec.Meta(max_length=MAX_ATTACHMENTS)] | None = None

    def __post_init__(self) -> None:
        if self.chat_id == "":
            self.chat_id = None
        if self.chat_id is not None and (self.system_prompt is not None or self.params is not None):
            raise ProtocolError(
                "'systemPrompt' and 'params' come only with a message that creates a chat; use update_chat"
            )
        if self.messages is not None:
            users = [turn.content for turn in self.messages if turn.role == "user"]
            if not users:
                raise ProtocolError("'messages' has no entry with role 'user'")
            if self.content and self.content != users[-1]:
                raise ProtocolError("'content' and 'messages' disagree: send one of them")
            self.content = users[-1]
            self.messages = None
        if self.attachments is not None and len(set(self.attachments)) != len(self.attachments):
            raise ProtocolError("'attachments' names a file twice")
        if not self.content.strip() and not self.attachments:
            raise ProtocolError("'content' must not be empty")


class AttachmentPart(Frame, tag="attachment_part"):
    """A piece of a file to send with a message: ``data`` from byte ``offset`` of its ``size``.

    The server keeps the bytes of each ``(user, client_attachment_id)`` and
    answers every part with ``attachment_ack``, saying how many it holds: a
    part at another offset than that stores nothing, so a part sent again is
    harmless and an upload cut by a reconnect goes on from ``received``.
    ``client_message_id`` is the message the file goes with, so an ``error``
    refusing the part names that message.
    """

    client_message_id: Id
    client_attachment_id: Id
    name: AttachmentName
    media_type: MediaType
    size: Seq
    offset: Seq
    #: Base64 on the wire; at most ``ATTACHMENT_PART_BYTES`` bytes.
    data: bytes

    def __post_init__(self) -> None:
        if self.media_type != TEXT_MEDIA_TYPE and self.media_type not in IMAGE_MEDIA_TYPES:
            raise ProtocolError(
                f"'mediaType' {self.media_type!r} cannot be sent to a model: attach text ({TEXT_MEDIA_TYPE})"
                f" or an image ({', '.join(IMAGE_MEDIA_TYPES)})"
            )
        if len(self.data) > ATTACHMENT_PART_BYTES:
            raise ProtocolError(f"'data' holds more than {ATTACHMENT_PART_BYTES} bytes: send smaller parts")
        if self.offset + len(self.data) > self.size:
            raise ProtocolError("'offset' plus the bytes of 'data' is more than 'size'")
        if not self.data and self.size:
            raise ProtocolError("'data' must not be empty")


class Cancel(Frame, tag="cancel"):
    """Stop the running generation of a chat."""

    chat_id: Id
    message_id: Id | None = None


class Resume(Frame, tag="resume"):
    """Replay an assistant message after ``last_seq``, then follow it live."""

    chat_id: Id
    message_id: Id
    last_seq: Seq


class EditMessage(Frame, tag="edit_message"):
    """Change a stored user message; ``regenerate`` drops what follows and answers again."""

    chat_id: Id
    message_id: Id
    content: str
    regenerate: bool = False
    #: The sender's idempotency key: an edit resent with the same key is applied once.
    client_edit_id: Id | None = None

    def __post_init__(self) -> None:
        if not self.content.strip():
            raise ProtocolError("'content' must not be empty")


class PageEdit(Frame, tag="message_edited"):
    """The seed page's word to its other tabs that it edited a message.

    ``message_id`` is the page's own id, usually ``Date.now()``. When it names
    a stored user message of the chat (a page that loaded the chat over REST
    knows the server's ids), the edit is stored like an ``edit_message``
    without ``regenerate``; otherwise it is relayed to the user's connections
    as ``message_edited``, as the original server did, and stored nowhere.
    """

    chat_id: Id
    message_id: PageMessageId
    content: str

    def __post_init__(self) -> None:
        if not self.content.strip():
            raise ProtocolError("'content' must not be empty")


class Subscribe(Frame, tag="subscribe"):
    """Receive a chat's events on this connection."""

    chat_id: Id


class ListChats(Frame, tag="list_chats"):
    """Ask for a page of the chat list: pinned chats first, then the others, each newest first."""

    request_id: Id
    limit: PageSize | None = None
    before: str | None = None
    #: ``True``: the archived chats only; otherwise the others only.
    archived: bool = False


class GetChat(Frame, tag="get_chat"):
    """Ask for one chat with a page of its messages.

    The newest page; or the one ending before message ``before``; or the one
    starting at index ``offset`` or at message ``at``. At most one of those three.
    """

    request_id: Id
    chat_id: Id
    #: At most this many messages (the server's default when ``None``); a page also
    #: ends before it would pass the server's byte budget, but holds at least one message.
    limit: PageSize | None = None
    #: A ``nextCursor`` from an earlier page of this chat.
    before: Id | None = None
    #: The page starting at the message of this index (0: the chat's first).
    offset: Seq | None = None
    #: The page starting at this message of the chat (its index comes back as ``offset``).
    at: Id | None = None

    def __post_init__(self) -> None:
        if sum(place is not None for place in (self.before, self.offset, self.at)) > 1:
            raise ProtocolError("'before', 'offset' and 'at' each choose the page: send at most one")


class GetMessageText(Frame, tag="get_message_text"):
    """Ask for a part of one message's text, from character ``offset`` on (the rest of a ``truncated`` one)."""

    request_id: Id
    chat_id: Id
    message_id: Id
    #: Where the part starts, in characters of the stored text (0: the message's first); at most its length.
    offset: Seq = 0


class RenameChat(Frame, tag="rename_chat"):
    """Rename a chat."""

    request_id: Id
    chat_id: Id
    title: Title


class UpdateChat(Frame, tag="update_chat"):
    """Change a chat's title, settings, pin or archive; ``None`` leaves a field as it is.

    ``system_prompt=""`` removes the prompt; ``params`` replaces all four
    parameters (a ``None`` in it: the model's default).
    """

    request_id: Id
    chat_id: Id
    title: Title | None = None
    system_prompt: SystemPrompt | None = None
    params: ChatParams | None = None
    pinned: bool | None = None
    archived: bool | None = None

    def __post_init__(self) -> None:
        changes = (self.title, self.system_prompt, self.params, self.pinned, self.archived)
        if all(change is None for change in changes):
            raise ProtocolError("'update_chat' changes nothing: give title, systemPrompt, params, pinned or archived")


class DeleteChat(Frame, tag="delete_chat"):
    """Delete a chat and its messages."""

    request_id: Id
    chat_id: Id


class ListModels(Frame, tag="list_models"):
    """Ask which models the server can use."""

    request_id: Id


class Search(Frame, tag="search"):
    """Ask for the messages of the sender's chats that hold every word of ``query``, newest first.

    The query is plain words (see ``protocol.search``): one with none, such as
    ``"*"`` or ``"-"``, is refused.
    """

    request_id: Id
    query: Annotated[str, msgspec.Meta(max_length=MAX_QUERY_LENGTH)]
    #: At most this many hits (the server's default when ``None``).
    limit: PageSize | None = None
    #: A ``nextCursor`` from an earlier page of the same search.
    before: Id | None = None

    def __post_init__(self) -> None:
        if not search_words(self.query):
            raise ProtocolError("'query' has no words to search for")


class ImportChat(Frame, tag="import_chat"):
    """Store a conversation from elsewhere (a ChatGPT export), or a part of one.

    The chat is named by ``import_key``, unique per user: the first part creates
    it, a part of a chat already there adds only the entries not stored yet, so
    a part sent again (after a reconnect, or a second import) stores nothing.
    Parts carry entries ``first`` to ``first + len(messages) - 1`` of ``total``.
    """

    request_id: Id
    #: Names the conversation where it came from, e.g. ``chatgpt:<its id>``.
    import_key: Id
    title: Title
    created_at: datetime
    updated_at: datetime
    #: The index of ``messages[0]`` among the conversation's entries.
    first: Seq
    #: Entries of the whole conversation.
    total: Annotated[int, msgspec.Meta(ge=1)]
    messages: Annotated[list[ImportedMessage], msgspec.Meta(min_length=1)]

    def __post_init__(self) -> None:
        if self.first + len(self.messages) > self.total:
            raise ProtocolError("'first' plus the messages sent is more than 'total'")
        if self.first == 0 and self.messages and self.messages[0].continued:
            raise ProtocolError("the first message of a conversation cannot be 'continued'")


ClientFrame = (
    Ping
    | Message
    | AttachmentPart
    | Cancel
    | Resume
    | EditMessage
    | PageEdit
    | Subscribe
    | ListChats
    | GetChat
    | GetMessageText
    | RenameChat
    | UpdateChat
    | DeleteChat
    | ListModels
    | Search
    | ImportChat
)
#: Client frames answered by a ``result`` (or an ``error`` with the same ``requestId``).
Request = ListChats | GetChat | GetMessageText | RenameChat | UpdateChat | DeleteChat | ListModels | Search | ImportChat


# --- Server to client ------------------------------------------------------


class Pong(Frame, tag="pong"):
    """Answer to ``ping``, echoing its ``ts``."""

    ts: float | None = None


class Ack(Frame, tag="ack"):
    """The user message is durably stored; ``reply_id`` is the answer being generated."""

    client_message_id: Id
    chat_id: Id
    message_id: Id
    reply_id: Id


class ChatCreated(Frame, tag="chat_created"):
    """A ``message`` with no chat created this one; sent before its first chunk."""

    chat_id: Id
    title: str
    client_message_id: Id


class UserMessage(Frame, tag="user_message"):
    """A user message was stored: to every connection of its user, so each terminal shows it.

    Sent after the sender's ``ack`` (and ``chat_created``), before the answer's
    first chunk; the sender knows it by its ``client_message_id``.
    """

    chat_id: Id
    message_id: Id
    client_message_id: Id
    content: str
    created_at: datetime
    #: The assistant message that answers it, streaming next.
    reply_id: Id
    #: The files sent with it, for their chips.
    attachments: list[AttachmentInfo] = msgspec.field(default_factory=list)


class AttachmentAck(Frame, tag="attachment_ack"):
    """Answer to ``attachment_part``: bytes of that file the server holds (the next part starts there).

    ``received`` equal to the file's size: the file is whole, and a message may name it.
    """

    client_attachment_id: Id
    received: Seq


class Chunk(Frame, tag="chunk", omit_defaults=True):
    """A streamed piece of an assistant message; ``seq`` counts from 1 without gaps.

    ``kind`` says which text the piece belongs to: the answer (``content``,
    the default, left out on the wire) or the model's reasoning before it
    (``reasoning``). Both share the one ``seq`` numbering, so resuming is the same.
    """

    chat_id: Id
    message_id: Id
    seq: Annotated[int, msgspec.Meta(ge=1)]
    content: str
    kind: ChunkKind = "content"


class Complete(Frame, tag="complete"):
    """The assistant message is finished and stored; ``seq`` is its last chunk.

    ``usage``, ``first_token_ms`` and ``tokens_per_second`` are what the
    server measured, as ``StoredMessage`` has them; ``None`` when unknown
    (and from a server older than them).
    """

    chat_id: Id
    message_id: Id
    seq: Seq
    finish_reason: str = "stop"
    usage: Usage | None = None
    first_token_ms: Milliseconds | None = None
    tokens_per_second: TokenRate | None = None


class Cancelled(Frame, tag="cancel"):
    """Generation stopped on request; chunks up to ``seq`` are kept and stored."""

    chat_id: Id
    message_id: Id
    seq: Seq


class Error(Frame, tag="error"):
    """Something went wrong; ``message`` is for people, ``code`` for programs."""

    code: str
    message: str
    request_id: str | None = None
    chat_id: str | None = None
    message_id: str | None = None
    #: Set when the error answers a ``message``: which queued message it refuses.
    client_message_id: str | None = None
    #: Set when the error answers an ``edit_message`` with a ``clientEditId``: which edit it refuses.
    client_edit_id: str | None = None


class MessageEdited(Frame, tag="message_edited"):
    """A stored user message changed (sent to every connection of its user)."""

    chat_id: Id
    message_id: Id
    content: str
    edited_at: datetime
    #: With ``regenerate``: the new assistant message now streaming (the old answers are gone).
    reply_id: Id | None = None
    #: The ``clientEditId`` of the ``edit_message`` that made this change, if it had one.
    client_edit_id: Id | None = None


class ChatUpdated(Frame, tag="chat_updated"):
    """The chat list changed: a chat was created, renamed, updated or deleted."""

    chat: ChatSummary
    deleted: bool = False
    #: The chat's settings when this change set them (``update_chat``); else ``None``, to keep it small.
    settings: ChatSettings | None = None


class Result(Frame, tag="result"):
    """Answer to a request; ``data`` is decoded further with ``decode_result``."""

    request_id: Id
    data: Any = None


class Resync(Frame, tag="resync"):
    """The missed part of a message can no longer be replayed: reload it with ``get_chat``."""

    chat_id: Id
    message_id: Id


class ServerStatus(Frame, tag="server_status"):
    """Whether the server can store anything now: sent to every connection as that changes.

    ``unavailable`` while its database is out of reach (messages sent meanwhile
    are refused with ``unavailable``), ``ok`` as soon as it answers again: the
    moment to send those messages again. A client that connects during an
    outage gets one ``unavailable`` among its first frames; none while all is well.
    """

    storage: StorageState
    #: For people: what is wrong, or that it is over.
    message: str


ServerFrame = (
    Pong
    | Ack
    | ChatCreated
    | UserMessage
    | AttachmentAck
    | Chunk
    | Complete
    | Cancelled
    | Error
    | MessageEdited
    | ChatUpdated
    | Result
    | Resync
    | ServerStatus
)
#: The frames that make up one assistant message's stream.
StreamFrame = Chunk | Complete | Cancelled
