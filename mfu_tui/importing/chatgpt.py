"""A ChatGPT data export (``conversations.json``) read into conversations to import.

The file is a JSON array of conversations. Each holds its messages as a tree,
``mapping`` (node id -> ``{message, parent, children}``): every edit or
regenerated answer in ChatGPT is a branch. What the user saw last is the path
from ``current_node`` up through the ``parent`` links to the root, reversed;
that path is what is imported. On it, only the user's and the assistant's
text is kept (``content_type`` ``text`` or ``multimodal_text``): system and
tool messages, code runs, browsing, hidden and empty messages are left out.
A part that is not text (an image, a file) is marked in the text where it was,
``[image not imported]``, and counted.

The export's zip, as downloaded, is read as well as the ``conversations.json``
in it (``conversations_json``).

The export is the user's own file, but it is read with care: only a regular
file, at most ``MAX_EXPORT_BYTES`` (the zip, and what its
``conversations.json`` unpacks to, whatever its header claims: a zip bomb is
refused, not unpacked), and each conversation is decoded on its
own, so one that does not have the expected shape is skipped with a reason
while the others are imported. Only the fields used are decoded (msgspec
skips the rest without building it), which keeps a large export's memory
close to its size.
"""

from __future__ import annotations

import dataclasses
import io
import time
import zipfile
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from mfu_tui.config.paths import UnreadableFile, read_regular_file
from mfu_tui.protocol import MAX_ID_LENGTH, ImportedMessage

#: The largest export read: heavy users' exports run to hundreds of MiB.
MAX_EXPORT_BYTES = 1024**3
#: What names an imported conversation on the server: this, then its id.
KEY_PREFIX = "chatgpt:"
#: A title made from the first message, when the conversation has none: this many words.
TITLE_WORDS = 8
_TEXT_TYPES = ("text", "multimodal_text")
#: What stands in the text for a part that is not text.
IMAGE_MARK = "[image not imported]"
ATTACHMENT_MARK = "[attachment not imported]"
_ZIP_MAGIC = b"PK\x03\x04"
_EXPORT_NAME = "conversations.json"
_BOM = b"\xef\xbb\xbf"


class ExportError(ValueError):
    """The file cannot be imported at all; the message says why in one line, without the path."""


@dataclasses.dataclass(frozen=True)
class Conversation:
    """One conversation, ready for ``ChatClient.import_chat``."""

    key: str
    """``chatgpt:<its id>``: the same conversation gets the same key in every export."""
    title: str
    created_at: datetime
    updated_at: datetime
    messages: list[ImportedMessage]
    """The visible path, oldest first; whole (any length)."""
    attachments: int
    """Parts that were not text, marked in the text."""


@dataclasses.dataclass(frozen=True)
class Skipped:
    """A conversation that is not imported, and why."""

    name: str
    """Its title and id, or its place in the file, for the warning."""
    reason: str
    """Short, to count alike ones: ``no messages``, ``a broken parent chain``..."""
    detail: str
    """The whole story, for the warning."""


@dataclasses.dataclass(frozen=True)
class Export:
    """What an export holds: the conversations to import and those skipped."""

    conversations: list[Conversation]
    skipped: list[Skipped]


class _Author(msgspec.Struct):
    role: str


class _Content(msgspec.Struct):
    content_type: str
    parts: list[Any] | None = None


class _Metadata(msgspec.Struct):
    is_visually_hidden_from_conversation: bool | None = None


class _Message(msgspec.Struct):
    author: _Author
    content: _Content | None = None
    create_time: float | None = None
    metadata: _Metadata | None = None


class _Node(msgspec.Struct):
    message: _Message | None = None
    parent: str | None = None


class _Conversation(msgspec.Struct):
    mapping: dict[str, _Node]
    title: str | None = None
    create_time: float | None = None
    update_time: float | None = None
    id: str | None = None
    conversation_id: str | None = None
    current_node: str | None = None


_conversation_decoder = msgspec.json.Decoder(_Conversation)


