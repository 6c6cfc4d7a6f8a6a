"""Exceptions of the client; both are also what ``on_error`` callbacks receive."""

from __future__ import annotations

#: Codes of an ``error`` answering a ``message`` that will never be accepted:
#: the message leaves the outbox and the UI is told.
REFUSED_FOR_GOOD = frozenset({"bad_request", "too_large", "not_found", "forbidden", "unauthorized", "quota_exceeded"})


class ClientError(Exception):
    """Something went wrong in the client or was reported by the server.

    Args:
        message: What happened, in plain words (never contains the token).
        code: The protocol error code (``"rate_limited"``...) when the server sent
            an ``error`` frame, ``None`` for failures of the client itself.
        chat_id: The chat concerned, when known.
        message_id: The message concerned, when known.
        client_message_id: The outbox message the server refused, when the
            error is about one (it has then left the outbox).
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        chat_id: str | None = None,
        message_id: str | None = None,
        client_message_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.chat_id = chat_id
        self.message_id = message_id
        self.client_message_id = client_message_id


class RequestError(ClientError):
    """The server answered a request (``list_chats``, ``get_chat``...) with an ``error`` frame.

    Args:
        code: The protocol error code, e.g. ``"not_found"``.
        message: The server's explanation.
    """

    def __init__(self, code: str, message: str, **where: str | None) -> None:
        super().__init__(message, code=code, **where)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"
