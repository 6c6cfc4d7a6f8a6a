"""The original MFU backend's JSON documents, made from our records, for the REST API (``rest.py``).

The seed's browser page reads the original's field names (``_id``,
``chatname``, ``isPinned``, ``timestamp``...), so these functions rename, and
add nothing the page would mistake for something else. Our ids serve as both
``id`` and ``_id``. Times are ISO 8601 in UTC with milliseconds and a ``Z``,
as JavaScript's ``Date.prototype.toISOString`` (so the original) wrote them.

Also here: the original's check of a new chat name, with its error shape.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mfu_tui.protocol import ChatDetail, ChatSummary, ModelInfo, StoredMessage
from mfu_tui.server.store.base import ListedChat

#: Longest chat name the rename route accepts, in characters (the original's bound).
MAX_NAME = 100

#: What the original's model documents call our models: the server's own, offered to everyone.
MODEL_TYPE = "official"

Document = dict[str, Any]


def iso(moment: datetime) -> str:
    """``2026-11-26T09:31:05.123Z``: a time as JavaScript writes it."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def chat_document(chat: ChatSummary, created_at: datetime) -> Document:
    """A chat as the original's ``Chat`` document, without its messages."""
    return {
        "_id": chat.id,
        "id": chat.id,
        # The original kept two names (``name`` from the last message, ``chatname``
        # set by rename); we have one title, and the page may show either.
        "name": chat.title,
        "chatname": chat.title,
        "modelId": chat.model_id,
        "isPinned": chat.pinned,
        "createdAt": iso(created_at),
        "updatedAt": iso(chat.updated_at),
    }


def listed_document(listed: ListedChat) -> Document:
    """A chat of the list: the document without ``messages`` (a page of histories is too much to send)."""
    return chat_document(listed.chat, datetime.fromtimestamp(listed.created_at, UTC))


def detail_document(detail: ChatDetail) -> Document:
    """A chat with its messages, oldest first."""
    # A chat is created with its first message, in one transaction and at the
    # same time, and that message is never removed: its time is the chat's.
    created = detail.messages[0].created_at if detail.messages else detail.chat.updated_at
    return {**chat_document(detail.chat, created), "messages": [message_document(m) for m in detail.messages]}


def message_document(message: StoredMessage) -> Document:
    """A stored message as the original's message subdocument; ``id`` is the server's id."""
    return {
        "id": message.id,
        "role": message.role,
        "content": message.content,
        "timestamp": iso(message.created_at),
        # Ended in any way (complete, cancelled, failed, interrupted): nothing more will come.
        "isComplete": message.status != "streaming",
        "isEdited": message.edited_at is not None,
    }


def renamed_document(chat: ChatSummary) -> Document:
    """The answer of the rename route."""
    return {"success": True, "chat": {"id": chat.id, "chatname": chat.title, "updatedAt": iso(chat.updated_at)}}


def model_documents(models: list[ModelInfo]) -> list[Document]:
    """The models as the original's ``Model`` documents, the default one first.

    The page picks the model named ``Default``, else the first: putting the
    server's default first makes the page start on it.
    """
    ordered = sorted(models, key=lambda model: not model.default)  # stable: the provider's order otherwise
    return [{"_id": model.id, "id": model.id, "name": model.name, "modelType": MODEL_TYPE} for model in ordered]


def check_new_name(body: object) -> tuple[str, list[Document]]:
    """The trimmed ``newName`` of a rename body, and what is wrong with it (nothing: ``[]``).

    The rules are the original's: a string, not empty once trimmed, at most
    ``MAX_NAME`` characters, no ``<`` or ``>``. Each problem is one entry of
    ``details`` in the shape of express-validator's errors, without the value.
    """
    raw = body.get("newName") if isinstance(body, dict) else None
    if not isinstance(raw, str):
        return "", [_problem("newName is required and must be a string")]
    name = raw.strip()
    problems = []
    if not name:
        problems.append(_problem("Chat name cannot be empty"))
    if len(name) > MAX_NAME:
        problems.append(_problem(f"Chat name must be at most {MAX_NAME} characters"))
    if "<" in name or ">" in name:
        problems.append(_problem("Chat name must not contain < or >"))
    return name, problems


def _problem(message: str) -> Document:
    return {"type": "field", "path": "newName", "location": "body", "msg": message}