class _Broken(Exception):
    """The conversation cannot be imported: ``reason`` and ``detail`` say why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def read_export(path: Path) -> Export:
    """Read and convert the export at ``path``.

    Raises:
        ExportError: it is missing, not a regular file, too large, not JSON, or not a list.
    """
    try:
        data = read_regular_file(path, MAX_EXPORT_BYTES)
    except UnreadableFile as problem:
        raise ExportError(f"cannot read it ({problem})") from None
    if data is None:
        raise ExportError("no such file")
    return parse_export(data)


def parse_export(data: bytes) -> Export:
    """Convert the text of a ``conversations.json``.

    Args:
        data: The file's bytes, or the export's zip holding it.

    Raises:
        ExportError: it is not JSON, or not a list; a zip without a readable ``conversations.json``.
    """
    if data.startswith(_ZIP_MAGIC):
        data = conversations_json(data)
    try:
        # Raw: each conversation is decoded alone, so a bad one costs only itself.
        items = msgspec.json.decode(data.removeprefix(_BOM), type=list[msgspec.Raw])
    except msgspec.ValidationError:
        raise ExportError("not a ChatGPT export: conversations.json holds a list of conversations") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as error:
        raise ExportError(f"not JSON ({error})") from None
    export = Export([], [])
    for number, item in enumerate(items, start=1):
        try:
            raw = _conversation_decoder.decode(item)
        except msgspec.ValidationError as error:
            export.skipped.append(
                Skipped(f"conversation {number}", "not a conversation", f"not a conversation: {error}")
            )
            continue
        name = f'"{raw.title or "untitled"}" ({raw.id or raw.conversation_id or f"conversation {number}"})'
        try:
            export.conversations.append(_convert(raw))
        except _Broken as broken:
            export.skipped.append(Skipped(name, broken.reason, broken.detail))
    return export


def conversations_json(archive: bytes, limit: int = MAX_EXPORT_BYTES) -> bytes:
    """The ``conversations.json`` in an export's zip (at its top, or in one folder), at most ``limit`` bytes.

    Raises:
        ExportError: not a zip that can be read, no ``conversations.json`` in it, or one larger than ``limit``.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as zip_file:
            found = [info for info in zip_file.infolist() if info.filename.rsplit("/", 1)[-1] == _EXPORT_NAME]
            # The shallowest: a copy deep in the archive is not the export's.
            found.sort(key=lambda info: info.filename.count("/"))
            if not found or found[0].filename.count("/") > 1:
                raise ExportError(f"a zip archive without {_EXPORT_NAME}: is it a ChatGPT data export?")
            # Read up to the limit and one byte more: the header's sizes are the archive's word, not a fact.
            with zip_file.open(found[0]) as member:
                data = member.read(limit + 1)
    # RuntimeError: a password is needed; NotImplementedError: a compression method zipfile does not know.
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        NotImplementedError,
        RuntimeError,
        EOFError,
        OSError,
        zlib.error,
    ) as error:
        raise ExportError(f"a zip archive that cannot be read ({error})") from None
    if len(data) > limit:
        raise ExportError(f"its {_EXPORT_NAME} unpacks to more than {limit // 1024**2} MiB")
    return data


def _convert(raw: _Conversation) -> Conversation:
    """The visible path of ``raw`` as a ``Conversation``.

    Raises:
        _Broken: it has no usable id, its path does not reach the root, or it has no message to keep.
    """
    conversation_id = raw.id or raw.conversation_id
    if not conversation_id:
        raise _Broken("no id", "it has no id, so importing it again could not be told from the first time")
    key = KEY_PREFIX + conversation_id
    if len(key) > MAX_ID_LENGTH:
        raise _Broken("no id", f"its id is longer than {MAX_ID_LENGTH - len(KEY_PREFIX)} characters")
    messages: list[ImportedMessage] = []
    attachments = 0
    for node in _visible_path(raw):
        kept = _kept(node.message)
        if kept is not None:
            message, marked = kept
            messages.append(message)
            attachments += marked
    if not messages:
        raise _Broken("no messages", "it has no message of yours or the assistant's with text")
    started = raw.create_time or _first_time(messages) or time.time()
    return Conversation(
        key=key,
        title=_title(raw.title, messages),
        created_at=datetime.fromtimestamp(started, UTC),
        updated_at=datetime.fromtimestamp(raw.update_time or started, UTC),
        messages=messages,
        attachments=attachments,
    )


def _visible_path(raw: _Conversation) -> list[_Node]:
    """The nodes from the root to ``current_node``.

    Raises:
        _Broken: a link names a node that is not there, or the links loop.
    """
    if raw.current_node is None:
        raise _Broken("a broken parent chain", "it names no current message (current_node)")
    path: list[_Node] = []
    seen: set[str] = set()
    node_id: str | None = raw.current_node
    child = "current_node"
    while node_id is not None:
        if node_id in seen:
            raise _Broken("a broken parent chain", f"its parent links loop at message {node_id}")
        node = raw.mapping.get(node_id)
        if node is None:
            raise _Broken("a broken parent chain", f"{child} names message {node_id}, which is not in it")
        seen.add(node_id)
        path.append(node)
        child, node_id = f"message {node_id}", node.parent
    path.reverse()
    return path


def _kept(message: _Message | None) -> tuple[ImportedMessage, int] | None:
    """The message as imported, with the parts marked as not imported; None if it is not kept."""
    if message is None or message.author.role not in ("user", "assistant") or message.content is None:
        return None
    if message.metadata is not None and message.metadata.is_visually_hidden_from_conversation:
        return None
    if message.content.content_type not in _TEXT_TYPES:
        return None
    pieces: list[str] = []
    marked = 0
    for part in message.content.parts or []:
        if isinstance(part, str):
            pieces.append(part)
        else:
            pieces.append(_placeholder(part))
            marked += 1
    text = "\n".join(piece for piece in pieces if piece)
    if not text.strip():
        return None
    when = datetime.fromtimestamp(message.create_time, UTC) if message.create_time else None
    return ImportedMessage(role=message.author.role, content=text, created_at=when), marked  # type: ignore[arg-type]


def _placeholder(part: Any) -> str:
    """What stands in the text for a part that is not text: ``[image not imported]``..."""
    kind = part.get("content_type", "") if isinstance(part, dict) else ""
    return IMAGE_MARK if "image" in str(kind) else ATTACHMENT_MARK


def _first_time(messages: list[ImportedMessage]) -> float | None:
    return next((m.created_at.timestamp() for m in messages if m.created_at is not None), None)


def _title(title: str | None, messages: list[ImportedMessage]) -> str:
    """The conversation's title; without one, the first words of its first message (its marks left out)."""
    if title and title.strip():
        return " ".join(title.split())
    words = messages[0].content.replace(IMAGE_MARK, "").replace(ATTACHMENT_MARK, "").split()
    return " ".join(words[:TITLE_WORDS]) + ("…" if len(words) > TITLE_WORDS else "") or "Imported chat"
