"""Errors in plain words, with what to do next.

The client reports failures as ``ClientError`` (with the protocol's error
code when the server sent one) and stops with a ``reason`` when the server
refuses the token. These functions turn both into a notification a person
can act on.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from mfu_tui.client import ClientError

Severity = Literal["information", "warning", "error"]

LOGIN_AGAIN = (
    "Get a new token from the server's operator, store it with: mfu-chat login --server URL, then start mfu-chat again"
)

_BY_CODE: dict[str, tuple[str, str, Severity]] = {
    "unauthorized": ("Signed out", LOGIN_AGAIN, "error"),
    "forbidden": ("Not allowed", "This account may not do that. Ask the server's operator.", "error"),
    "not_found": (
        "Not found",
        "The chat or message is gone, perhaps deleted in another terminal. Pick another chat (ctrl+o).",
        "warning",
    ),
    "conflict": (
        "Still answering",
        "An answer is being written in this chat. Wait for it, or press esc to stop it; "
        "your message is kept and sent after.",
        "warning",
    ),
    "rate_limited": ("Too many requests", "Wait a moment; the message is tried again by itself.", "warning"),
    "too_large": (
        "Message too long",
        "Shorten it, or attach less, and send again; your text and files are back in the message box.",
        "error",
    ),
    "quota_exceeded": (
        "Storage full",
        "Delete chats with f8 or in the chat list (ctrl+o), then send again; your text is back in the message box.",
        "error",
    ),
    "bad_request": ("Not accepted", "The server did not understand the request. Your text is kept.", "error"),
    "provider_error": (
        "The model failed",
        "Answer again with f5, or choose another model with ctrl+l.",
        "error",
    ),
    "internal": ("Server error", "Try again in a moment. If it keeps failing, tell the server's operator.", "error"),
}


class Advice(NamedTuple):
    """A notification: title, message, severity."""

    title: str
    message: str
    severity: Severity


def advise_error(error: ClientError) -> Advice:
    """The notification for an error the client reported."""
    detail = error.message.rstrip(".")
    if error.code is None:
        return Advice("Connection problem", f"{detail}. The app keeps trying; nothing you typed is lost.", "warning")
    title, next_step, severity = _BY_CODE.get(error.code, ("Error", "Try again in a moment.", "error"))
    return Advice(title, f"{detail}. {next_step}", severity)


def advise_stopped(reason: str) -> Advice:
    """The notification when the client stopped for good (for example the token was refused)."""
    if "auth" in reason or "token" in reason or "forbidden" in reason:
        return Advice("Signed out", f"The server refused the sign-in ({reason}). {LOGIN_AGAIN}", "error")
    if reason.startswith("server unreachable"):
        return Advice(
            "Server unreachable",
            f"{reason}. The app keeps trying and reconnects by itself; nothing you typed is lost. "
            "If it lasts, check that the server runs and that this machine can reach it.",
            "warning",
        )
    return Advice("Offline", f"Disconnected: {reason}. Restart mfu-chat to connect again.", "error")
