"""``i`` on a selected message: what the server knows of it (model, time, how it ended, tokens, speed)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Static

from mfu_tui.client import ClientError
from mfu_tui.client.safe_text import clean_text
from mfu_tui.protocol import StoredMessage
from mfu_tui.tui.screens.dialog import Dialog

#: What a figure the model server did not give shows.
UNKNOWN = "not reported by the model server"

#: What the dialog shows while the message is asked of the server.
LOADING = "Loading the details from the server…"

#: ``finishReason`` -> how an answer ended, in words (another reason is shown as sent).
FINISH_WORDS = {
    "stop": "the model finished",
    "length": "length limit: cut off",
    "content_filter": "stopped by the model server's content filter",
    "tool_calls": "the model asked to call a tool (this app offers none)",
    "cancelled": "stopped by you",
    "interrupted": "interrupted: the server stopped while it was written",
    "error": "failed: the model server gave no whole answer",
    "store_failed": "failed: the server could not store it (its database failed)",
}


def finish_words(message: StoredMessage) -> str:
    """How an answer ended, in words."""
    if message.status == "streaming":
        return "still being written"
    if message.finish_reason is None:
        return UNKNOWN
    return FINISH_WORDS.get(message.finish_reason, message.finish_reason)


def local_time(moment: datetime) -> str:
    """A stored time in this machine's time zone, to the second."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def tokens(count: int | None) -> str:
    """A token count with thousands separated, or ``UNKNOWN``."""
    return UNKNOWN if count is None else f"{count:,}"


def first_token(milliseconds: int | None) -> str:
    """Time to the first token: milliseconds below a second, else seconds."""
    if milliseconds is None:
        return UNKNOWN
    return f"{milliseconds} ms" if milliseconds < 1000 else f"{milliseconds / 1000:.2f} s"


def rate(tokens_per_second: float | None) -> str:
    """Tokens per second to one decimal, or ``UNKNOWN``."""
    return UNKNOWN if tokens_per_second is None else f"{tokens_per_second:,.1f} tokens/s"


def failure_words(error: ClientError | TimeoutError | None) -> str:
    """Why the message could not be fetched, in one line: ``error``, or ``None`` for a message no longer stored.

    The error's text is the server's (or the connection's): its controls are dropped and its lines joined.
    """
    if error is None:
        why = "this message is no longer on the server."
    elif isinstance(error, ClientError):
        why = " ".join(clean_text(error.message).split())
    else:
        why = "the server did not answer in time."
    return f"Could not get the details: {why}"


def detail_rows(message: StoredMessage, default_model: str | None) -> list[tuple[str, str]]:
    """``(label, value)`` lines for one message.

    Args:
        message: The message as stored.
        default_model: The server's default model, for a message that named none.
    """
    if message.model_id:
        model = message.model_id
    else:
        model = f"the server's default ({default_model})" if default_model else "the server's default"
    if message.role == "user":
        rows = [("Message", "yours"), ("Model asked", model), ("Sent", local_time(message.created_at))]
        if message.edited_at is not None:
            rows.append(("Edited", local_time(message.edited_at)))
        return rows
    usage = message.usage
    return [
        ("Message", "an answer"),
        ("Model", model),
        ("Written", local_time(message.created_at)),
        ("Ended", finish_words(message)),
        ("Prompt tokens", tokens(usage.prompt_tokens if usage else None)),
        ("Completion tokens", tokens(usage.completion_tokens if usage else None)),
        ("Time to first token", first_token(message.first_token_ms)),
        ("Tokens per second", rate(message.tokens_per_second)),
    ]


class DetailsScreen(Dialog[None]):
    """The details of one message, over the dimmed app.

    A message whose record is not at hand is fetched: the dialog opens at
    once, saying it is loading, so the keys read with the one that opened it
    go to the dialog; the details replace that line when they come, or else
    why they did not.

    | Key(s) | Description | Binding id |
    | :- | :- | :- |
    | escape | Close the details. | `details.close` |
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss", "Close", id="details.close")]

    DEFAULT_CSS = """
    DetailsScreen {
        align: center middle;
        & > Vertical {
            width: 72;
            max-width: 95%;
            height: auto;
            max-height: 95%;
            border: round $accent;
            border-title-color: $accent;
            background: $surface;
            padding: 0 1;
        }
        & .row { height: auto; }
        /* Labels in one column, so the values line up and a long one wraps under itself. */
        & .row > .label { width: 21; color: $text-muted; text-style: bold; }
        & .row > .value { width: 1fr; height: auto; }
        & #status { color: $text-muted; }
        & .hint { color: $text-muted; margin-top: 1; }
    }
    """

    message: reactive[StoredMessage | None] = reactive(None, recompose=True, init=False)
    """The message shown (its text is not: it is on screen already); ``None`` until it is fetched."""

    failure: reactive[str | None] = reactive(None, recompose=True, init=False)
    """Why the message could not be fetched (``failure_words``)."""

    def __init__(
        self,
        message: StoredMessage | Callable[[], Awaitable[StoredMessage | None]],
        default_model: str | None = None,
    ) -> None:
        """
        Args:
            message: The message as stored, or a coroutine function that fetches it
                (``ChatClient.find_message``: ``None`` if it is gone; it may raise
                ``ClientError`` or ``TimeoutError``).
            default_model: The server's default model, for a message that named none.
        """
        super().__init__()
        self._default_model = default_model
        if isinstance(message, StoredMessage):
            self.set_reactive(DetailsScreen.message, message)
            self._fetch_message = None
        else:
            self._fetch_message = message

    def on_mount(self) -> None:
        if self._fetch_message is not None:
            self._fetch(self._fetch_message)

    @work(group="details", exclusive=True)
    async def _fetch(self, fetch_message: Callable[[], Awaitable[StoredMessage | None]]) -> None:
        """Show the fetched message, or why there is none (closing the dialog cancels this)."""
        try:
            message = await fetch_message()
        except (ClientError, TimeoutError) as error:
            self.failure = failure_words(error)
            return
        if message is None:
            self.failure = failure_words(None)
        else:
            self.message = message

    def compose(self) -> ComposeResult:
        message = self.message
        with Vertical() as box:
            box.border_title = "Message details"
            box.border_subtitle = "esc to close"
            if message is None:
                yield Static(self.failure or LOADING, id="status", markup=False)  # cleaned: failure_words
                return
            for label, value in detail_rows(message, self._default_model):
                with Horizontal(classes="row"):
                    yield Static(f"{label}:", classes="label", markup=False)
                    yield Static(value, classes="value", markup=False)  # from the server: never markup
            if message.role == "user":
                yield Static("Tokens and timing are measured for answers.", classes="hint", markup=False)
