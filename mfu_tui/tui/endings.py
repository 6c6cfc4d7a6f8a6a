"""How an answer ended, as a type: the app, the records and the widgets agree on it without strings.

The server says how an answer ended in words of its own (a ``complete``
frame's ``finish_reason``, a stored message's ``status``); ``Ending`` is what
the app makes of them, once, here. Its values are the status a message shows
(``MessageView.status``, the ``-length``... CSS classes), so a widget takes
an ``Ending`` where it takes a status.
"""

from __future__ import annotations

from enum import StrEnum

from mfu_tui.protocol import Cancelled, Complete, MessageStatus


class Ending(StrEnum):
    """How an answer ended."""

    COMPLETE = "complete"
    """The model finished (``finish_reason`` ``stop``, or one this app does not know)."""
    CANCELLED = "cancelled"
    """Stopped by a user (here or in another terminal)."""
    LENGTH = "length"
    """Cut off at the length limit."""
    ERROR = "error"
    """The model failed."""
    INTERRUPTED = "interrupted"
    """The server stopped before the end (it was stopped or restarted)."""
    UNSTORED = "unstored"
    """The server's storage failed (``finish_reason`` ``store_failed``), not the model."""
    FILTERED = "filtered"
    """Stopped by the model server's content filter."""
    TOOL_CALL = "tool-call"
    """Ended asking to call a tool, which this app does not offer."""

    @classmethod
    def of(cls, end: Complete | Cancelled) -> Ending:
        """How the answer of a ``complete`` or ``cancel`` frame ended."""
        if isinstance(end, Cancelled):
            return cls.CANCELLED
        return _BY_FINISH_REASON.get(end.finish_reason, cls.COMPLETE)

    @classmethod
    def of_stored(cls, status: MessageStatus, finish_reason: str | None) -> Ending | None:
        """How a stored answer ended; ``None`` while it streams.

        A server that stopped mid-answer stores it as ``error`` with
        ``finish_reason`` ``interrupted``: that is not the model failing, and
        must not read as such.
        """
        if status == "streaming":
            return None
        if status in ("complete", "error") and finish_reason in _BY_FINISH_REASON:
            return _BY_FINISH_REASON[finish_reason]
        return cls(status)


#: What is said of an answer that ended otherwise than complete: under it, and in an export.
ENDING_NOTES: dict[str, str] = {
    Ending.CANCELLED: "cancelled",
    Ending.INTERRUPTED: "interrupted: the server stopped before the end",
    Ending.ERROR: "failed: the model did not answer",
    Ending.UNSTORED: "failed: the server could not store the answer",
    Ending.LENGTH: "cut off: the answer reached the length limit",
    Ending.FILTERED: "stopped by the model server's content filter",
    Ending.TOOL_CALL: "ended asking to call a tool, which this app does not offer",
}

#: ``finish_reason`` of an ended answer -> how it ended.
_BY_FINISH_REASON = {
    "stop": Ending.COMPLETE,
    "length": Ending.LENGTH,
    "error": Ending.ERROR,
    "store_failed": Ending.UNSTORED,
    "interrupted": Ending.INTERRUPTED,
    "content_filter": Ending.FILTERED,
    "tool_calls": Ending.TOOL_CALL,
}


def stored_status(status: MessageStatus, finish_reason: str | None) -> str:
    """The status to show for a stored message: how it ended, or ``streaming``."""
    ending = Ending.of_stored(status, finish_reason)
    return "streaming" if ending is None else ending.value
