"""The multi-line box where messages are written."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import TextArea

from mfu_tui.client.attachments import Attachment
from mfu_tui.client.safe_text import clean_text
from mfu_tui.tui.draft_file import SAVE_AFTER, DraftFile
from mfu_tui.tui.prompt_history import PromptHistory

#: The panes whose request (``ask_the_app``) the app has not taken yet.
_ASKING: weakref.WeakSet[Widget] = weakref.WeakSet()


def ask_the_app(pane: Widget, request: Message) -> None:
    """Post ``request`` (for a dialog) straight to the app, and after it the keys ``pane`` gets until the app took it.

    Bubbling up, a pane's message reaches the app behind the keys read with
    the one that asked: those acted in the pane, or were typed into the
    message box, before the dialog opened (``f2`` then a title in one read).
    Posted to the app, it is taken before them; sent on after it, they go to
    the dialog (``ChatApp.on_event`` waits for its mount), or back to the
    pane if the app opened none.

    Args:
        pane: The widget whose key asked.
        request: The message for the app.
    """
    _ASKING.add(pane)
    pane.app.post_message(request)
    pane.app.call_later(_ASKING.discard, pane)  # in the app's queue, so after ``request``


def read_anew(widget: Widget, event: events.Key | events.Paste) -> None:
    """Take ``event`` from ``widget`` and give it to the app again, as if just read: it goes where the focus is then.

    For the keys read with one that opened a dialog over ``widget``, or asked the app for one.
    """
    event.stop()
    event.prevent_default()
    widget.app.post_message(_again(event))


def _again(event: events.Key | events.Paste) -> events.Key | events.Paste:
    """A copy of ``event`` not yet forwarded (Textual forwards an event once)."""
    return events.Paste(event.text) if isinstance(event, events.Paste) else events.Key(event.key, event.character)


def focus_message_box(pane: Widget) -> None:
    """Focus the message box of ``pane``'s screen at once, not at the next idle as ``focus()`` would.

    So the keys still coming, read with the one that moved the focus, go there.
    """
    pane.screen.set_focus(pane.screen.query_one(Composer))


async def pass_input_on(pane: Widget, event: events.Key | events.Paste, *, typing: bool) -> None:
    """Give ``event`` to the widget it belongs to, or run ``pane``'s key for it now.

    The conversation and the chat list call it first thing on each key and
    paste, so that typing anywhere but in a dialog writes the message. A key
    that means nothing in the pane (``typing``: a printable key that is not
    one of its own), or a paste, belongs in the message box, which takes the
    focus at once (a paste in the conversation used to be lost).

    A key that reaches the pane after the focus left it is the rest of a
    burst: over SSH or from a fast typist a word arrives in one read, and
    every key of it was sent to the pane focused when the read came. It goes
    on to the widget focused now, in order, instead of acting here (typing
    "queued" with a message selected wrote "quud" and tried to edit it twice).

    A key of the pane's own (``enter``, ``p``...) runs its binding here, as
    it comes. Left to bubble up, Textual looks the binding up once the key
    reaches the app, against whatever has the focus by then: the rest of the
    burst may have moved it to the message box, where ``enter`` sends (enter
    in the chat list with a message typed at once sent it, to a new chat).

    Args:
        pane: The widget the key or paste was sent to.
        event: The key or paste.
        typing: Whether it means nothing in ``pane``.
    """
    if pane in _ASKING or pane.screen is not pane.app.screen:
        read_anew(pane, event)  # read with a key that asked for a dialog (``ask_the_app``)
        return
    focused = pane.screen.focused
    if focused is pane and typing:
        focus_message_box(pane)
        focused = pane.screen.focused
    if focused is None:
        return
    if focused is pane:
        if isinstance(event, events.Key) and await pane.app._check_bindings(event.key):
            event.stop()
            event.prevent_default()
        return
    event.stop()
    event.prevent_default()
    # As Textual sends input to the focused widget: its bindings and the app's apply as if typed there.
    focused._forward_event(_again(event))


class Composer(TextArea):
    """Where the user writes; ``enter`` sends, ``ctrl+j`` starts a new line.

    Terminals send the same key for ``shift+enter`` and ``enter``, so the
    portable newline is ``ctrl+j``. ``up`` on the first line and ``down`` on
    the last walk the user's earlier prompts, as in a shell (what was being
    written comes back after the newest); ``ctrl+r`` searches them.
    ``ctrl+z`` undoes what was typed since the last send; with nothing to
    undo it suspends the app, as in any terminal program. While a
    sent message is being edited (``start_editing``), sending edits it and
    asks for a new answer. Enter takes the text out of the box at once, so
    what is typed after it (in the same read, over SSH) stays; until the
    client took the message (``done``) it is kept with the draft, and if it
    does not go (``refused``) it comes back, before what was typed since.
    What is being written is kept in a file (``DraftFile``)
    a moment after each change: it is back in the box at the next start,
    after a quit, a dropped connection or a crash. A paste is cleaned as
    any text from outside is (``clean_text``): an escape sequence in it goes
    whole, and is neither kept, sent nor exported. ``alt+a`` asks for a file
    to attach (``Attached``); the app
    shows it above the box and sends it with the message, as it does files
    named with ``@path`` in the text. ``pageup``/``pagedown`` scroll the
    conversation (``PageRequested``), as in a chat client: the box stays
    where it is, and keeps what is being written.

    | Key(s) | Description | Binding id |
    | :- | :- | :- |
    | enter | Send the message (or the edit). | `composer.send` |
    | ctrl+j | Insert a new line. | `composer.newline` |
    | up | On the first line: the previous prompt. | `composer.history_previous` |
    | down | On the last line: the next prompt. | `composer.history_next` |
    | ctrl+r | Search earlier prompts. | `composer.search_history` |
    | escape | Stop editing and clear the composer. | `composer.stop_editing` |
    | ctrl+u | Clear the message box (ctrl+z brings the text back). | `composer.clear` |
    | alt+a | Attach a text file or an image to the message. | `composer.attach` |
    | pageup / pagedown | Scroll the conversation a page up / down. | `composer.page_up` / `composer.page_down` |
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "send", "Send", id="composer.send", tooltip="Send the message (or the edit)"),
        Binding("ctrl+j", "newline", "New line", id="composer.newline", tooltip="Insert a new line"),
        Binding(
            "up",
            "history_previous",
            "Previous prompt",
            id="composer.history_previous",
            show=False,
            tooltip="Previous prompt (on the first line)",
        ),
        Binding(
            "down",
            "history_next",
            "Next prompt",
            id="composer.history_next",
            show=False,
            tooltip="Next prompt (on the last line)",
        ),
        Binding(
            "ctrl+r",
            "search_history",
            "Earlier prompts",
            id="composer.search_history",
            show=False,
            tooltip="Search earlier prompts",
        ),
        Binding(
            "escape", "stop_editing", "Stop editing", id="composer.stop_editing", tooltip="Stop editing, clear the box"
        ),
        # In place of the text area's "delete to the start of the line": a shell's ctrl+u
        # clears what was typed, and a message is mostly one line.
        Binding(
            "ctrl+u",
            "clear_box",
            "Clear",
            id="composer.clear",
            show=False,
            tooltip="Clear the message box (ctrl+z brings it back)",
        ),
        Binding(
            "alt+a",
            "attach",
            "Attach",
            id="composer.attach",
            # Off the footer, like ctrl+r: the footer is full, and F1 lists it.
            show=False,
            tooltip="Attach a text file or an image (or write @path in the message)",
        ),
        # In place of the text area's cursor moves by a page: a message is mostly a line or two, and the
        # conversation is what one pages through while writing.
        Binding(
            "pageup",
            "page_conversation(False)",
            "Page up",
            id="composer.page_up",
            show=False,
            tooltip="Scroll the conversation up a page",
        ),
        Binding(
            "pagedown",
            "page_conversation(True)",
            "Page down",
            id="composer.page_down",
            show=False,
            tooltip="Scroll the conversation down a page",
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
        """The user pressed enter: the text may be blank (a message of files only; the app decides)."""

        def __init__(self, composer: Composer, text: str, editing_message_id: str | None) -> None:
            super().__init__()
            self.composer = composer
            self.text = text
            self.editing_message_id = editing_message_id

        @property
        def control(self) -> Composer:
            return self.composer

    def __init__(
        self,
        prompts: PromptHistory,
        *,
        draft: DraftFile | None = None,
        keymap: Mapping[str, str] | None = None,
        cursor_blink: bool = True,
        id: str | None = None,
    ) -> None:
        """
        Args:
            prompts: The user's earlier prompts; ``up``, ``down`` and ``ctrl+r`` bring them back.
            draft: Where the text being written is kept until it is sent; its text is put back on mount.
            keymap: The user's keys by binding id (the app's keymap), for send and new line.
            cursor_blink: Blink the cursor.
            id: The widget id.
        """
        super().__init__(id=id, soft_wrap=True, show_line_numbers=False, tab_behavior="focus")
        #: The box's bindings and the text area's, with the keymap applied (see ``_on_key``).
        self._own_bindings = self._bindings.copy()
        self._own_bindings.apply_keymap(dict(keymap or {}))
        typing = {
            "send": self.action_send,
            "newline": self.action_newline,
            "search_history": self.action_search_history,
            "attach": self.action_attach,
        }
        #: The keys that send, start a new line or open a dialog: they act as the key comes.
        self._typing_keys: dict[str, Callable[[], None]] = {
            key: typing[binding.action]
            for key, key_bindings in self._own_bindings.key_to_bindings.items()
            for binding in key_bindings
            if binding.action in typing
        }
        self.set_reactive(TextArea.cursor_blink, cursor_blink)
        self.border_title = "Message"
        self.prompts = prompts
        self.draft = draft or DraftFile(None)
        #: The wait before the text is kept in ``draft``, while one runs (from the last change).
        self._draft_timer: Timer | None = None
        #: What enter sent that the app has neither taken (``done``) nor refused (``refused``) yet, oldest first.
        #: Out of the box at once, so the keys typed after enter (in the same read, over SSH) stay; kept with the
        #: draft meanwhile, so a crash before the outbox has it loses nothing.
        self._submitted: list[Composer.Submitted] = []
        #: The index in ``prompts.entries`` of the prompt shown, while walking them.
        self._recalled: int | None = None
        #: What was in the box when the walk began; it comes back after the newest prompt.
        self._before_walk = ""

    def on_mount(self) -> None:
        if kept := self.draft.load():
            self._show(kept)

    def on_unmount(self) -> None:
        if self._draft_timer is not None:  # quitting within a moment of a change: keep it now
            self.keep_draft()

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if self.editing_message_id is not None:
            return  # a sent message being edited is not a draft: it is stored already
        if not self._draft_text().strip():
            self._forget_draft()
        elif self._draft_timer is None:
            self._draft_timer = self.set_timer(SAVE_AFTER, self.keep_draft)
        else:
            self._draft_timer.reset()

    def keep_draft(self) -> bool:
        """Keep what the box holds in ``draft`` now (the wait for it over); True if there was text to keep.

        Not a sent message being edited: it is stored already (editing may
        have begun during the wait).
        """
        if self._draft_timer is not None:
            self._draft_timer.stop()
            self._draft_timer = None
        text = self._draft_text()
        if self.editing_message_id is not None or not text.strip():
            return False
        self.draft.save(text)
        return True

    def _draft_text(self) -> str:
        """What a draft keeps: the new messages sent but not taken yet, then the box's text, a line apart."""
        sent = [submitted.text for submitted in self._submitted if submitted.editing_message_id is None]
        return "\n".join(text for text in [*sent, self.text] if text.strip())

    def _forget_draft(self) -> None:
        if self._draft_timer is not None:
            self._draft_timer.stop()
            self._draft_timer = None
        self.draft.clear()

    async def _on_key(self, event: events.Key) -> None:
        if self.screen is not self.app.screen:
            read_anew(self, event)  # read with a key of the box that opened a dialog over it (ctrl+r)
            return
        # Send and new line run here, as the key comes, not as bindings:
        # TextArea takes enter as a new line before any binding sees it, and
        # a binding runs only once the key has bubbled up to the app, after
        # the text area inserted the keys that came with it in one read (over
        # a slow SSH link "abc", ctrl+j, "def" arrive together and came out
        # as "abcdef" and an empty line). Not priority bindings either: those
        # run before the keys typed just before them reach the text. The keys
        # that open a dialog act here too: the keys read after them are still
        # to come here, and go on to the dialog (above), not into the box.
        # A keymap may name a punctuation key by its character ("?"), Textual's event by name (question_mark).
        action = self._typing_keys.get(event.key) or self._typing_keys.get(event.character or "")
        if action is not None:
            event.stop()
            event.prevent_default()
            action()
            return
        if self.screen.focused is not self and self._typed_before_the_focus_moved(event):
            # Left to bubble up, the key would be looked up against the widget focused now and do nothing.
            if await self._run_own_binding(event.key):
                event.stop()
                event.prevent_default()
                return
        await super()._on_key(event)

    async def _on_paste(self, event: events.Paste) -> None:
        event.prevent_default()  # TextArea's handler, next in the MRO, would insert the text as it came
        # A terminal pastes a line break as CR, which cleaning would drop: as a newline, it stays.
        text = event.text.replace("\r\n", "\n").replace("\r", "\n")
        await super()._on_paste(events.Paste(clean_text(text)))

    def _typed_before_the_focus_moved(self, event: events.Key) -> bool:
        """Whether ``event``, reaching the box after the focus left it, was typed before the key that moved it.

        Textual sends every key of one read to the widget focused when the
        read came. A priority key of the app that moves the focus (``ctrl+o``)
        acts at once, before the keys read ahead of it reached the box: those
        were typed here and act here (``ctrl+u`` then ``ctrl+o`` clears the
        box, then goes to the list). The panes do not ask: what their keys act
        on, the selected message, goes with the focus (``Conversation.on_blur``).
        """
        # The app records the time in ``ChatApp.focus_now``; a bare app in a test moves no focus that way.
        return event.time < getattr(self.app, "focus_moved_by_key_at", 0.0)

    async def _run_own_binding(self, key: str) -> bool:
        """Run the box's binding for ``key`` here, wherever the focus is; whether one ran."""
        for binding in self._own_bindings.key_to_bindings.get(key, ()):
            if not binding.priority and await self.app.run_action(binding.action, self):
                return True
        return False

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop_editing":
            return self.editing_message_id is not None
        if action == "undo":
            # Nothing to undo: ctrl+z goes on to the app, which suspends to the shell, as in any terminal program.
            return bool(self.history.undo_stack)
        return True

    class Attached(Message):
        """The user chose a file to send with the message (read whole, checked)."""

        def __init__(self, file: Attachment) -> None:
            super().__init__()
            self.file = file

    class PageRequested(Message):
        """Page up or down was pressed in the box: the conversation scrolls."""

        def __init__(self, down: bool) -> None:
            super().__init__()
            self.down = down
            """True for a page down."""

    def action_page_conversation(self, down: bool) -> None:
        self.post_message(self.PageRequested(down))

    def action_send(self) -> None:
        submitted = self.Submitted(self, self.text, self.editing_message_id)
        self._submitted.append(submitted)
        self._empty()
        self.post_message(submitted)

    def action_attach(self) -> None:
        from mfu_tui.tui.screens.attach import AttachScreen  # where it opens, like the app's screens

        def take(file: Attachment | None) -> None:
            if file is not None:
                self.post_message(self.Attached(file))

        self.app.push_screen(AttachScreen(), take)

    def action_newline(self) -> None:
        self.insert("\n")

    def action_history_previous(self) -> None:
        prompts = self.prompts.entries
        on_top = self.cursor_at_first_line and self.navigator.is_first_wrapped_line(self.cursor_location)
        if self.editing_message_id is not None or not on_top or not prompts or self._recalled == 0:
            self.action_cursor_up()
            return
        if self._recalled is None:
            self._before_walk = self.text
            self._recalled = len(prompts)
        self._recalled -= 1
        self._show(prompts[self._recalled])

    def action_history_next(self) -> None:
        on_bottom = self.cursor_at_last_line and self.navigator.is_last_wrapped_line(self.cursor_location)
        if self._recalled is None or not on_bottom:
            self.action_cursor_down()
            return
        self._recalled += 1
        if self._recalled < len(self.prompts.entries):
            self._show(self.prompts.entries[self._recalled])
        else:
            self._recalled = None
            self._show(self._before_walk)

    def action_search_history(self) -> None:
        from mfu_tui.tui.screens.prompt_search import PromptSearch  # where it opens, like the app's screens

        def take(prompt: str | None) -> None:
            if prompt is not None:
                self._recalled = None
                self._show(prompt)

        self.app.push_screen(PromptSearch(self.prompts), take)

    def _show(self, text: str) -> None:
        self.text = text
        self.move_cursor(self.document.end)

    def start_editing(self, message_id: str, text: str) -> None:
        """Load a sent message to edit it."""
        self.editing_message_id = message_id
        self.text = text
        self.move_cursor(self.document.end)

    def action_clear_box(self) -> None:
        # Through the text area's edits, so ctrl+z brings the text back.
        self.select_all()
        self.delete(*self.selection, maintain_selection_offset=False)

    def action_stop_editing(self) -> None:
        self.editing_message_id = None
        self.clear()

    def done(self, submitted: Submitted) -> None:
        """The app took what ``submitted`` sent: it is no longer kept with the draft."""
        self._submitted.remove(submitted)
        self._forget_draft()  # at once: a draft left behind would come back at the next start, to be sent twice
        self.keep_draft()  # what was typed after it

    def refused(self, submitted: Submitted) -> None:
        """The app did not send ``submitted`` (it said why): its text comes back, before what was typed since."""
        self._submitted.remove(submitted)
        if submitted.editing_message_id is not None and self.editing_message_id is None and not self.text:
            self.editing_message_id = submitted.editing_message_id
        self._show("\n".join(text for text in (submitted.text, self.text) if text))

    def _empty(self) -> None:
        """Clear the box for the next message: leave edit mode, end a walk through the prompts."""
        self.editing_message_id = None
        self._recalled = None
        self._before_walk = ""
        self.clear()
        # A sent message is no edit to undo: ctrl+z would bring it back, and enter send it twice.
        self.history.clear()

    def watch_editing_message_id(self, message_id: str | None) -> None:
        self.set_class(message_id is not None, "-editing")
        self.border_title = "Editing your message (esc: stop)" if message_id else "Message"
        self.refresh_bindings()
