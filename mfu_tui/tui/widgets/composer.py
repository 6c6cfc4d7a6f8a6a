"""The multi-line box where messages are written."""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import TextArea


class Composer(TextArea):
    """Where the user writes; ``enter`` sends, ``ctrl+j`` starts a new line.

    Terminals send the same key for ``shift+enter`` and ``enter``, so the
    portable newline is ``ctrl+j``. ``up`` in an empty composer brings back
    the last user message to edit it; sending it then edits that message
    and asks for a new answer. Nothing typed is cleared until the client
    took the message.

    | Key(s) | Description | Binding id |
    | :- | :- | :- |
    | enter | Send the message (or the edit). | `composer.send` |
    | ctrl+j | Insert a new line. | `composer.newline` |
    | up | In an empty composer: edit the last message. | `composer.edit_last` |
    | escape | Stop editing and clear the composer. | `composer.stop_editing` |
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "send", "Send", id="composer.send", tooltip="Send the message (or the edit)"),
        Binding("ctrl+j", "newline", "New line", id="composer.newline", tooltip="Insert a new line"),
        Binding(
            "up", "edit_last", "Edit last", id="composer.edit_last", show=False, tooltip="Edit last message (box empty)"
        ),
        Binding(
            "escape", "stop_editing", "Stop editing", id="composer.stop_editing", tooltip="Stop editing, clear the box"
        ),
    ]

    DEFAULT_CSS = """
    Composer {
        height: auto;
        min-height: 3;
        max-height: 10;
        border: round $border-blurred;
        padding: 0 1;
        &:focus { border: round $border; }
        &.-editing { border: round $warning; }
    }
    """

    editing_message_id: reactive[str | None] = reactive(None, init=False)
    """The id of the user message being edited, or ``None`` when writing a new one."""

    class Submitted(Message):
        """The user pressed enter on a message that is not blank."""

        def __init__(self, composer: Composer, text: str, editing_message_id: str | None) -> None:
            super().__init__()
            self.composer = composer
            self.text = text
            self.editing_message_id = editing_message_id

        @property
        def control(self) -> Composer:
            return self.composer

    class EditLastRequested(Message):
        """``up`` in an empty composer: the app should load the last user message."""

    def __init__(self, *, cursor_blink: bool = True, id: str | None = None) -> None:
        super().__init__(id=id, soft_wrap=True, show_line_numbers=False, tab_behavior="focus")
        self.set_reactive(TextArea.cursor_blink, cursor_blink)
        self.border_title = "Message"

    async def _on_key(self, event: events.Key) -> None:
        # TextArea takes enter as a new line before any binding sees it; while
        # enter is bound to "send" (users may remap it), send instead. Not a
        # priority binding: that would run before the keys typed just before
        # enter reach the text, and cut the message short.
        if any(binding.action == "send" for binding in self._bindings.key_to_bindings.get(event.key, ())):
            event.stop()
            event.prevent_default()
            self.action_send()
            return
        await super()._on_key(event)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop_editing":
            return self.editing_message_id is not None
        return True

    def action_send(self) -> None:
        text = self.text
        if text.strip():
            self.post_message(self.Submitted(self, text, self.editing_message_id))

    def action_newline(self) -> None:
        self.insert("\n")

    def action_edit_last(self) -> None:
        if self.text:
            self.action_cursor_up()
        else:
            self.post_message(self.EditLastRequested())

    def start_editing(self, message_id: str, text: str) -> None:
        """Load a sent message to edit it."""
        self.editing_message_id = message_id
        self.text = text
        self.move_cursor(self.document.end)

    def action_stop_editing(self) -> None:
        self.editing_message_id = None
        self.clear()

    def done(self) -> None:
        """The message was taken: clear the box and leave edit mode."""
        self.editing_message_id = None
        self.clear()

    def watch_editing_message_id(self, message_id: str | None) -> None:
        self.set_class(message_id is not None, "-editing")
        self.border_title = "Editing your last message (esc: stop)" if message_id else "Message"
        self.refresh_bindings()
