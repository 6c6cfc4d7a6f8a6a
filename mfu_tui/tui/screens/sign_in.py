"""Ask for a new token after the server refused the old one, and check its shape before it is tried."""

from __future__ import annotations

import time
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Input, Static

from mfu_tui.protocol.tokens import token_problem
from mfu_tui.tui.screens.dialog import Dialog


class SignInScreen(Dialog[str | None]):
    """A hidden input for a token; dismiss with the token or ``None``.

    | Key(s) | Description | Binding id |
    | :- | :- | :- |
    | enter | Sign in with the token. | (the input's submit) |
    | escape | Close; the app stays signed out (f10 opens this again). | `sign_in.cancel` |
    """

    AUTO_FOCUS = "Input"

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="sign_in.cancel")]

    DEFAULT_CSS = """
    SignInScreen {
        align: center middle;
        & > Vertical {
            width: 72;
            max-width: 95%;
            height: auto;
            border: round $error;
            background: $surface;
            padding: 0 1;
        }
        & .hint { color: $text-muted; }
        & #sign-in-problem { color: $error; }
    }
    """

    def __init__(self, server: str, why: str, waiting: int) -> None:
        """
        Args:
            server: The server's URL, token masked.
            why: Why the server refused the old token, in words.
            waiting: Messages typed meanwhile, sent once signed in.
        """
        super().__init__()
        self._server = server
        self._why = why
        self._waiting = waiting

    def compose(self) -> ComposeResult:
        kept = f" Your {self._waiting} waiting message(s) are sent once signed in." if self._waiting else ""
        with Vertical() as box:
            box.border_title = "Sign in again"
            yield Static(f"The server at {self._server} refused the token: {self._why}.{kept}", markup=False)
            yield Static(
                "Paste a new token from the server's operator. It is saved like mfu-chat login does.",
                classes="hint",
                markup=False,
            )
            yield Input(password=True, placeholder="token (hidden)", id="token")
            yield Static("", id="sign-in-problem", markup=False)
            yield Static("enter: sign in · esc: stay signed out", classes="hint", markup=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        token = event.value.strip()
        problem = token_problem(token, time.time())
        if problem is not None:
            self.query_one("#sign-in-problem", Static).update(problem)
            return
        self.dismiss(token)

    def action_cancel(self) -> None:
        self.dismiss(None)
