"""Events the client emits besides the protocol's own frames."""

from __future__ import annotations

from dataclasses import dataclass

from mfu_tui.protocol import MessageStatus


@dataclass(frozen=True)
class MessageReloaded:
    """An assistant message was reloaded with ``get_chat`` after a ``resync``.

    The UI replaces the whole text of the message with ``content``, and its
    reasoning with ``reasoning``. If ``status`` is ``"streaming"``, further
    ``Chunk`` frames follow and are appended as usual (to the reasoning when
    their ``kind`` is ``"reasoning"``).
    """

    chat_id: str
    message_id: str
    content: str
    status: MessageStatus
    #: How an ended message ended (``stop``, ``length``, ``interrupted``...), as stored.
    finish_reason: str | None = None
    #: What the model reasoned before answering, apart from ``content`` ("" for none).
    reasoning: str = ""


@dataclass(frozen=True)
class MessageTextLoaded:
    """The rest of a message that came cut (``truncated``) in a page was loaded (``get_message_text``).

    The UI replaces the message's text with ``content``, its whole text
    (cleaned, like every text from the server), and no longer marks it shown in part.
    """

    chat_id: str
    message_id: str
    content: str
