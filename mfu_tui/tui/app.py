"""``ChatApp``: the mfu-chat terminal app.

The app talks to the server only through ``mfu_tui.client.ChatClient``.
The client's callbacks run in the app's event loop; ``ClientEvents`` posts
what they report to the app as typed Messages, which its ``@on`` handlers
take one at a time, so every change to the conversation happens in the order
the frames came. The handlers change the ``ConversationModel`` (the open
chat, the answers running, the chat loading and what waits for it), then
show it: a chat being loaded keeps the events that arrive meanwhile until
its messages are on screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import threading
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from functools import partial, wraps
from typing import TYPE_CHECKING, ClassVar, TypeVar

from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.driver import Driver
from textual.filter import LineFilter, NoColor
from textual.reactive import var
from textual.screen import ModalScreen, Screen
from textual.theme import Theme
from textual.widget import Widget
from textual.widgets import Static

from mfu_tui.client import (
    REFUSED_FOR_GOOD,
    ClientError,
    ConnectionState,
    Problem,
    Status,
)
from mfu_tui.client.attachments import Attachment, AttachmentError
from mfu_tui.client.data_dir import default_data_dir
from mfu_tui.client.safe_text import clean_text
from mfu_tui.protocol import (
    ChatDetail,
    ChatParams,
    ChatSettings,
    ErrorCode,
    ModelInfo,
    SearchHit,
    SearchResults,
    StoredMessage,
)
from mfu_tui.redaction import redact
from mfu_tui.tui.advice import advise_error, advise_stopped
from mfu_tui.tui.ascii_only import AsciiOnly, ascii_key_display
from mfu_tui.tui.chat_window import Entry
from mfu_tui.tui.client_events import ClientEvents
from mfu_tui.tui.clipboard import osc52_sequence
from mfu_tui.tui.commands import ChatPalette, ChatsProvider
from mfu_tui.tui.conversation_model import ConversationModel
from mfu_tui.tui.draft_file import FILE_NAME as DRAFT_FILE
from mfu_tui.tui.draft_file import DraftFile
from mfu_tui.tui.export import export_chat
from mfu_tui.tui.file_mentions import mentioned_files
from mfu_tui.tui.keys import binding_rows, keys_of
from mfu_tui.tui.prompt_history import FILE_NAME as PROMPTS_FILE
from mfu_tui.tui.prompt_history import PromptHistory
from mfu_tui.tui.settings import AppChoices, AppSettings, ServerNotStarted, StartedServer
from mfu_tui.tui.status_text import LocalStart
from mfu_tui.tui.stream_pace import StreamPace
from mfu_tui.tui.terminal import ascii_only_wanted, colour_wanted, plain_text_wanted
from mfu_tui.tui.warm_up import start_warm_up
from mfu_tui.tui.widgets.attachment_chips import PendingFiles, info_of
from mfu_tui.tui.widgets.chat_list import ChatList
from mfu_tui.tui.widgets.composer import Composer
from mfu_tui.tui.widgets.conversation import ChatPages, Conversation
from mfu_tui.tui.widgets.header import AppHeader
from mfu_tui.tui.widgets.keys_footer import KeysFooter
from mfu_tui.tui.widgets.message_view import MessageView
from mfu_tui.tui.widgets.status_dot import StatusDot

# The client and the screens are imported where they are first used, after the
# first frame: none of them is needed to draw it (docs/benchmarks.md, startup).
if TYPE_CHECKING:
    from mfu_tui.client import ChatClient

#: Objects the collector lets be made (less those freed) before it looks for cycles among the young ones:
#: Python's 700 made it run some 110 times, and its older passes 10 times, in a 20,000-word answer's stream
#: (20 ms of the app's 150 ms of CPU; 9 ms at this). Most of what a frame makes (strips, segments, styles)
#: is freed by its last reference anyway: looked at less often, fewer of them are looked at at all.
COLLECT_YOUNG_EVERY = 10_000

#: Worker groups that load what the screen shows (see ``ChatApp.settled``).
_LOADING_GROUPS = {"refresh", "list", "load", "more", "reveal", "kept", "range"}
#: Below this many columns the chat list collapses: at 40 columns it would leave the conversation 14.
NARROW_BELOW = 64
#: The smallest terminal (columns, rows) the app draws in; below it, it says so.
MIN_SIZE = (30, 10)
#: The narrowest and widest the chat list can be made, in columns (as the config file allows).
SIDEBAR_COLUMNS = (12, 120)


_Event = TypeVar("_Event", bound=ClientEvents.ChatEvent)

#: The app's actions that move the focus, and those that open a dialog: priority bindings (see BINDINGS).
_FOCUS_ACTIONS = {"new_chat", "focus_chats", "toggle_sidebar"}
_DIALOG_ACTIONS = {"help", "search", "rename_chat", "delete_chat", "chat_settings", "pick_model", "sign_in"}


async def _opened(screen: Screen[object]) -> None:
    """Wait until ``screen``, pushed just now (a dialog), is mounted: a key read after it goes to its focus.

    Textual hands a key to the screen's focused widget, or to the screen itself while none is: a dialog
    has none until composed (``Dialog``), and the keys read with the one that opened it were lost.
    """
    if not screen.is_mounted:
        mounted = asyncio.Event()
        if screen.call_later(mounted.set):  # after its compose and mount; not at all once it is closed
            await mounted.wait()


_T = TypeVar("_T")


async def _in_daemon_thread(function: Callable[[], _T], name: str) -> _T:
    """``function()``, run in a thread of its own that does not keep the process alive.

    Not ``asyncio.to_thread``: the loop's executor is waited for when the app
    ends, and quitting must not wait for a local server that is still starting.
    """
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[_T] = loop.create_future()

    def settle(report: Callable[[], None]) -> None:
        if not outcome.done():  # cancelled if the app quit meanwhile
            report()

    def run() -> None:
        try:
            result = function()
        except Exception as error:
            report = partial(outcome.set_exception, error)
        else:
            report = partial(outcome.set_result, result)
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(settle, report)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await outcome


def _logged(handler: Callable[[ChatApp, _Event], Awaitable[None]]) -> Callable[[ChatApp, _Event], Awaitable[None]]:
    """A handler of what the client reports: if it fails, the failure is logged and the next events still shown."""

    @wraps(handler)
    async def logged(app: ChatApp, event: _Event) -> None:
        try:
            await handler(app, event)
        except Exception as error:  # one bad frame must not stop the stream of others
            app.log.error(f"could not show {event!r}: {error!r}")

    return logged


class ChatApp(App[None]):
    """The mfu-chat terminal app.

    | Key(s) | Description | Binding id |
    | :- | :- | :- |
    | ctrl+q | Quit. | `app.quit` |
    | f1 | Show every key. | `app.help` |
    | ctrl+p | Open the command palette. | (Textual's) |
    | escape | Stop the answer being written (shown only then). | `app.cancel` |
    | ctrl+c | Copy the selected message, or the last answer. Never quits. | `app.copy` |
    | ctrl+n | Start a new chat. | `app.new_chat` |
    | ctrl+o | Go to the chat list. | `app.chats` |
    | ctrl+f | Search every chat; enter opens the chat at the message. | `app.search` |
    | ctrl+b | Show or hide the chat list. | `app.toggle_sidebar` |
    | alt+right | Widen the chat list (kept for the next runs). | `app.widen_sidebar` |
    | alt+left | Narrow the chat list (kept for the next runs). | `app.narrow_sidebar` |
    | f2 | Rename the open chat. | `app.rename_chat` |
    | f8 | Delete the open chat (asks first). | `app.delete_chat` |
    | f3 | The open chat's system prompt and parameters. | `app.chat_settings` |
    | f4 | Show the archived chats in the list, or the others again. | `app.toggle_archived` |
    | ctrl+s | Export the open chat to a Markdown file. | `app.export` |
    | ctrl+l | Choose the model. | `app.pick_model` |
    | f5 | Answer the last message again (after an interrupted or failed answer). | `app.regenerate` |
    | f9 | Connect now, or again after the app stopped trying. | `app.reconnect` |
    | f10 | Sign in again with a new token (opens by itself once when the token is refused). | `app.sign_in` |
    | ctrl+z | Suspend to the shell, ``fg`` resumes (in the message box: undo, if any). | `app.suspend` |
    | f12 | Redraw the whole screen. | `app.redraw` |
    """

    CSS_PATH = "app.tcss"
    # Classes of the screen by its size (see app.tcss): below NARROW_BELOW columns
    # the chat list collapses; below MIN_SIZE the app says so instead of drawing.
    HORIZONTAL_BREAKPOINTS = [
        (0, "-tiny"),
        (MIN_SIZE[0], "-narrow"),
        (NARROW_BELOW, "-wide"),
    ]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (MIN_SIZE[1], "-tall")]
    TITLE = "mfu-chat"
    AUTO_FOCUS = "Composer"
    COMMANDS = App.COMMANDS | {ChatsProvider}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True, tooltip="Quit mfu-chat"),
        # The keys that open a dialog are priority too: the keys read after one go to the dialog, not to
        # the message box behind it (``on_event``), unless the focused widget has a binding of its own for
        # it (f2 in the chat list renames the highlighted chat: ``check_action``).
        Binding("f1", "help", "Help", id="app.help", priority=True, tooltip="Show every key"),
        Binding("escape", "cancel", "Stop answer", id="app.cancel", tooltip="Stop the answer being written"),
        Binding("ctrl+c", "copy", "Copy", id="app.copy", show=False, tooltip="Copy the message or last answer"),
        # The keys that move the focus are priority: their action runs before the next key of the same
        # read is sent on, so that key goes where the focus went (ctrl+o then enter opens a chat).
        # Not in a dialog (``check_action``), where the dialog's own keys come first.
        Binding("ctrl+n", "new_chat", "New chat", id="app.new_chat", priority=True, tooltip="Start a new chat"),
        Binding("ctrl+o", "focus_chats", "Chats", id="app.chats", priority=True, tooltip="Go to the chat list"),
        # Textual's own focus keys (its Screen's), made priority for the same reason, in dialogs too:
        # "0.3", tab, "0.9" in one read put "0.30.9" in the first field of the chat settings.
        Binding("tab", "focus_next", "Next field", show=False, priority=True, system=True),
        Binding("shift+tab", "focus_previous", "Previous field", show=False, priority=True, system=True),
        Binding("ctrl+f", "search", "Search", id="app.search", priority=True, show=False, tooltip="Search every chat"),
        Binding(
            "ctrl+b",
            "toggle_sidebar",
            "Sidebar",
            id="app.toggle_sidebar",
            priority=True,
            show=False,
            tooltip="Show or hide the chat list",
        ),
        Binding(
            "alt+right",
            "resize_sidebar(4)",
            "Wider list",
            id="app.widen_sidebar",
            show=False,
            tooltip="Widen the chat list",
        ),
        Binding(
            "alt+left",
            "resize_sidebar(-4)",
            "Narrower list",
            id="app.narrow_sidebar",
            show=False,
            tooltip="Narrow the chat list",
        ),
        Binding(
            "f2",
            "rename_chat",
            "Rename",
            id="app.rename_chat",
            priority=True,
            show=False,
            tooltip="Rename the open chat",
        ),
        Binding(
            "f8",
            "delete_chat",
            "Delete",
            id="app.delete_chat",
            priority=True,
            show=False,
            tooltip="Delete the open chat (confirm)",
        ),
        Binding(
            "f3",
            "chat_settings",
            "Chat settings",
            id="app.chat_settings",
            priority=True,
            show=False,
            tooltip="The open chat's settings",
        ),
        Binding(
            "f4",
            "toggle_archived",
            "Archived",
            id="app.toggle_archived",
            show=False,
            tooltip="Archived chats, or the others",
        ),
        Binding("ctrl+s", "export", "Export", id="app.export", show=False, tooltip="Export the open chat to Markdown"),
        Binding(
            "ctrl+l", "pick_model", "Model", id="app.pick_model", priority=True, show=False, tooltip="Choose the model"
        ),
        # Not priority: in the message box ctrl+z is the text area's undo (ctrl+u clears, ctrl+z brings back)
        # while there is something to undo (``Composer.check_action``).
        Binding(
            "ctrl+z",
            "suspend_process",
            "Suspend",
            id="app.suspend",
            show=False,
            tooltip="Suspend to the shell (fg resumes); in the message box: undo, if any",
        ),
        Binding("f12", "redraw", "Redraw", id="app.redraw", show=False, tooltip="Redraw the whole screen"),
        Binding(
            "f5",
            "regenerate",
            "Answer again",
            id="app.regenerate",
            show=False,
            tooltip="Answer the last message again",
        ),
        Binding("f9", "reconnect", "Reconnect", id="app.reconnect", show=False, tooltip="Connect to the server now"),
        Binding(
            "f10", "sign_in", "Sign in", id="app.sign_in", priority=True, show=False, tooltip="Sign in with a new token"
        ),
    ]

    # The app's state: the widgets that show it refresh themselves (its watchers). As reactives that repaint,
    # each change repainted the whole screen: every answer's start and end, every chat opened.

    chat_id: var[str | None] = var(None, init=False)
    """The open chat; ``None`` for a new chat not sent yet."""

    generating: var[str | None] = var(None, init=False)
    """The assistant message being written in the open chat, if any."""

    model_id: var[str | None] = var(None, init=False)
    """The model for new messages; ``None`` lets the server choose."""

    show_archived: var[bool] = var(False, init=False)
    """True while the chat list shows the archived chats instead of the others."""
    sidebar_width: var[int] = var(AppChoices.sidebar_width, init=False)
    """Columns of the chat list; at most half the screen is used."""

    def __init__(self, settings: AppSettings, *, client: ChatClient | None = None) -> None:
        """
        Args:
            settings: The server, the token and the app's choices.
            client: A client to use instead of one made from ``settings``.
        """
        super().__init__()
        self.settings = settings
        self.ascii_only = ascii_only_wanted() if settings.ascii_only is None else settings.ascii_only
        """Only ASCII is drawn: the terminal shows nothing more (``terminal.py``)."""
        self.plain = self.ascii_only or (plain_text_wanted() if settings.plain is None else settings.plain)
        colour = colour_wanted() if settings.colour is None else settings.colour
        # After Textual's own (NO_COLOR's among them): these change what is drawn, cell for cell.
        self._look_filters: list[LineFilter] = [
            *([AsciiOnly()] if self.ascii_only else []),
            *([] if colour else [NoColor()]),
        ]
        # Made at its first use (``client``), after the first frame: not needed to draw it.
        self._client = client
        # Where the outbox and the earlier prompts live.
        self._data_dir = client.outbox.path.parent if client else settings.client.data_dir or default_data_dir()
        self.models: list[ModelInfo] = []
        """The server's models, from ``list_models``."""
        # What the client reports, posted to this app as Messages in the order it came.
        self._client_events = ClientEvents(self.post_message)
        # The open chat, the one being created, the one loading and its held events, the answers running.
        self._chats: ConversationModel[ClientEvents.ChatEvent] = ConversationModel()
        # Streamed chunks shown at most 20 times a second.
        self._pace = StreamPace(self._about_a_chat, self.set_timer)
        # The message to show once its chat has loaded (a search result): (chat, message).
        self._reveal_target: tuple[str, str] | None = None
        # Set except between a connect and the client's "open" callback.
        self._opened = asyncio.Event()
        # The collector's thresholds before the app changed them (``on_load``): back when it ends.
        self._collector_thresholds = gc.get_threshold()
        self._opened.set()
        self._unsubscribe: list[Callable[[], None]] = []
        # The key being read while its priority binding runs (``on_event``), and when the last one that moved the
        # focus was made: a key made before it that is still on its way belongs to the widget it was sent to.
        self._key_in_hand: events.Key | None = None
        self.focus_moved_by_key_at = 0.0
        # Set once the server's chat list arrived: the kept copy must not replace it.
        self._listed_live = False
        # Set once the user was told that search is of the kept chats; cleared when back online.
        self._told_search_is_kept = False
        # Set once the sign-in opened by itself: a refused token offers it once, then a notification says the key.
        self._offered_sign_in = False
        # (title, message) of the notices shown about the connection, withdrawn when it is back.
        self._connection_notices: set[tuple[str, str]] = set()
        # The same for the notices of the server's storage being out, withdrawn when it says it is back.
        self._storage_notices: set[tuple[str, str]] = set()
        # And for those that something waits for the answer being written, withdrawn when it ends.
        self._answer_notices: set[tuple[str, str]] = set()
        # The open chat's system prompt and parameters, as last heard (None until its chat has loaded).
        self._open_settings: ChatSettings | None = None
        # The files of messages sent and not acked yet, by clientMessageId: back above the box if refused.
        self._sent_files: dict[str, list[Attachment]] = {}
        if settings.choices.keymap:
            self.set_keymap(settings.choices.keymap)

    # --- layout ------------------------------------------------------------

    def get_driver_class(self) -> type[Driver]:
        """Textual's driver, but on Linux and macOS one that reads a bracketed paste whole (``bracketed_paste.py``)."""
        chosen = super().get_driver_class()
        if sys.platform == "win32":  # Textual's Windows driver: its Linux one does not import there
            return chosen
        from textual.drivers.linux_driver import LinuxDriver

        from mfu_tui.tui.bracketed_paste import PasteDriver

        return PasteDriver if chosen is LinuxDriver else chosen

    def get_line_filters(self) -> Sequence[LineFilter]:
        """Textual's filters, then ASCII only and no colour when the terminal wants them."""
        return [*super().get_line_filters(), *self._look_filters]

    def get_key_display(self, binding: Binding) -> str:
        """The key as Textual shows it, its symbols as words (``enter``, ``up``) when only ASCII is drawn."""
        display = super().get_key_display(binding)
        return ascii_key_display(display) if self.ascii_only else display

    def compose(self) -> ComposeResult:
        yield AppHeader(self.settings.identity, plain=self.plain, id="header")
        yield Static(
            f"The terminal is too small: make it at least {MIN_SIZE[0]}x{MIN_SIZE[1]}.", id="too-small", markup=False
        )
        with Horizontal(id="main"):
            with Vertical(id="sidebar"):
                yield Static("Chats", id="sidebar-title", markup=False)
                yield ChatList(id="chat-list")
            with Vertical(id="chat-pane"):
                yield Conversation(window=self.settings.window, id="conversation")
                yield PendingFiles(id="pending-files")
                yield Composer(
                    PromptHistory(self._data_dir / PROMPTS_FILE),
                    draft=DraftFile(self._data_dir / DRAFT_FILE),
                    keymap=self.settings.choices.keymap,
                    cursor_blink=self.settings.cursor_blink,
                    id="composer",
                )
        yield KeysFooter()

    @property
    def conversation(self) -> Conversation:
        """The conversation pane."""
        return self.query_one(Conversation)

    @property
    def pending_files(self) -> PendingFiles:
        """The files attached to the message being written."""
        return self.query_one(PendingFiles)

    @property
    def composer(self) -> Composer:
        """The message box."""
        return self.query_one(Composer)

    @property
    def chat_list(self) -> ChatList:
        """The sidebar's chat list."""
        return self.query_one(ChatList)

    @property
    def status_dot(self) -> StatusDot:
        """The connection status in the header."""
        return self.query_one(StatusDot)

    # --- client wiring -------------------------------------------------------

    @property
    def messages_waiting(self) -> int:
        """Messages sent that the server has not taken yet: in the outbox, for the next run once the app quits."""
        return 0 if self._client is None else len(self._client.outbox)

    @property
    def client(self) -> ChatClient:
        """The connection to the server: the one given, else one made from the settings at its first use.

        ``on_ready`` uses it first, after the first frame: the client's
        imports (websockets) and its files (the outbox, the read cache) are
        not needed to draw it.
        """
        if self._client is None:
            from mfu_tui.client import ChatClient

            settings = self.settings
            self._client = ChatClient(
                settings.url,
                settings.token,
                settings.client,
                account=settings.account,
                user=settings.user,
                relocate=settings.relocate,
                keep_for_offline=True,
            )
        return self._client

    @property
    def _server_address(self) -> str:
        """The server's URL for what the app says, token masked; ``the local server`` before it is known."""
        return redact(self.client.url or "the local server")

    def on_load(self) -> None:
        # What is imported by now (Textual, the app, the protocol: some 40,000 objects the collector
        # tracks) lives as long as the app: frozen, it is left out of the full collection that would
        # otherwise fall in the first frame (about 28 ms of CPU). on_ready freezes what comes next. The young
        # objects are looked at less often (``COLLECT_YOUNG_EVERY``), until the app ends.
        gc.freeze()
        gc.set_threshold(COLLECT_YOUNG_EVERY, *self._collector_thresholds[1:])
        gc.enable()  # `mfu-chat` pauses the collector while it imports all that (cli._run_app)

    def on_mount(self) -> None:
        self.theme = self.settings.choices.theme
        self.theme_changed_signal.subscribe(self, self._theme_chosen)
        # Back from ctrl+z / fg (SIGCONT): the terminal was the shell's meanwhile.
        self.app_resume_signal.subscribe(self, lambda _: self.action_redraw())
        self.watch(self.screen, "focused", self._focus_moved)
        self.model_id = self.settings.choices.model
        self.sidebar_width = self.settings.choices.sidebar_width
        if self.settings.start_server is not None:
            self.status_dot.local_start = LocalStart.STARTING  # from the first frame on

    async def on_ready(self) -> None:
        """After the first frame (Textual's ``Ready``): the client is made and connects, not before it."""
        client = self.client
        self._unsubscribe = [
            client.on_state(self._on_client_state),
            client.on_message(self._client_events.frame),
            client.on_error(self._on_client_error),
            client.on_open(self._on_client_open),
        ]
        self.status_dot.state = client.state
        # What is alive once the first screen is drawn and the client made (modules, classes, these widgets)
        # lives as long as the app: frozen, it is left out of the collector's full passes, which walked all of
        # it again while an answer streamed (bench/render: 0.9 s of CPU in four runs of a 20,000-word answer, 0.1 s).
        gc.freeze()
        self.warm_up = start_warm_up()
        """The thread that makes the first answer's Markdown ready (``warm_up``)."""
        self._show_kept_chats()
        if self.settings.start_server is not None:
            self._start_server()
        else:
            await client.connect()

    @work(group="start", exclusive=True)
    async def _start_server(self) -> None:
        """Start or join the local server (``AppSettings.start_server``), then connect to it.

        In a thread, after the first frame: a cold start takes seconds. What is
        typed meanwhile waits in the outbox and is sent once connected.
        """
        assert self.settings.start_server is not None
        self.status_dot.local_start = LocalStart.STARTING
        try:
            server: StartedServer = await _in_daemon_thread(self.settings.start_server, "mfu-chat local server start")
        except ServerNotStarted as error:
            self.status_dot.local_start = LocalStart.FAILED
            why = clean_text(str(error)).rstrip(".")
            retry = self.keys_of("app.reconnect")
            message = f"{why}. Press {retry} to try again; what you type is kept and sent once it runs."
            self._connection_notices.add(("Local server not started", message))
            self.notify(message, title="Local server not started", severity="error", timeout=30, markup=False)
            return
        self.query_one(AppHeader).identity = clean_text(server.label)
        self.client.url, self.client.token = server.url, server.token
        self.status_dot.local_start = None
        if notice := server.notice:
            # Long enough to read a sentence or two; it is said once per run.
            self.notify(notice.message, title=notice.title, severity=notice.severity, timeout=12, markup=False)
        await self.client.connect()

    async def on_unmount(self) -> None:
        gc.unfreeze()  # collectable again once the app is gone (another app may run in the same process)
        gc.set_threshold(*self._collector_thresholds)
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        if self._client is not None:  # not made if the app ended before its first frame
            await self._client.close()

    def _handle_exception(self, error: Exception) -> None:
        """An error nothing caught ends the app (Textual's last resort): keep what can be kept.

        What was being written joins the earlier prompts (``up`` brings it
        back at the next start) and the traceback goes to the log file; the
        terminal, restored by Textual, gets one line saying where, instead
        of a screen of traceback.
        """
        first = self._exception is None
        super()._handle_exception(error)
        report = self.settings.report_crash
        if report is None or not first:
            return
        kept = self._keep_draft()
        try:
            where = f"the details are in {report(''.join(traceback.format_exception(error)))}"
        except OSError as problem:
            where = f"the details could not be written to the log file ({problem})"
        draft = " What you were writing is kept: it is back in the message box at the next start." if kept else ""
        line = f"mfu-chat stopped on an unexpected error ({type(error).__name__}); {where}.{draft}"
        # Textual's own exit message (the traceback) is replaced: the log has it.
        self._exit_renderables[:] = [Text(line)]

    def _keep_draft(self) -> bool:
        """Keep the message box's text for the next start now (``DraftFile``); True if there was some."""
        try:
            return self.query_one(Composer).keep_draft()
        except Exception:  # the app is failing already: the line on the way out matters more
            return False

    def _theme_chosen(self, theme: Theme) -> None:
        """A theme chosen in the palette is kept for the next runs (the one set at start is not news)."""
        if theme.name != self.settings.choices.theme:
            self.settings.choices.theme = theme.name
            self._remember("theme", theme.name, f"Theme {theme.name}")

    @work(group="remember")
    async def _remember(self, name: str, value: str | int, what: str | None) -> None:
        """Keep a choice for the next runs (``AppSettings.remember``), and say where it went.

        Args:
            name: The setting.
            value: Its value.
            what: The words for a notification; ``None`` for a choice made
                in small steps (a width), which is only told when not kept.
        """
        if self.settings.remember is None:
            return
        try:
            where = await asyncio.to_thread(self.settings.remember, name, value)
        except ValueError as error:
            self.notify(
                f"{what or name} is used for this run only: {error}",
                title="Not saved",
                severity="warning",
                markup=False,
            )
            return
        if what is not None:
            self.notify(f"{what}. {where}", title="Saved", markup=False)

    def _on_client_state(self, state: ConnectionState) -> None:
        previous = self.status_dot.state
        self.status_dot.state = state
        # Between "connected" and the client's "open" (resubscribed, outbox
        # sent) the refresh has not started yet: ``settled`` waits for it.
        if state.status is Status.CONNECTED and (previous is None or previous.status is not Status.CONNECTED):
            self._opened.clear()
        elif state.status is not Status.CONNECTED:
            self._opened.set()
        self.status_dot.waiting = len(self.client.outbox)
        if state.status is Status.DISCONNECTED and (previous is None or previous.status is not Status.DISCONNECTED):
            if state.problem is Problem.TOKEN_REFUSED and not self._offered_sign_in:
                self._offered_sign_in = True  # the screen says it all: no notification on top
                self.action_sign_in()
                return
            if state.problem is Problem.ACCOUNT_DELETED:
                # The client forgot its copy of the chats: what is on screen of them goes too.
                self.chat_list.add_page([], None, first=True)
                self.run_worker(self._start_new_chat(), group="load", exclusive=True)
            advice = advise_stopped(
                state, self._server_address, self.keys_of("app.reconnect"), self.keys_of("app.sign_in")
            )
            if advice is not None:
                self._connection_notices.add((advice.title, advice.message))
                self.notify(advice.message, title=advice.title, severity=advice.severity, timeout=30, markup=False)
        if state.status is Status.CONNECTED:
            self._withdraw(self._connection_notices)
            # Only as the storage comes back (or on a new connection, where a server whose storage
            # is out says so first): its refusal can come just before the status saying it is out.
            came_back = previous is not None and (
                previous.storage_unavailable is not None or previous.status is not Status.CONNECTED
            )
            if state.storage_unavailable is None and came_back:
                self._withdraw(self._storage_notices)

    def _withdraw(self, notices: set[tuple[str, str]]) -> None:
        """What ``notices`` said is not true any more (back online, storage back): they go."""
        if not notices:
            return
        for notification in list(self._notifications):
            if (notification.title, notification.message) in notices:
                self._unnotify(notification)
        notices.clear()

    def _on_client_error(self, error: ClientError) -> None:
        if error.code == ErrorCode.UNAUTHORIZED and error.client_message_id is None:
            return  # the token ran out: the close that follows opens the sign-in, one notice
        ends_answer = error.client_message_id is None and self._chats.is_running(error.message_id)
        title, message, severity = advise_error(error, ends_answer=ends_answer, models_listed=bool(self.models))
        # One failure can come twice (a request's answer and the error frame of
        # the same cause); one notification on screen is enough.
        if error.code is None:  # the connection's own trouble: withdrawn once connected again
            self._connection_notices.add((title, message))
        elif error.code == ErrorCode.UNAVAILABLE and not ends_answer:  # withdrawn once the storage is back
            self._storage_notices.add((title, message))
        if not any(note.title == title and note.message == message for note in self._notifications):
            self.notify(message, title=title, severity=severity, timeout=10, markup=False)
        # Refused for good: dropped from the outbox (others, like ``conflict``, are tried again).
        if error.client_message_id is not None and error.code in REFUSED_FOR_GOOD:
            self._give_back(error.client_message_id)

    @work(group="give-back")
    async def _give_back(self, client_message_id: str) -> None:
        """A sent message was refused for good: mark it and put its text and files back to edit."""
        for file in self._sent_files.pop(client_message_id, []):
            await self.pending_files.add(file)
        text = await self.conversation.refused(client_message_id)
        if text is not None and not self.composer.text:
            self.composer.text = text

    def _on_client_open(self) -> None:
        self._refresh_after_connect()
        self._opened.set()

    @work(group="refresh", exclusive=True)
    async def _refresh_after_connect(self) -> None:
        """After each (re)connect: the chat list, the models, and the open chat again."""
        try:
            await self._list_chats()
            self._listed_live = True
            self._told_search_is_kept = False
            self.models = (await self.client.list_models()).models
        except (ClientError, TimeoutError) as error:
            self._report(error)
            return
        if self.chat_id is not None:
            self.load_chat(self.chat_id)

    async def _list_chats(self) -> None:
        """The first page of the list shown: the archived chats or the others (``show_archived``)."""
        archived = self.show_archived
        page = await self.client.list_chats(archived=archived)
        self.chat_list.add_page(page.chats, page.next_cursor, first=True, archived=archived)
        self.query_one("#sidebar-title", Static).update("Archived chats" if archived else "Chats")

    @work(group="kept")
    async def _show_kept_chats(self) -> None:
        """Until the server answers, the chat list as last seen, so chats can be read offline."""
        chats = await self.client.cached_chats()
        if chats and not self._listed_live and not self.show_archived:
            self.chat_list.add_page(chats, None, first=True)
            self.query_one("#sidebar-title", Static).update("Chats (kept copy)")

    def keys_of(self, binding_id: str) -> str:
        """The key(s) of one of the app's bindings with the user's keymap (``f9``), for a hint."""
        return keys_of(type(self), self.settings.choices.keymap, binding_id)

    def _report(self, error: BaseException) -> None:
        if isinstance(error, ClientError):
            self._on_client_error(error)
        else:
            self.notify("The server did not answer in time. Try again.", title="No answer", severity="warning")

    async def settled(self) -> None:
        """Wait until every frame received so far is on screen and no chat is loading.

        For tests and screenshot scripts, which wait on this rather than on time.
        """
        await self._opened.wait()
        while True:
            loading = [w for w in self.workers if w.group in _LOADING_GROUPS and w.is_running]
            if loading:
                await self.workers.wait_for_complete(loading)
            posted = self._client_events.posted
            await self._handled_so_far()
            if self._client_events.posted == posted and not any(
                w.group in _LOADING_GROUPS and w.is_running for w in self.workers
            ):
                return

    async def _handled_so_far(self) -> None:
        """Wait until the app has handled every Message posted to it so far (they are handled in order),
        the streamed chunks it holds for a moment (``StreamPace``) shown too."""
        handled = asyncio.Event()

        async def release() -> None:
            await self._pace.release()
            handled.set()

        if self.call_later(release):
            await handled.wait()

    # --- what the client reports ---------------------------------------------

    @on(ClientEvents.ChatChanged)
    @_logged
    async def _chat_changed(self, event: ClientEvents.ChatChanged) -> None:
        self.chat_list.update_chat(event.chat, deleted=event.deleted)
        if event.chat_id != self.chat_id:
            return
        if event.deleted:
            await self._start_new_chat()
            self.notify("The open chat was deleted (perhaps in another terminal).", title="Chat deleted")
        else:
            self.query_one(AppHeader).chat_title = event.chat.title
            if event.settings is not None:
                self._open_settings = event.settings

    @on(ClientEvents.ChatCreated)
    @_logged
    async def _chat_created(self, event: ClientEvents.ChatCreated) -> None:
        if self._chats.created(event.client_message_id, event.chat_id):
            self._open_created_chat()
        if event.chat_id == self.chat_id:
            self.query_one(AppHeader).chat_title = event.title

    @on(ClientEvents.MessageStored)
    @_logged
    async def _message_stored(self, event: ClientEvents.MessageStored) -> None:
        await self._pace.release()  # the chunks of an answer before this one's
        self._sent_files.pop(event.client_message_id, None)
        if self._chats.created(event.client_message_id, event.chat_id):
            self._open_created_chat()
        if event.chat_id != self.chat_id:
            return
        await self.conversation.stored(event.client_message_id, event.message_id)
        self._answer_runs(event.chat_id, event.reply_id)
        await self.conversation.start_answer(event.reply_id)

    @on(ClientEvents.AnswerChunks)
    @_logged
    async def _answer_chunks(self, event: ClientEvents.AnswerChunks) -> None:
        await self._pace.chunks(event)

    @on(ClientEvents.AnswerEnded)
    @on(ClientEvents.UserMessage)
    @on(ClientEvents.MessageEdited)
    @on(ClientEvents.Reloaded)
    @on(ClientEvents.TextLoaded)
    @_logged
    async def _about_a_chat(self, event: ClientEvents.ChatEvent) -> None:
        """Shown if its chat is open, held if its chat is loading; after the chunks the pace holds."""
        await self._pace.release()
        if not self._chats.hold(event.chat_id, event):
            await self._show(event)

    async def _show(self, event: ClientEvents.ChatEvent) -> None:
        """Show an event about a chat: in the pane if the chat is open (else only an answer's end counts)."""
        if event.chat_id != self.chat_id:
            if isinstance(event, ClientEvents.AnswerEnded):
                self._chats.answer_runs(event.chat_id, None)
            return
        match event:
            case ClientEvents.AnswerChunks():
                self._answer_runs(event.chat_id, event.message_id)
                chunks = [(chunk.seq, chunk.content, chunk.kind == "reasoning") for chunk in event.chunks]
                await self.conversation.append(event.message_id, chunks)
            case ClientEvents.AnswerEnded():
                self._answer_runs(event.chat_id, None)
                await self.conversation.finish(event.message_id, event.ending)
                await self.conversation.next_waiting_goes()
            case ClientEvents.UserMessage():
                await self._show_user_message(event)
            case ClientEvents.MessageEdited():
                await self._show_edit(event)
            case ClientEvents.Reloaded():
                await self._show_reloaded(event)
            case ClientEvents.TextLoaded():
                await self.conversation.whole_text(event.message_id, event.content)

    async def _show_user_message(self, event: ClientEvents.UserMessage) -> None:
        """A message sent from another terminal of this user: shown here too, its answer after it.

        One sent from here is on screen already (it is known by its ``clientMessageId``).
        """
        conversation = self.conversation
        if conversation.knows(event.message_id, event.client_message_id):
            return
        view = MessageView("user", event.content, message_id=event.message_id, attachments=event.attachments)
        view.client_message_id = event.client_message_id
        await conversation.add(view)
        self._answer_runs(event.chat_id, event.reply_id)
        await conversation.start_answer(event.reply_id)

    async def _show_edit(self, event: ClientEvents.MessageEdited) -> None:
        # Changed where it is, mounted or not; an edit with regenerate dropped what followed it.
        regenerated = event.reply_id is not None
        if not await self.conversation.edited(
            event.message_id, event.content, regenerated=regenerated, reply_id=event.reply_id
        ):
            self.load_chat(event.chat_id)  # not loaded here: where it is and what follows come again
        elif event.reply_id is not None:
            self._answer_runs(event.chat_id, event.reply_id)

    async def _show_reloaded(self, event: ClientEvents.Reloaded) -> None:
        if event.ending is None:  # still streaming: its next chunks follow
            await self.conversation.set_text(event.message_id, event.content, event.reasoning)
            return
        self._answer_runs(event.chat_id, None)
        await self.conversation.finish(event.message_id, event.ending, event.content, event.reasoning)

    def _answer_runs(self, chat_id: str, message_id: str | None) -> None:
        """``message_id`` is the answer being written in ``chat_id`` now (``None``: none is); the keys follow."""
        self._chats.answer_runs(chat_id, message_id)
        if chat_id == self.chat_id:
            self.generating = message_id

    def _open_created_chat(self) -> None:
        """The new chat open here was created: it is the open chat now."""
        # Its first message carried the defaults, and the server created it with them.
        self._open_settings = self.settings.choices.new_chat
        self.chat_id = self._chats.open_chat
        self.chat_list.mark_current(self.chat_id)

    # --- opening chats -------------------------------------------------------

    def load_chat(self, chat_id: str) -> None:
        """Open a chat: subscribe to it, load its messages, show them in frame order."""
        if self._reveal_target is not None and self._reveal_target[0] != chat_id:
            self._reveal_target = None  # another chat was opened before the result's had loaded
        if chat_id != self.chat_id:
            self._open_settings = None
        self._chats.open(chat_id)
        self.chat_id = chat_id
        self.chat_list.mark_current(chat_id)
        summary = self.chat_list.chat(chat_id)
        header = self.query_one(AppHeader)
        header.chat_title, header.kept_copy = (summary.title if summary else ""), False
        self.generating = self._chats.generating
        self._fetch_chat(chat_id)

    @work(group="load", exclusive=True)
    async def _fetch_chat(self, chat_id: str) -> None:
        try:
            await self.client.subscribe(chat_id)  # offline too: sent as the connection opens
            if await self._show_kept_copy(chat_id):
                return
            detail = await self._page_of(chat_id)
        except (ClientError, TimeoutError) as error:
            if await self._show_kept_copy(chat_id):  # the connection dropped before the answer
                return
            self._client_events.post(ClientEvents.ChatNotLoaded(chat_id))
            self._report(error)
            return
        self._client_events.post(ClientEvents.ChatLoaded(chat_id, detail))

    async def _show_kept_copy(self, chat_id: str) -> bool:
        """Offline: show the copy of ``chat_id`` kept on disk, if there is one; whether it was shown.

        At once, rather than after a request waited ``request_timeout`` for a connection: the chat
        open is loaded again as the connection opens (``_refresh_after_connect``).
        """
        if self.client.state.status is Status.CONNECTED:
            return False
        kept = await self.client.cached_chat(chat_id)
        if kept is None:
            return False
        self._client_events.post(ClientEvents.ChatLoaded(chat_id, kept, kept=True))
        return True

    @on(ClientEvents.ChatNotLoaded)
    @_logged
    async def _chat_not_loaded(self, event: ClientEvents.ChatNotLoaded) -> None:
        for held in self._chats.not_loaded(event.chat_id):
            await self._show(held)

    @on(ClientEvents.ChatLoaded)
    @_logged
    async def _chat_loaded(self, event: ClientEvents.ChatLoaded) -> None:
        held = self._chats.loaded(event.chat_id)
        if held is None:
            return  # another chat was opened meanwhile
        detail = event.detail
        pages = None if event.kept else self._pages_of(event.chat_id)  # a kept copy is all there is offline
        await self.conversation.show_messages(
            detail.messages, offset=detail.offset, total=detail.chat.message_count, pages=pages
        )
        await self._show_waiting(event.chat_id, detail.messages)
        self._open_settings = detail.settings
        header = self.query_one(AppHeader)
        header.chat_title, header.kept_copy = detail.chat.title, event.kept
        streaming = [m.id for m in detail.messages if m.role == "assistant" and m.status == "streaming"]
        self._answer_runs(event.chat_id, streaming[-1] if streaming else None)
        for item in held:
            await self._show(item)
        if self._reveal_target is not None and self._reveal_target[0] == event.chat_id:
            self._reveal(self._reveal_target[1])
            self._reveal_target = None

    async def _show_waiting(self, chat_id: str, newest: list[StoredMessage]) -> None:
        """Below a chat just shown, its messages still in the outbox, marked sending, in the order they go.

        Typed in an earlier run, or shown before the chat was loaded again: without their views, each
        one's answer came first on screen and the message itself below it, once the server sent it back.
        """
        stored = {message.client_message_id for message in newest if message.client_message_id}
        answering = any(message.status == "streaming" for message in newest)
        for entry in self.client.outbox.pending():
            if entry.chat_id == chat_id and entry.client_message_id not in stored:
                files = [info_of(file) for file in entry.files()]
                view = MessageView(
                    # Read back from a file: shown only once its control characters are stripped.
                    "user",
                    clean_text(entry.content),
                    status="waiting" if answering else "sending",
                    attachments=files,
                )
                answering = True  # the next one waits for this one's answer
                view.client_message_id = entry.client_message_id
                await self.conversation.add(view)

    def _waits_in(self, chat_id: str | None) -> bool:
        """Whether a message sent now to ``chat_id`` waits for an answer there to end (the outbox's order)."""
        if chat_id is None:
            return False
        return self._chats.running(chat_id) is not None or any(
            e.chat_id == chat_id for e in self.client.outbox.pending()
        )

    def _pages_of(self, chat_id: str) -> ChatPages:
        """How the pane asks the server for more of ``chat_id``'s messages."""
        return ChatPages(
            lambda offset: self._page_of(chat_id, offset=offset),
            lambda message_id: self._page_of(chat_id, at=message_id),
        )

    async def _page_of(self, chat_id: str, *, offset: int | None = None, at: str | None = None) -> ChatDetail:
        """A page of ``chat_id`` for the pane; the rest of a message too long to come whole follows it."""
        detail = await self.client.get_chat(chat_id, offset=offset, at=at)
        # Asked for as the page is placed, so only messages about to be shown are loaded whole.
        self.client.load_whole_texts(chat_id, detail.messages)
        return detail

    def open_at(self, chat_id: str, message_id: str) -> None:
        """Open a chat scrolled to one of its messages, selected."""
        self._reveal_target = (chat_id, message_id)
        self.load_chat(chat_id)

    @work(group="reveal", exclusive=True)
    async def _reveal(self, message_id: str) -> None:
        if not await self.conversation.reveal(message_id):
            self.notify(
                "That message could not be loaded: it may have been deleted, or the server did not answer.",
                title="Not shown",
                severity="warning",
            )

    async def _start_new_chat(self) -> None:
        self._chats.start_new()
        self.chat_id = None
        self._open_settings = None
        self.generating = None
        self.chat_list.mark_current(None)
        header = self.query_one(AppHeader)
        header.chat_title, header.kept_copy = "", False
        await self.conversation.clear()

    # --- widget messages -----------------------------------------------------

    @on(ChatList.Opened)
    def _open_from_list(self, event: ChatList.Opened) -> None:
        self.load_chat(event.chat_id)
        self.focus_now(self.composer)

    def focus_now(self, widget: Widget) -> None:
        """Focus ``widget`` at once, not at the next idle as ``Widget.focus`` does.

        A key that moves the focus (ctrl+o, ctrl+n, enter in the chat list) is
        often read with the next one, over SSH or from a quick hand: that key
        must go where the focus went (ctrl+o then enter opens the chat; with
        ``focus()`` the enter went to the message box and was lost).
        """
        widget.screen.set_focus(widget)
        if self._key_in_hand is not None:
            # A priority key (ctrl+o) runs before the keys read ahead of it reached their widget: those keep
            # acting there (``Composer._typed_before_the_focus_moved``): ctrl+u then ctrl+o in one read still clears.
            self.focus_moved_by_key_at = self._key_in_hand.time

    def _yields_to_the_focus(self, action: str) -> bool:
        """Whether the focused widget, or a widget around it, binds ``action``'s key too (its key being read, if any).

        Then the widget's binding acts, and the footer shows it: Textual's
        footer shows a priority binding in place of the widget's.
        """
        keys = [
            key for key, bindings in self._bindings.key_to_bindings.items() if any(b.action == action for b in bindings)
        ]
        if self._key_in_hand is not None and self._key_in_hand.key in keys:
            keys = [self._key_in_hand.key]
        chain = self.screen._modal_binding_chain
        widgets = [bindings for node, bindings in chain if isinstance(node, Widget) and not isinstance(node, Screen)]
        below = {key for bindings in widgets for key in bindings.key_to_bindings}
        return bool(keys) and all(key in below for key in keys)

    async def on_event(self, event: events.Event) -> None:
        # A key straight from the terminal: its priority bindings run in ``App.on_event`` (see ``focus_now``).
        if isinstance(event, events.Key) and not event.is_forwarded:
            await _opened(self.screen)
            self._key_in_hand = event
            try:
                await super().on_event(event)
            finally:
                self._key_in_hand = None
        else:
            await super().on_event(event)

    def _focus_moved(self, focused: Widget | None) -> None:
        # On a narrow screen the chat list shows only while it has the focus (app.tcss).
        self.query_one("#sidebar").set_class(focused is self.chat_list, "-open")

    @on(ChatList.RenameRequested)
    def _rename_from_list(self, event: ChatList.RenameRequested) -> None:
        self._rename(event.chat_id)

    @on(ChatList.DeleteRequested)
    def _delete_from_list(self, event: ChatList.DeleteRequested) -> None:
        self._delete(event.chat_id)

    @on(ChatList.PinRequested)
    def _pin_from_list(self, event: ChatList.PinRequested) -> None:
        self._change_chat(event.chat_id, pinned=event.pinned)

    @on(ChatList.ArchiveRequested)
    def _archive_from_list(self, event: ChatList.ArchiveRequested) -> None:
        self._change_chat(event.chat_id, archived=event.archived)

    @work(group="update")
    async def _change_chat(self, chat_id: str, *, pinned: bool | None = None, archived: bool | None = None) -> None:
        """Pin or archive a chat (or undo either); the list follows the server's answer."""
        try:
            updated = await self.client.update_chat(chat_id, pinned=pinned, archived=archived)
        except (ClientError, TimeoutError) as error:
            self._report(error)
            return
        self.chat_list.update_chat(updated.chat)
        if archived is not None:
            name = f"“{updated.chat.title}”"
            if archived:
                self.notify(f"Archived {name}; f4 shows the archived chats.", title="Chat archived", markup=False)
            else:
                self.notify(f"{name} is back in the chat list.", title="Chat unarchived", markup=False)

    @on(ChatList.MoreWanted)
    @work(group="more", exclusive=True)
    async def _more_chats(self) -> None:
        cursor = self.chat_list.next_cursor
        if cursor is None:
            return
        try:
            page = await self.client.list_chats(before=cursor, archived=self.chat_list.archived)
        except (ClientError, TimeoutError) as error:
            self._report(error)
            return
        self.chat_list.add_page(page.chats, page.next_cursor)

    @on(Composer.PageRequested)
    def _page_conversation(self, event: Composer.PageRequested) -> None:
        self.conversation.page(down=event.down)

    @on(Composer.Attached)
    async def _take_file(self, event: Composer.Attached) -> None:
        await self.pending_files.add(event.file)

    @on(Composer.Submitted)
    async def _send(self, event: Composer.Submitted) -> None:
        """Send what enter took out of the box, after asking if an edit would drop later messages."""
        edited = event.editing_message_id
        dropped = self.conversation.dropped_by_answering(edited) if edited is not None and event.text.strip() else 0
        if not dropped:
            await self._take(event)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._take(event), group="send")
            else:
                self.composer.refused(event)  # back in the box, still the edit

        from mfu_tui.tui.screens.confirm import ConfirmScreen

        question = f"Send this edit? It is answered again, and the {dropped} message(s) after its answer are dropped."
        self.push_screen(ConfirmScreen(question, yes="Send", no="Keep editing"), answered)

    async def _take(self, event: Composer.Submitted) -> None:
        """Send what enter took out of the box; if it does not go, it goes back (``Composer.refused``)."""
        taken = False
        try:
            if event.editing_message_id is not None:
                taken = bool(event.text.strip()) and await self._send_edit(event.editing_message_id, event.text)
            else:
                taken = await self._send_message(event)
        finally:
            if taken:
                self.composer.done(event)
            else:
                self.composer.refused(event)

    async def _send_message(self, event: Composer.Submitted) -> bool:
        """Send a new message; False if it did not go (the user was told why, but for an empty one)."""
        try:
            # Files named with @path are read now: a file that cannot go stops the send, the draft kept.
            files = [*self.pending_files.attached, *mentioned_files(event.text)]
        except AttachmentError as error:
            self.notify(f"{error}. Your message is kept.", title="Not sent", severity="error", markup=False)
            return False
        if not event.text.strip() and not files:
            return False
        # The id is made here, so the message is on screen and known as "ours"
        # before the server can answer it.
        client_message_id = str(uuid.uuid4())
        system_prompt = params = None
        defaults = self.settings.choices.new_chat
        if self.chat_id is None and defaults != ChatSettings():
            # On the message itself, not in a request once the chat exists: kept in the outbox with it,
            # so no reconnect can lose them, and the first answer is already made with them.
            system_prompt = defaults.system_prompt
            params = defaults.params if defaults.params != ChatParams() else None
        status = "waiting" if self._waits_in(self.chat_id) else "sending"
        self._chats.sending(client_message_id)
        view = MessageView("user", event.text, status=status, attachments=[info_of(file) for file in files])
        view.client_message_id = client_message_id
        await self.conversation.add(view, show=True)
        try:
            await self.client.send_message(  # into the on-disk outbox first
                self.chat_id,
                event.text,
                self.model_id,
                system_prompt=system_prompt,
                params=params,
                attachments=files,
                client_message_id=client_message_id,
            )
            self.status_dot.waiting = len(self.client.outbox)
        except (ClientError, ValueError, OSError) as error:
            # Not kept anywhere: the text stays in the box to fix and resend.
            await self.conversation.withdraw(client_message_id)
            self._chats.not_sent(client_message_id)
            if isinstance(error, ClientError):
                self._report(error)
            else:
                self.notify(f"Could not keep the message: {error}.", title="Not sent", severity="error", markup=False)
            return False
        if files:
            self._sent_files[client_message_id] = files
        self.composer.prompts.add(event.text)
        await self.pending_files.clear()
        self.conversation.anchor()
        return True

    async def _send_edit(self, message_id: str, text: str) -> bool:
        """Send an edit of a message of the user's, answered again; False if it did not go."""
        if self.chat_id is None or not await self._answer_again(message_id, text, "Your text is back in the box."):
            return False
        self.composer.prompts.add(text)
        self.conversation.anchor()  # the new answer is written below it: follow it, as after a send
        return True

    def action_sign_in(self) -> None:
        """Ask for a new token; the client signs in with it, and it is saved once the server takes it."""
        from mfu_tui.tui.screens.sign_in import SignInScreen

        state = self.client.state
        why = (state.reason or "signed out") if state.problem is Problem.TOKEN_REFUSED else "a new token was asked for"
        screen = SignInScreen(self._server_address, why, len(self.client.outbox))
        self.push_screen(screen, self._signed_in)

    def _signed_in(self, token: str | None) -> None:
        if token is not None:
            self._sign_in(token)

    @work(group="sign_in", exclusive=True)
    async def _sign_in(self, token: str) -> None:
        """Connect with ``token``; once the server takes it, keep it like ``mfu-chat login``."""
        waiting = len(self.client.outbox)
        try:
            await self.client.sign_in(token)
            await self.client.wait_connected(timeout=self.settings.client.request_timeout)
        except (ClientError, TimeoutError) as error:
            why = str(error) or "no answer from the server"
            self.notify(f"Not signed in: {why}", title="Sign in", severity="error", markup=False)
            return
        # A first token that named nobody showed the host alone: the user is known now.
        self.query_one(AppHeader).identity = replace(self.settings, token=token).identity
        sent = f" {waiting} waiting message(s) are being sent." if waiting else ""
        saved = ""
        if self.settings.save_token is not None and self.client.url is not None:
            try:
                saved = " " + await asyncio.to_thread(self.settings.save_token, self.client.url, token)
            except ValueError as error:
                saved = f" The token is for this run only: {error}"
        self.notify(f"Signed in to {self._server_address}.{sent}{saved}", title="Signed in", markup=False)

    async def action_reconnect(self) -> None:
        """Connect now: skip the backoff's wait, or start again after the client stopped (or the local server)."""
        if self.status_dot.local_start is LocalStart.STARTING:
            self.notify("The local server is starting.", markup=False)
            return
        if self.status_dot.local_start is LocalStart.FAILED:
            self._withdraw(self._connection_notices)
            self._start_server()
            return
        if self.client.state.status is Status.CONNECTED:
            self.notify("Already connected.", markup=False)
            return
        message = f"Connecting to {self._server_address}"
        self._connection_notices.add(("Reconnect", message))  # withdrawn once connected: it said "connecting"
        self.notify(message, title="Reconnect", markup=False)
        await self.client.reconnect()

    def action_regenerate(self) -> None:
        """Answer the last message again: after an interrupted, failed or unhelpful answer."""
        entry = self.conversation.last_user_entry()
        if entry is None:
            self.notify("There is no sent message to answer again in this chat.", severity="warning")
        else:
            self._regenerate(entry)

    @on(Conversation.RegenerateRequested)
    def _regenerate_requested(self, event: Conversation.RegenerateRequested) -> None:
        self._regenerate(event.entry)

    def _regenerate(self, asked: Entry) -> None:
        """Answer the user message ``asked`` again, after asking if later messages would go."""
        if self.chat_id is None or asked.message_id is None:
            self.notify("This message is not stored yet: wait for it to be sent.", severity="warning")
            return
        if self.generating is not None:
            self._while_the_answer_runs("An answer is being written: stop it first (esc).")
            return
        message_id, text = asked.message_id, asked.text
        dropped = self.conversation.dropped_by_answering(message_id)
        if not dropped:
            self.run_worker(self._answer_again(message_id, text, "Try again in a moment."), group="regenerate")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._answer_again(message_id, text, "Try again in a moment."), group="regenerate")

        from mfu_tui.tui.screens.confirm import ConfirmScreen

        question = f"Answer this message again? The {dropped} message(s) after its answer are dropped."
        self.push_screen(ConfirmScreen(question, yes="Answer again", no="Keep"), answered)

    async def _answer_again(self, message_id: str, text: str, what_now: str) -> bool:
        """Make ``text`` the message's and answer it again (what follows it goes); False if refused."""
        assert self.chat_id is not None
        try:
            await self.client.edit_message(self.chat_id, message_id, text, regenerate=True)
        except (ClientError, ValueError) as error:
            self.notify(f"Not sent: {error}. {what_now}", title="Not sent", severity="error", markup=False)
            return False
        await self.conversation.edited(message_id, text, regenerated=True)
        return True

    def action_edit_last(self) -> None:
        """Edit the last message sent in this chat, in the message box."""
        entry = self.conversation.last_user_entry()
        if entry is None:
            self.notify("There is no sent message to edit in this chat.", severity="warning")
        else:
            self._edit(entry)

    @on(Conversation.EditRequested)
    def _edit_requested(self, event: Conversation.EditRequested) -> None:
        self._edit(event.entry)
        if event.entry.message_id is not None:
            # Its text may fill the box, which grows over the pane's bottom lines: the message stays in sight.
            self.conversation.keep_shown(event.entry.message_id)

    def _edit(self, message: Entry) -> None:
        if message.message_id is None:
            self.notify("This message is not stored yet: wait for it to be sent.", severity="warning")
            return
        if self.generating is not None:
            self._while_the_answer_runs("Wait for the answer to end (or press esc) before editing.")
            return
        self.composer.start_editing(message.message_id, message.text)
        self.focus_now(self.composer)

    @on(Conversation.DetailsRequested)
    def _details_requested(self, event: Conversation.DetailsRequested) -> None:
        self._show_details(event.view)

    def action_message_details(self) -> None:
        """Show the details of the selected message, or else of the last answer."""
        view = self.conversation.selected_view
        if view is None:
            answers = [v for v in self.conversation.views if v.role == "assistant"]
            view = answers[-1] if answers else None
        if view is None:
            self.notify("There is no message to show the details of yet.", severity="warning")
        else:
            self._show_details(view)

    def _show_details(self, view: MessageView) -> None:
        """Show the details of ``view`` at once, fetched if not at hand: the keys read with ``i`` go to them."""
        from mfu_tui.tui.screens.details import DetailsScreen

        if view.record is not None and view.record.status != "streaming":
            message: StoredMessage | Callable[[], Awaitable[StoredMessage | None]] = view.record
        elif view.message_id is None or self.chat_id is None:
            self.notify("This message is not stored yet: wait for it to be sent.", severity="warning")
            return
        else:
            message = partial(self._record_of, view, self.chat_id, view.message_id)
        default_model = next((model.id for model in self.models if model.default), None)
        self.push_screen(DetailsScreen(message, default_model))

    async def _record_of(self, view: MessageView, chat_id: str, message_id: str) -> StoredMessage | None:
        """The server's record of ``view``, kept on it once it has ended (what it says will not change then).

        Raises:
            ClientError: the server refused, or there is no connection.
            TimeoutError: no answer in time.
        """
        record = await self.client.find_message(chat_id, message_id)
        if record is not None and record.status != "streaming":
            view.record = record
        return record

    @on(Conversation.CopyRequested)
    def _copy_requested(self, event: Conversation.CopyRequested) -> None:
        self.copy_to_clipboard(event.text)
        self.notify(f"Copied the {event.what} ({len(event.text)} characters).", title="Copied", markup=False)

    # --- actions -------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in _FOCUS_ACTIONS and isinstance(self.screen, ModalScreen):
            return False  # priority bindings (see BINDINGS): a dialog keeps its keys
        if action in _DIALOG_ACTIONS and self._yields_to_the_focus(action):
            return False  # the focused widget's own binding of the key comes first (f2 in the chat list, f1 in help)
        if action == "cancel":
            return self.generating is not None
        return True

    def _while_the_answer_runs(self, message: str) -> None:
        """Say that ``message`` waits for the answer being written; the notice goes when the answer ends."""
        self._answer_notices.add(("", message))
        self.notify(message, severity="warning")

    def watch_generating(self, message_id: str | None) -> None:
        self.refresh_bindings()
        if message_id is None:
            self._withdraw(self._answer_notices)

    def watch_chat_id(self) -> None:
        self.refresh_bindings()

    def watch_show_archived(self) -> None:
        self.run_worker(self._list_chats_or_report(), group="list", exclusive=True)

    async def _list_chats_or_report(self) -> None:
        try:
            await self._list_chats()
        except (ClientError, TimeoutError) as error:
            self._report(error)

    def watch_model_id(self, model_id: str | None) -> None:
        self.composer.border_subtitle = f"model: {model_id}" if model_id else ""

    async def action_cancel(self) -> None:
        """Stop the answer being written in the open chat."""
        if self.chat_id is None or self.generating is None:
            return
        try:
            await self.client.cancel(self.chat_id, self.generating)
        except ClientError as error:
            self._report(error)

    def action_copy(self) -> None:
        """Copy the selected message, or else the last answer."""
        conversation = self.conversation
        view = conversation.selected_view
        if view is None:
            answers = [v for v in conversation.views if v.role == "assistant" and v.text]
            view = answers[-1] if answers else None
        if view is None:
            self.notify("Nothing to copy yet.", severity="warning")
            return
        self.copy_to_clipboard(view.text)
        what = "message" if conversation.selected_view is not None else "last answer"
        self.notify(f"Copied the {what} ({len(view.text)} characters).", title="Copied", markup=False)

    def copy_to_clipboard(self, text: str) -> None:
        """Copy with OSC 52 (works over SSH), in tmux (``$TMUX`` set) for its clipboard and its passthrough.

        The text is cleaned once more: a pasted escape sequence must not ride
        along into the shell the user pastes into.
        """
        import os

        text = clean_text(text)
        self._clipboard = text
        if self._driver is not None:
            self._driver.write(osc52_sequence(text, tmux=bool(os.environ.get("TMUX"))))

    def action_redraw(self) -> None:
        """Draw the whole screen again: the terminal may show another program's output (after ``fg``)."""
        self.refresh(repaint=True, layout=True)

    def action_help(self) -> None:
        """Show every key binding."""
        from mfu_tui.tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()  # f1 again (a priority key, it comes here first)
        else:
            self.push_screen(HelpScreen(binding_rows(type(self), self.settings.choices.keymap)))

    async def action_new_chat(self) -> None:
        """Start a new chat; it is created when the first message is sent."""
        await self._start_new_chat()
        self.focus_now(self.composer)

    def action_toggle_archived(self) -> None:
        """Show the archived chats in the list, or the others again."""
        self.show_archived = not self.show_archived
        self.action_focus_chats()

    def action_chat_settings(self) -> None:
        """Show the open chat's system prompt and parameters, to change them."""
        from mfu_tui.tui.screens.chat_settings import ChatSettingsScreen

        if (chat_id := self._open_chat("Chat settings")) is None:
            return
        if self._open_settings is None:
            self.notify("The chat is still loading: try again in a moment.", severity="warning")
            return
        summary = self.chat_list.chat(chat_id)
        title = self.query_one(AppHeader).chat_title if summary is None else summary.title

        async def save(settings: ChatSettings) -> str | None:
            try:
                # "" removes a prompt; None would leave the old one.
                updated = await self.client.update_chat(
                    chat_id, system_prompt=settings.system_prompt or "", params=settings.params
                )
            except (ClientError, TimeoutError) as error:
                if isinstance(error, ClientError):
                    return advise_error(error)[1]
                return "The server did not answer in time. Try again."
            self.chat_list.update_chat(updated.chat)
            if chat_id == self.chat_id:
                self._open_settings = updated.settings
            return None

        def saved(settings: ChatSettings | None) -> None:
            if settings is not None:
                self.notify("New answers in this chat use these settings.", title="Chat settings saved")

        self.push_screen(ChatSettingsScreen(title, self._open_settings, save), saved)

    def action_focus_chats(self) -> None:
        """Go to the chat list (showing the sidebar if hidden)."""
        self.query_one("#sidebar").remove_class("-hidden")
        self.focus_now(self.chat_list)

    def action_search(self) -> None:
        """Search every chat; the chosen result opens its chat at the message."""
        from mfu_tui.tui.screens.search import SearchScreen

        if isinstance(self.screen, SearchScreen):
            return

        def chosen(hit: SearchHit | None) -> None:
            if hit is not None:
                self.open_at(hit.chat_id, hit.message_id)

        self.push_screen(SearchScreen(self._search_anywhere), chosen)

    async def _search_anywhere(self, query: str) -> SearchResults:
        """Search every chat on the server; offline, the chats kept on this machine."""
        if self.client.state.status is Status.CONNECTED:
            return await self.client.search(query)
        if not self._told_search_is_kept:  # once, not at every key
            self._told_search_is_kept = True
            message = "The server cannot be reached: searching the chats kept on this machine (their newest messages)."
            self.notify(message, title="Offline", severity="warning", markup=False)
        return await self.client.search_cached(query)

    def action_toggle_sidebar(self) -> None:
        """Show or hide the chat list (on a narrow screen: go to it, or back to the message box)."""
        if self.screen.has_class("-narrow"):
            if self.chat_list.has_focus:
                self.focus_now(self.composer)
            else:
                self.action_focus_chats()
            return
        sidebar = self.query_one("#sidebar")
        sidebar.toggle_class("-hidden")
        if sidebar.has_class("-hidden") and self.chat_list.has_focus:
            self.focus_now(self.composer)

    def action_resize_sidebar(self, step: int) -> None:
        """Widen (or narrow, ``step`` < 0) the chat list, and keep its width for the next runs."""
        width = max(SIDEBAR_COLUMNS[0], min(SIDEBAR_COLUMNS[1], self.size.width // 2, self.sidebar_width + step))
        if width != self.sidebar_width:
            self.sidebar_width = width
            self._remember("sidebar_width", width, None)

    def watch_sidebar_width(self, width: int) -> None:
        self.query_one("#sidebar").styles.width = width

    def _open_chat(self, what: str) -> str | None:
        """The open chat's id; with none, say that ``what`` needs one (a key does not do nothing in silence)."""
        if self.chat_id is None:
            self.notify(
                f"{what} needs an open chat: open one from the list (ctrl+o), or send a message to start one.",
                severity="warning",
                markup=False,
            )
        return self.chat_id

    def action_rename_chat(self) -> None:
        """Rename the open chat."""
        if (chat_id := self._open_chat("Rename")) is not None:
            self._rename(chat_id)

    def action_delete_chat(self) -> None:
        """Delete the open chat, after asking."""
        if (chat_id := self._open_chat("Delete")) is not None:
            self._delete(chat_id)

    def _rename(self, chat_id: str) -> None:
        from mfu_tui.tui.screens.rename import RenameScreen

        summary = self.chat_list.chat(chat_id)

        def answered(title: str | None) -> None:
            if title:
                self._renamed(chat_id, title)

        self.push_screen(RenameScreen(summary.title if summary else ""), answered)

    @work(group="rename")
    async def _renamed(self, chat_id: str, title: str) -> None:
        try:
            renamed = await self.client.rename_chat(chat_id, title)
        except (ClientError, TimeoutError) as error:
            self._report(error)
            return
        self.chat_list.update_chat(renamed)
        if chat_id == self.chat_id:
            self.query_one(AppHeader).chat_title = renamed.title

    def _delete(self, chat_id: str) -> None:
        from mfu_tui.tui.screens.confirm import ConfirmScreen

        summary = self.chat_list.chat(chat_id)
        name = f"“{summary.title}”" if summary else "this chat"

        def answered(yes: bool | None) -> None:
            if yes:
                self._deleted(chat_id, name)

        self.push_screen(ConfirmScreen(f"Delete {name} and all its messages? This cannot be undone."), answered)

    @work(group="delete")
    async def _deleted(self, chat_id: str, name: str) -> None:
        try:
            await self.client.delete_chat(chat_id)
        except (ClientError, TimeoutError) as error:
            self._report(error)
            return
        summary = self.chat_list.chat(chat_id)
        if summary is not None:
            self.chat_list.update_chat(summary, deleted=True)
        was_open = chat_id == self.chat_id
        if was_open:
            await self._start_new_chat()
        if was_open or not self.chat_list.option_count:
            self.focus_now(self.composer)  # not the emptied pane or list: the next words are a new message
        self.notify(f"Deleted {name}.", title="Chat deleted", markup=False)

    def action_export(self) -> None:
        """Write the open chat to a Markdown file (the answers alone, as copied)."""
        self._export(reasoning=False)

    @work(group="export", exclusive=True)
    async def _export(self, *, reasoning: bool) -> None:
        """Write the open chat to a Markdown file, with what the models reasoned if ``reasoning``."""
        if (chat_id := self._open_chat("Export")) is None:
            return
        try:
            detail = await self.client.get_whole_chat(chat_id)
        except (ClientError, TimeoutError) as error:
            self._report(error)
            return
        try:
            default_model = next((model.id for model in self.models if model.default), None)
            path = await asyncio.to_thread(
                partial(export_chat, detail, self.settings.export_dir, default_model, reasoning=reasoning)
            )
        except OSError as error:
            self.notify(f"Could not write the file: {error}.", title="Export failed", severity="error", markup=False)
            return
        self.notify(f"Saved to {path}", title="Exported", markup=False)

    def action_pick_model(self) -> None:
        """Choose the model for new messages."""
        if self.models:
            self._show_model_picker()
        else:
            self._load_models_then_pick()

    @work(group="models", exclusive=True)
    async def _load_models_then_pick(self) -> None:
        try:
            self.models = (await self.client.list_models()).models
        except (ClientError, TimeoutError) as error:
            self._report(error)
            return
        self._show_model_picker()

    def _show_model_picker(self) -> None:
        from mfu_tui.tui.screens.model_picker import ModelPicker

        current = self.model_id or next((m.id for m in self.models if m.default), None)
        self.push_screen(ModelPicker(self.models, current), self._model_chosen)

    def _model_chosen(self, model_id: str | None) -> None:
        if model_id is not None:
            self.model_id = model_id
            self.notify(f"New messages use {model_id}.", title="Model", markup=False)

    # --- command palette -----------------------------------------------------

    def action_command_palette(self) -> None:
        # Textual's (its CommandPalette.is_open check), with a palette that stays inert once closed.
        if self.use_command_palette and not self.screen.has_class("--textual-command-palette"):
            self.push_screen(ChatPalette(id="--command-palette"))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield SystemCommand("New chat", "Start a new chat (ctrl+n)", self.action_new_chat)
        if self.client.state.status is not Status.CONNECTED:
            yield SystemCommand("Reconnect", "Connect to the server now (f9)", self.action_reconnect)
        if self.client.state.problem is Problem.TOKEN_REFUSED:
            yield SystemCommand("Sign in", "Sign in again with a new token (f10)", self.action_sign_in)
        if self.chat_id is not None:
            yield SystemCommand("Rename chat", "Rename the open chat (f2)", self.action_rename_chat)
            yield SystemCommand("Delete chat", "Delete the open chat (f8)", self.action_delete_chat)
            yield SystemCommand(
                "Chat settings", "System prompt and parameters of the open chat (f3)", self.action_chat_settings
            )
            listed = self.chat_list.chat(self.chat_id)
            if listed is not None:
                chat_id = self.chat_id
                pin = "Unpin chat" if listed.pinned else "Pin chat"
                yield SystemCommand(
                    pin,
                    "Keep the open chat at the top of the list (p in the list)",
                    partial(self._change_chat, chat_id, pinned=not listed.pinned),
                )
                archive = "Unarchive chat" if listed.archived else "Archive chat"
                yield SystemCommand(
                    archive,
                    "Move the open chat out of the list, or back (a in the list)",
                    partial(self._change_chat, chat_id, archived=not listed.archived),
                )
            yield SystemCommand(
                "Export chat to Markdown", "Write the open chat to a .md file (ctrl+s)", self.action_export
            )
            yield SystemCommand(
                "Export chat to Markdown, with reasoning",
                "Write the open chat to a .md file, each answer with what the model reasoned before it",
                partial(self._export, reasoning=True),
            )
        if self.generating is not None:
            yield SystemCommand("Stop the answer", "Cancel the answer being written (esc)", self.action_cancel)
        elif self.chat_id is not None:
            yield SystemCommand("Answer again", "Answer the last message again (f5)", self.action_regenerate)
            yield SystemCommand("Edit my last message", "Change it and get a new answer", self.action_edit_last)
        if self.chat_id is not None:
            yield SystemCommand(
                "Message details",
                "Model, time, tokens and speed of the last answer (i on a selected message)",
                self.action_message_details,
            )
        yield SystemCommand("Choose model", "Pick the model for new messages (ctrl+l)", self.action_pick_model)
        yield SystemCommand("Copy last answer", "Copy to the clipboard with OSC 52 (ctrl+c)", self.action_copy)
        yield SystemCommand("Show keys", "Every key binding and its id (f1)", self.action_help)
        yield SystemCommand("Search every chat", "Find messages by their words (ctrl+f)", self.action_search)
        yield SystemCommand("Toggle chat list", "Show or hide the sidebar (ctrl+b)", self.action_toggle_sidebar)
        archived = "Show chats" if self.show_archived else "Show archived chats"
        yield SystemCommand(
            archived, "Switch the chat list between the archived chats and the others (f4)", self.action_toggle_archived
        )
        yield SystemCommand("Quit", "Quit mfu-chat (ctrl+q)", self.action_quit)
        yield from (
            command for command in super().get_system_commands(screen) if command.title in ("Theme", "Screenshot")
        )
