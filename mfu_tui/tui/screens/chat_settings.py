"""F3: the open chat's system prompt and sampling parameters."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Static, TextArea

from mfu_tui.protocol import (
    MAX_SEED,
    MAX_SYSTEM_PROMPT,
    MAX_TEMPERATURE,
    MAX_TOKENS,
    MAX_TOP_P,
    MIN_SEED,
    ChatParams,
    ChatSettings,
)
from mfu_tui.tui.screens.dialog import Dialog

#: Saves the settings; returns what went wrong, in words, or ``None`` once they are stored.
Save = Callable[[ChatSettings], Awaitable[str | None]]

#: Each parameter's input: (id and ``ChatParams`` field, label, what it must be).
FIELDS = (
    ("temperature", "Temperature", f"a number from 0 to {MAX_TEMPERATURE:g}"),
    ("top_p", "Top p", f"a number from 0 to {MAX_TOP_P:g}"),
    ("max_tokens", "Max tokens", f"a whole number from 1 to {MAX_TOKENS:,}"),
    ("seed", "Seed", "a whole number (64 bits)"),
)


def parse_param(name: str, text: str) -> tuple[float | int | None, str | None]:
    """The value of parameter ``name`` typed as ``text`` and, if it is not one, what it must be.

    An empty field is ``None``: the model's default.
    """
    text = text.strip()
    if not text:
        return None, None
    wanted = next(rule for field, _, rule in FIELDS if field == name)
    try:
        value: float | int = float(text) if name in ("temperature", "top_p") else int(text)
    except ValueError:
        return None, f"Must be {wanted}."
    bounds = {
        "temperature": (0.0, MAX_TEMPERATURE),
        "top_p": (0.0, MAX_TOP_P),
        "max_tokens": (1, MAX_TOKENS),
        "seed": (MIN_SEED, MAX_SEED),
    }
    lowest, highest = bounds[name]
    if not lowest <= value <= highest:
        return None, f"Must be {wanted}."
    return value, None


class ChatSettingsScreen(Dialog[ChatSettings | None]):
    """The system prompt and the parameters of one chat; dismissed with what was saved, or ``None``.

    Each field is checked as it is typed, its problem shown under it; a
    problem the server finds is shown at the bottom, and the screen stays
    open with what was typed.

    | Key(s) | Description | Binding id |
    | :- | :- | :- |
    | ctrl+s | Save and close. | `chat_settings.save` |
    | escape | Close without saving. | `chat_settings.cancel` |
    """

    AUTO_FOCUS = "TextArea"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save", id="chat_settings.save"),
        Binding("escape", "cancel", "Cancel", id="chat_settings.cancel"),
    ]

    DEFAULT_CSS = """
    ChatSettingsScreen {
        align: center middle;
        & > Vertical {
            width: 76;
            max-width: 95%;
            height: auto;
            max-height: 95%;
            border: round $accent;
            background: $surface;
            padding: 0 1;
        }
        & .chat-title { text-style: bold; }
        & TextArea { height: 6; }
        & Horizontal { height: auto; }
        & .label { width: 14; padding: 1 0 0 0; }
        & Input { width: 1fr; }
        & .error { color: $error; height: auto; padding: 0 0 0 14; }
        & .error.-empty { display: none; }
        & .hint { color: $text-muted; }
    }
    """

    def __init__(self, chat_title: str, settings: ChatSettings, save: Save) -> None:
        """
        Args:
            chat_title: The chat's title, shown as plain text.
            settings: The chat's settings now.
            save: Stores new settings (see ``Save``).
        """
        super().__init__()
        self._chat_title = chat_title
        self._settings = settings
        self._save = save

    def compose(self) -> ComposeResult:
        params = self._settings.params
        with Vertical() as box:
            box.border_title = "Chat settings"
            box.border_subtitle = "ctrl+s: save · esc: cancel"
            yield Static(self._chat_title, classes="chat-title", markup=False)
            yield Static("System prompt (sent first, as the system message; empty: none)", markup=False)
            yield TextArea(self._settings.system_prompt or "", id="system_prompt", soft_wrap=True)
            yield Static("", id="system_prompt-error", classes="error -empty", markup=False)
            for name, label, _ in FIELDS:
                value = getattr(params, name)
                with Horizontal():
                    yield Static(label, classes="label", markup=False)
                    yield Input(_shown(value), placeholder="the model's default", id=name)
                yield Static("", id=f"{name}-error", classes="error -empty", markup=False)
            yield Static("", id="save-error", classes="error -empty", markup=False)

    @on(Input.Changed)
    def _check_param(self, event: Input.Changed) -> None:
        if event.input.id is not None:
            self._show_error(event.input.id, parse_param(event.input.id, event.value)[1])

    @on(TextArea.Changed)
    def _check_prompt(self, event: TextArea.Changed) -> None:
        self._show_error("system_prompt", self._prompt_problem(event.text_area.text))

    @staticmethod
    def _prompt_problem(text: str) -> str | None:
        if len(text) > MAX_SYSTEM_PROMPT:
            return f"At most {MAX_SYSTEM_PROMPT:,} characters ({len(text):,} now)."
        return None

    def _show_error(self, field: str, problem: str | None) -> None:
        error = self.query_one(f"#{field}-error", Static)
        error.update(problem or "")
        error.set_class(problem is None, "-empty")

    def _read(self) -> ChatSettings | None:
        """The settings typed, or ``None`` after showing what is wrong (the first bad field focused)."""
        prompt = self.query_one(TextArea).text.strip()
        problems = {"system_prompt": self._prompt_problem(prompt)}
        values = {}
        for name, _, _ in FIELDS:
            values[name], problems[name] = parse_param(name, self.query_one(f"#{name}", Input).value)
        for field, problem in problems.items():
            self._show_error(field, problem)
        bad = [field for field, problem in problems.items() if problem is not None]
        if bad:
            self.query_one(f"#{bad[0]}").focus()
            return None
        return ChatSettings(system_prompt=prompt or None, params=ChatParams(**values))  # type: ignore[arg-type]

    def action_save(self) -> None:
        """Check the fields, then store them; close once stored."""
        settings = self._read()
        if settings is not None:
            self._store(settings)

    @work(exclusive=True)
    async def _store(self, settings: ChatSettings) -> None:
        self._show_error("save", None)
        problem = await self._save(settings)
        if problem is None:
            self.dismiss(settings)
        else:
            self._show_error("save", problem)

    def action_cancel(self) -> None:
        self.dismiss(None)


def _shown(value: float | int | None) -> str:
    """A parameter as its input shows it: ``0.3``, ``512``, or empty for the model's default."""
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)
