"""A model server's refusal as one plain sentence that says what to do.

Each dialect words its errors its own way, and all are read here:
``{"error": {"message": ...}}`` (OpenAI, OpenRouter, Ollama's ``/v1``,
llama.cpp, gateways), ``{"object": "error", "message": ...}`` (vLLM),
``{"error": "..."}`` (LM Studio, Ollama's own API), ``{"detail": ...}``
(FastAPI-based servers), plain text, and an HTML error page from a proxy in
front of any of them (reduced to its ``<title>``). The sentence names the
cause the user can act on: a bad API key, an account out of credit, an unknown model (with the ones
there are), a conversation longer than the model's context (with both
lengths when the server says them), a rate limit (with when to retry), a
failing server.
"""

from __future__ import annotations

import email.utils
import html
import json
import re
import time
from typing import Any

#: Longest server's own words quoted to the user.
MAX_DETAIL = 300

_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_BLANKS = re.compile(r"\s+")

#: How each dialect words the context limit, and the length asked for.
_CONTEXT_LIMIT = re.compile(
    r"maximum context length is (\d+)|context length of only (\d+)|must be <= (\d+)|(\d+) maximum"
    r"|n_ctx[\"']?\s*[:=]\s*(\d+)"
)
_CONTEXT_USED = re.compile(
    r"resulted in (\d+)|requested (?:about )?(\d+)|has (\d+) input tokens|keep the first (\d+) tokens|Given: (\d+)"
    r"|too long: (\d+) tokens|n_prompt_tokens[\"']?\s*[:=]\s*(\d+)"
)
_CONTEXT_WORDS = re.compile(r"context (length|size|window)|too many tokens|prompt is too long", re.IGNORECASE)


def error_text(body: bytes) -> str:
    """What a refusal's body says, in one line: its message, the title of an HTML page, or its text."""
    text = body.decode(errors="replace").strip()
    with_message = _message_in(_json_or_none(text))
    if with_message:
        return _one_line(with_message)
    title = _TITLE.search(text)
    if title:
        return _one_line(html.unescape(title.group(1)))
    return _one_line(html.unescape(_TAG.sub(" ", text)) if text.startswith("<") else text)


def stream_error_sentence(said: Any) -> str:
    """The sentence for an error event sent in the stream (``{"error": ...}``, llama.cpp's ``error:`` line)."""
    message = _one_line(_message_in(said) or json.dumps(said))
    limits = _context_lengths(said, message)
    if limits is not None:
        return _too_long(*limits)
    return f"the model stopped with an error: {message}"


def refusal_sentence(
    status: int, body: bytes, *, model: str, retry_after: float | None, available: list[str] | None
) -> str:
    """One sentence for an HTTP refusal of a completion, saying what to do.

    Args:
        status: The HTTP status.
        body: The start of the refusal's body.
        model: The model asked for.
        retry_after: Seconds the server asks to wait (``Retry-After``), if it said.
        available: For a 404, the models the server lists (None if it could not say).
    """
    detail = error_text(body) or "no reason given"
    said = _json_or_none(body.decode(errors="replace"))
    if status in (401, 403):
        return (
            f"the model server refused the API key (HTTP {status}: {detail}); "
            "set a valid one in MFU_OPENAI_API_KEY where the chat server runs"
        )
    if status == 404:
        if available is not None and model not in available:
            there = ", ".join(available) if available else "none"
            return f"the model server has no model {model!r} (it has: {there}); choose one of those (ctrl+l)"
        return (
            f"the model server answered 404 for model {model!r} ({detail}); "
            "check MFU_OPENAI_BASE_URL and the model's name"
        )
    if status == 402 or status == 429 and _code(said) == "insufficient_quota":
        return (
            f"the API key's account has no credit or quota left (HTTP {status}: {detail}); "
            "add some, or set another key in MFU_OPENAI_API_KEY where the chat server runs"
        )
    limits = _context_lengths(said, detail)
    if status in (400, 413, 422) and limits is not None:
        return _too_long(*limits)
    if status == 429:
        when = f"retry in {_seconds(retry_after)}" if retry_after is not None else "retry in a moment"
        return f"the model server is limiting requests ({detail}); {when}"
    if status >= 500:
        return (
            f"the model server failed (HTTP {status}: {detail}); "
            "try again in a moment, and if it goes on, its log says why"
        )
    return f"the model server refused the request (HTTP {status}: {detail})"


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` (seconds, or an HTTP date) as seconds from now, or None if absent or unreadable."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(moment.timestamp() - time.time(), 0.0)


def _too_long(used: int | None, limit: int | None) -> str:
    if used is not None and limit is not None:
        size = f" ({used:,} tokens; the model takes at most {limit:,})"
    elif limit is not None:
        size = f" (the model takes at most {limit:,} tokens)"
    elif used is not None:
        size = f" ({used:,} tokens)"
    else:
        size = ""
    return (
        f"the conversation is too long for the model{size}; start a new chat, or edit an earlier message to shorten it"
    )


def _context_lengths(said: Any, message: str) -> tuple[int | None, int | None] | None:
    """(tokens asked, the model's limit) when the error is about the context length, else None."""
    error = said.get("error", said) if isinstance(said, dict) else None
    fields = error if isinstance(error, dict) else {}
    marked = fields.get("code") == "context_length_exceeded" or fields.get("type") == "exceed_context_size_error"
    # llama.cpp gives the figures as fields; the others only in words.
    haystack = f"{message} {json.dumps(fields)}" if fields else message
    limit = _first_number(_CONTEXT_LIMIT.search(haystack))
    if not (marked or limit is not None or _CONTEXT_WORDS.search(message)):
        return None
    return _first_number(_CONTEXT_USED.search(haystack)), limit


def _code(said: Any) -> Any:
    """The ``error.code`` of an OpenAI-style error, if it has one."""
    error = said.get("error") if isinstance(said, dict) else None
    return error.get("code") if isinstance(error, dict) else None


def _first_number(match: re.Match[str] | None) -> int | None:
    if match is None:
        return None
    return int(next(group for group in match.groups() if group is not None))


def _seconds(seconds: float) -> str:
    whole = max(round(seconds), 1)
    return f"{whole} s" if whole < 120 else f"{round(whole / 60)} min"


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _message_in(said: Any) -> str | None:
    """The human part of an error's JSON, in whichever place its dialect puts it."""
    if isinstance(said, str):
        return said
    if isinstance(said, list) and said:  # some gateways wrap the error in a list
        return _message_in(said[0])
    if not isinstance(said, dict):
        return None
    error = said.get("error")
    if isinstance(error, str):
        return error
    for place in (error, said):
        if isinstance(place, dict):
            for key in ("message", "detail", "msg"):
                if isinstance(place.get(key), str) and place[key]:
                    return str(place[key])
    return None


def _one_line(text: str) -> str:
    text = _BLANKS.sub(" ", text).strip()
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"
