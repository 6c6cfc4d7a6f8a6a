"""Errors in plain words, with what to do next.

The client reports failures as ``ClientError`` (with the protocol's error
code when the server sent one) and stops with a ``reason`` when the server
refuses the token. These functions turn both into a notification a person
can act on.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from mfu_tui.client import ClientError, ConnectionState, Problem
from mfu_tui.protocol import ErrorCode

Severity = Literal["information", "warning", "error"]

#: What a refused token needs, without the server's address (``login_again`` adds it).
LOGIN_AGAIN = "Get a new token from the server's operator"


def login_again(server: str) -> str:
    """How to sign in again to ``server`` (its URL, token masked), in one sentence."""
    return f"{LOGIN_AGAIN}, store it with: mfu-chat login --server {server}, then start mfu-chat again"


_BY_CODE: dict[ErrorCode, tuple[str, str, Severity]] = {
    ErrorCode.UNAUTHORIZED: ("Signed out", f"{LOGIN_AGAIN} and sign in again.", "error"),
    ErrorCode.FORBIDDEN: ("Not allowed", "This account may not do that. Ask the server's operator.", "error"),
    ErrorCode.NOT_FOUND: (
        "Not found",
        "The chat or message is gone, perhaps deleted in another terminal. Pick another chat (ctrl+o).",
        "warning",
    ),
    ErrorCode.CONFLICT: (
        "Still answering",
        "An answer is being written in this chat. Wait for it, or press esc to stop it; "
        "your message is kept and sent after.",
        "warning",
    ),
    ErrorCode.RATE_LIMITED: ("Too many requests", "Wait a moment; the message is tried again by itself.", "warning"),
    ErrorCode.TOO_LARGE: (
        "Message too long",
        "Shorten it, or attach less, and send again; your text and files are back in the message box.",
        "error",
    ),
    ErrorCode.QUOTA_EXCEEDED: (
        "Storage full",
        "Delete chats with f8 or in the chat list (ctrl+o), then send again; your text is back in the message box.",
        "error",
    ),
    ErrorCode.BAD_REQUEST: ("Not accepted", "The server did not understand the request. Your text is kept.", "error"),
    ErrorCode.PROVIDER_ERROR: (
        "The model failed",
        "Answer again with f5, or choose another model with ctrl+l.",
        "error",
    ),
    ErrorCode.UNAVAILABLE: (
        "Server storage unavailable",
        "The server cannot store anything right now; your message is kept and sent again by itself.",
        "warning",
    ),
    ErrorCode.INTERNAL: (
        "Server error",
        "Try again in a moment. If it keeps failing, tell the server's operator.",
        "error",
    ),
}


#: An error that ends an answer (it names the answer, not a frame the app sent): what became of the answer.
#: A model's failure is ``provider_error`` in ``_BY_CODE``; these are the server's own.
_ANSWER_BY_CODE: dict[ErrorCode, tuple[str, str, Severity]] = {
    ErrorCode.UNAVAILABLE: (
        "Answer not stored",
        "The server's storage failed, not the model. Press f5 to answer again once it is back; "
        "messages you send meanwhile are kept and sent by themselves.",
        "warning",
    ),
    ErrorCode.INTERNAL: (
        "Answer not stored",
        "The server failed to store it, not the model. Press f5 to answer again; "
        "if it keeps failing, tell the server's operator.",
        "error",
    ),
}


#: A ``provider_error`` of the model list (it names no message), or of an answer while there is no list:
#: the server's model server is out (or refuses it), not one model, so choosing another cannot help.
_MODELS_NOT_LISTED: tuple[str, str, Severity] = (
    "No models",
    "No model can answer until the server's model server is back: try again later (ctrl+l asks again); "
    "if it lasts, tell the server's operator.",
    "error",
)


class Advice(NamedTuple):
    """A notification: title, message, severity."""

    title: str
    message: str
    severity: Severity


def advise_error(error: ClientError, *, ends_answer: bool = False, models_listed: bool = True) -> Advice:
    """The notification for an error the client reported.

    Args:
        error: What the client reported.
        ends_answer: The error names an answer streaming here, and no frame the app sent:
            the server is ending that answer with it.
        models_listed: The server's model list came: a model's failure may then be that model's alone.
    """
    detail = error.message.rstrip(".")
    if error.code is None:
        return Advice("Connection problem", f"{detail}. The app keeps trying; nothing you typed is lost.", "warning")
    try:
        code = ErrorCode(error.code)
    except ValueError:  # a code this app does not know (a newer server's)
        return Advice("Error", f"{detail}. Try again in a moment.", "error")
    worded = _ANSWER_BY_CODE.get(code) if ends_answer else None
    if code is ErrorCode.PROVIDER_ERROR and (error.message_id is None or not models_listed):
        worded = _MODELS_NOT_LISTED
    title, next_step, severity = worded or _BY_CODE[code]
    return Advice(title, f"{detail}. {next_step}", severity)


def advise_stopped(state: ConnectionState, server: str, retry_key: str, sign_in_key: str = "f10") -> Advice | None:
    """The notification when the client stopped or gave up for a while; ``None`` when there is nothing to say.

    Args:
        state: The client's state (``DISCONNECTED``); its ``problem`` decides the words.
        server: The server's URL, token masked, for the hints.
        retry_key: The key that connects again now (as the keymap has it).
        sign_in_key: The key that opens the sign-in.
    """
    reason = (state.reason or "disconnected").rstrip(".")
    problem = state.problem
    if problem is None or problem is Problem.CLOSED:
        return None
    if problem is Problem.TOKEN_REFUSED:
        return Advice(
            "Signed out",
            f"The server refused the sign-in ({reason}). Press {sign_in_key} to paste a new token, "
            f"or: {login_again(server)}. What you type meanwhile is kept and sent once signed in.",
            "error",
        )
    if problem is Problem.ACCOUNT_DELETED:
        return Advice(
            "Account deleted",
            "The server's operator deleted this account's data: its chats and messages, on the server and in"
            " the copy kept on this machine. Messages not sent yet are kept; press"
            f" {retry_key} to start afresh on this server (they go then).",
            "error",
        )
    if problem is Problem.UNREACHABLE:
        # Not the reason, which starts with the title's words: what was tried, and what happened.
        return Advice(
            "Server unreachable",
            f"No connection to {server}: {state.last_error or 'no answer'}. "
            f"The app keeps trying and reconnects by itself (or press {retry_key} to try now); "
            "nothing you typed is lost. If it lasts, check that the server runs and that this machine can reach it.",
            "warning",
        )
    if problem in (Problem.NO_WEBSOCKET, Problem.TLS_MISMATCH, Problem.BAD_ADDRESS):
        return Advice(
            "Wrong server address",
            f"{reason}. Not tried again: fix the address (--server, or the config file: mfu-chat config path) "
            f"and start mfu-chat again, or press {retry_key} to try the same address again.",
            "error",
        )
    return Advice("Offline", f"Disconnected: {reason}. Press {retry_key} to connect again.", "error")
