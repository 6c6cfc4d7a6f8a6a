"""The conversation pane: the open chat's messages, following the stream."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual import events
from textual.actions import SkipAction
from textual.app import ComposeResult, RenderResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from mfu_tui.client import ClientError
from mfu_tui.protocol import ChatDetail, StoredMessage
from mfu_tui.tui.chat_window import ChatWindow, Entry
from mfu_tui.tui.widgets.composer import ask_the_app, pass_input_on
from mfu_tui.tui.widgets.message_view import MessageView

EMPTY_HINT = "Ask anything · enter sends · ctrl+j new line"

#: Actions on the selected message: their keys (c, b, e, r, i) type into the message box when none is.
_ON_SELECTED = {"copy_message", "copy_code", "edit", "regenerate", "details", "toggle_reasoning"}
#: How many windows of messages may have widgets at once.
MOUNTED_WINDOWS = 3
#: How far back a message sent from here is looked for by its ``clientMessageId``.
_SENT_LOOKBACK = 100


@dataclass
class ChatPages:
    """How the open chat's messages are asked of the server, a page at a time."""

    fetch_at: Callable[[int], Awaitable[ChatDetail]]
    """Asks for the page starting at a message index."""
    find: Callable[[str], Awaitable[ChatDetail]]
    """Asks for the page starting at a message (a search result far back)."""


class Spacer(Widget):
    """Empty lines that stand for messages with no widget (their measured or estimated height)."""

    DEFAULT_CSS = "Spacer { height: 0; width: 1fr; }"

    def render(self) -> RenderResult:
        """Blank: a bare ``Widget`` draws its own name ("Spacer#above") when it has room."""
        return ""

    def resize(self, height: int) -> None:
        """Stand for ``height`` lines."""
        self.styles.height = max(0, height)


class Conversation(VerticalScroll, can_focus=True):
    """The messages of the open chat, oldest at the top, as one virtualized view.

    Every message of the chat the pane knows of is an ``Entry`` of a
    ``ChatWindow``, by its index; only a contiguous range of them, around
    what is on screen, has widgets, between two ``Spacer``\\ s that stand for
    the rest with their heights (measured when a widget was unmounted,
    estimated from the text until then). So the scrollbar, ``home``, ``end``,
    page up/down and the mouse work on the whole chat, and the widgets, the
    memory and the cost of a step stay the same however long the chat:
    scrolling near a spacer mounts the next window from the entries (asking
    the server by offset for pages not loaded) and unmounts as much from the
    far end; a move into the middle of a spacer (the scrollbar dragged, a
    search result, ``home``) mounts the window there instead. A chat opens
    with the server's newest page, its last window mounted.

    Changes to a message without a widget (an answer streaming while the view
    is far up, an edit) go to its entry, so it shows right when mounted.
    The view is anchored to the bottom while an answer streams and lets go
    when the user scrolls up.

    ``up``/``down`` (or ``home``/``end``, or a search result) select a
    message, and the range moves with the selection; then the letter keys
    act on it. With no message selected (as when the pane just got the
    focus), a printable key goes to the message box instead
    (``pass_input_on``), so typing is never lost.

    | Key(s) | Description | Binding id |
    | :- | :- | :- |
    | up / down | Select the previous / next message. | `conversation.previous` / `conversation.next` |
    | c | Copy the selected message. | `conversation.copy` |
    | b | Copy the selected message's last code block. | `conversation.copy_code` |
    | e | Edit the selected message of yours (it is answered again). | `conversation.edit` |
    | r | Answer again: the selected answer, or the one to the selected message. | `conversation.regenerate` |
    | i | Details of the selected message: model, time, how it ended, tokens, speed. | `conversation.details` |
    | t | Show the selected answer's reasoning in full, or fold it back to one line. | `conversation.reasoning` |
    | home | Go to the oldest message. | `conversation.top` |
    | end | Go to the newest message. | `conversation.bottom` |
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "up",
            "select_previous",
            "Previous",
            id="conversation.previous",
            show=False,
            tooltip="Select the previous message",
        ),
        # The same key under the same id (a remap moves both), shown while no message is selected: the footer
        # has nothing else of this pane then, and a user who tabbed here learns how to start.
        Binding("up", "select", "Select", id="conversation.previous", tooltip="Select the lowest message on screen"),
        Binding("down", "select_next", "Next", id="conversation.next", show=False, tooltip="Select the next message"),
        Binding("c", "copy_message", "Copy", id="conversation.copy", tooltip="Copy the selected message"),
        Binding("b", "copy_code", "Copy code", id="conversation.copy_code", tooltip="Copy its last code block"),
        Binding("e", "edit", "Edit", id="conversation.edit", tooltip="Edit this message of yours"),
        Binding("r", "regenerate", "Answer again", id="conversation.regenerate", tooltip="Answer this again"),
        Binding("i", "details", "Details", id="conversation.details", tooltip="Model, time, tokens and speed"),
        Binding(
            "t",
            "toggle_reasoning",
            "Thinking",
            id="conversation.reasoning",
            tooltip="Show or hide what the model reasoned before this answer",
        ),
        Binding("home", "top", "Top", id="conversation.top", show=False, tooltip="Go to the oldest message"),
        Binding("end", "bottom", "Bottom", id="conversation.bottom", show=False, tooltip="Go to the newest message"),
    ]

    DEFAULT_CSS = """
    Conversation {
        height: 1fr;
        padding: 0 1;
        & > #empty-hint { color: $text-muted; width: 1fr; content-align: center middle; height: 1fr; }
    }
    """

    selected: reactive[int | None] = reactive(None, init=False)
    """The index in the chat of the selected message, if any."""

    class CopyRequested(Message):
        """Copy this text to the clipboard."""

        def __init__(self, text: str, what: str) -> None:
            super().__init__()
            self.text = text
            self.what = what

    class EditRequested(Message):
        """Edit this user message (in the message box)."""

        def __init__(self, entry: Entry) -> None:
            super().__init__()
            self.entry = entry

    class RegenerateRequested(Message):
        """Answer this user message again (what follows it is dropped)."""

        def __init__(self, entry: Entry) -> None:
            super().__init__()
            self.entry = entry

    class DetailsRequested(Message):
        """Show the details of this message."""

        def __init__(self, view: MessageView) -> None:
            super().__init__()
            self.view = view

    def __init__(self, *, window: int = 12, id: str | None = None) -> None:
        """
        Args:
            window: How many messages are mounted at once at open and per step.
            id: The widget id.
        """
        super().__init__(id=id)
        self.window = window
        #: The messages of the open chat, by index.
        self._model = ChatWindow()
        #: The indices of the messages with widgets, between the spacers.
        self._range = range(0)
        #: How the open chat's pages are asked for (``None``: only what was given, as for a kept copy).
        self._pages: ChatPages | None = None
        #: Held while the range or the entries change: one change at a time, in order.
        self._lock = asyncio.Lock()
        #: Counts the chats shown: a selection asked for in one is not made in the next.
        self._generation = 0
        #: A worker follows the scroll; another look is due when it ends.
        self._following = False
        self._look_again = False

    def compose(self) -> ComposeResult:
        yield Spacer(id="above")
        yield Spacer(id="below")

    def on_mount(self) -> None:
        self.anchor()
        self._update_hint()

    # --- reading ---------------------------------------------------------

    @property
    def views(self) -> list[MessageView]:
        """The mounted messages, oldest first."""
        return list(self.query_children(MessageView))

    @property
    def message_count(self) -> int:
        """How many messages the open chat has, with a widget or not."""
        return self._model.total

    @property
    def mounted_range(self) -> range:
        """The indices of the messages that have widgets."""
        return self._range

    def knows(self, message_id: str, client_message_id: str | None = None) -> bool:
        """Whether the message is in the pane already (by its id, or as sent from here)."""
        if self._model.index_of(message_id) is not None:
            return True
        return client_message_id is not None and self._sent_index(client_message_id) is not None

    def last_user_entry(self) -> Entry | None:
        """The newest user message with a stored id, if loaded."""
        for index in range(self._model.total - 1, -1, -1):
            entry = self._entry(index)
            if entry is None:
                return None
            if entry.role == "user" and entry.message_id is not None:
                return entry
        return None

    def dropped_by_answering(self, message_id: str) -> int:
        """How many messages answering the one of ``message_id`` again drops: those after its answer, which is
        replaced, not lost (0 if it is not in the chat)."""
        index = self._model.index_of(message_id)
        return 0 if index is None else max(0, self._model.total - index - 2)

    def _view_at(self, index: int) -> MessageView | None:
        if index not in self._range or len(self.views) != len(self._range):
            return None  # not mounted, or a range move is between its removals and its mounts
        view = self.children[1 + index - self._range.start]  # after the spacer above
        assert isinstance(view, MessageView)
        return view

    def _entry(self, index: int) -> Entry | None:
        """Message ``index``'s entry, brought up to date from its widget if it has one."""
        entry = self._model.entries.get(index)
        view = self._view_at(index)
        if entry is not None and view is not None:
            entry.text, entry.status, entry.seq = view.text, view.status, view.last_seq
            entry.message_id, entry.client_message_id = view.message_id, view.client_message_id
            entry.reasoning, entry.reasoning_expanded = view.reasoning.text, view.reasoning.expanded
        return entry

    def _sent_index(self, client_message_id: str) -> int | None:
        total = self._model.total
        for index in range(total - 1, max(-1, total - 1 - _SENT_LOOKBACK), -1):
            entry = self._model.entries.get(index)
            if entry is not None and entry.client_message_id == client_message_id:
                return index
        return None

    # --- the open chat ---------------------------------------------------------

    async def show_messages(
        self,
        messages: list[StoredMessage],
        *,
        offset: int = 0,
        total: int | None = None,
        pages: ChatPages | None = None,
    ) -> None:
        """Replace the pane with a chat's newest messages (only the last window gets widgets).

        Args:
            messages: A page of the chat's messages, oldest first.
            offset: The index of the page's first message in the chat.
            total: How many messages the chat has (default: those of the page, from ``offset``).
            pages: Where the other messages come from (``None``: the chat is just these).
        """
        async with self._lock:
            self._generation += 1
            if pages is None:
                offset, total = 0, len(messages)
            self.selected = None
            await self.remove_children(self.views)  # not measured: their heights were the other chat's
            self._range = range(0)
            self._pages = pages
            self._model = ChatWindow(width=self._text_width)
            self._model.place(offset, messages, total if total is not None else offset + len(messages))
            last = self._model.total
            await self._remount(range(max(offset, last - self.window), last))
            self._update_hint()
            self.anchor()

    async def clear(self) -> None:
        """Empty the pane for a new chat."""
        await self.show_messages([])

    async def add(self, view: MessageView, *, show: bool = False) -> None:
        """Add a message at the bottom; it is mounted if the newest messages are.

        Args:
            view: The message (its widget is used if it is mounted now).
            show: Go to the bottom first if the view is elsewhere (a message the user just sent).
        """
        async with self._lock:
            self._remove_hint()
            if show and self._model.total and self._range.stop != self._model.total:
                await self._jump(self._model.total - 1)
            entry = Entry(
                view.role,
                view.text,
                view.message_id,
                view.status,
                view.last_seq,
                view.attachments,
                view.client_message_id,
            )
            await self._append(entry, view)
        if show or (self.is_anchored and not self._anchor_released):
            self.scroll_end(animate=False, immediate=False)

    async def withdraw(self, client_message_id: str) -> None:
        """Take back the last message, sent from here (it could not be kept to send)."""
        async with self._lock:
            index = self._sent_index(client_message_id)
            if index is not None and index == self._model.total - 1:
                await self._cut(index)

    async def start_answer(self, message_id: str) -> None:
        """An answer begins: added at the bottom (streaming) unless it is there already."""
        async with self._lock:
            if self._model.index_of(message_id) is None:
                await self._append(Entry("assistant", "", message_id, "streaming"))

    async def append(self, message_id: str, chunks: Sequence[tuple[int, str, bool]]) -> None:
        """Chunks of an answer as (seq, text, True if reasoning), in order: to its widget, or to its entry if none.

        What appending them one by one would show: each chunk once, those
        already shown (``seq`` not past its entry's) dropped. Decided under the
        lock: a range move running meanwhile changes which widget shows what.
        """
        async with self._lock:
            index = await self._answer_index(message_id)
            entry = self._model.entries[index]
            shown = last = entry.seq
            pieces: list[str] = []
            thoughts: list[str] = []
            for seq, text, reasoning in chunks:
                if seq > last:
                    (thoughts if reasoning else pieces).append(text)
                    last = seq
            if last == shown:
                return
            entry.seq = last  # the record says what was shown, widget or not
            if (view := self._view_at(index)) is not None:
                await view.append("".join(pieces), last, "".join(thoughts))
                return
            entry.text, entry.status = entry.text + "".join(pieces), "streaming"
            entry.reasoning += "".join(thoughts)
            self._changed(index)

    async def finish(self, message_id: str, status: str, text: str | None = None, reasoning: str | None = None) -> None:
        """An answer ended with ``status`` (with its whole ``text`` and ``reasoning`` if known better: a reload)."""
        async with self._lock:
            index = await self._answer_index(message_id)
            if reasoning is not None:
                self._set_reasoning(index, reasoning)
            if (view := self._view_at(index)) is not None:
                await view.finish(status, text)
                return
            entry = self._model.entries[index]
            entry.status = status
            if text is not None:
                entry.text = text
                self._changed(index)

    async def set_text(self, message_id: str, text: str, reasoning: str | None = None) -> None:
        """Replace an answer's whole text, and its reasoning if given (a reload of one streaming)."""
        async with self._lock:
            index = await self._answer_index(message_id)
            await self._set_text(index, text)
            if reasoning is not None:
                self._set_reasoning(index, reasoning)

    async def whole_text(self, message_id: str, text: str) -> None:
        """A message that came cut has its whole ``text`` now (if it is still in the pane)."""
        async with self._lock:
            index = self._model.index_of(message_id)
            if index is None or self._model.entries[index].status != "truncated":
                return  # another chat is shown, or the page came again whole: nothing to replace
            entry = self._model.made_whole(index, text)
            if (view := self._view_at(index)) is not None:
                view.record = entry.record
                await view.set_text(text)
                view.status = entry.status
            self._resize_spacers()

    async def stored(self, client_message_id: str, message_id: str) -> None:
        """A message sent from here is stored, as ``message_id``."""
        async with self._lock:
            index = self._sent_index(client_message_id)
            if index is None:
                return
            self._model.stored_as(index, message_id)
            self._model.entries[index].status = "complete"
            if (view := self._view_at(index)) is not None:
                view.message_id, view.status = message_id, "complete"

    async def next_waiting_goes(self) -> None:
        """The chat's answer ended: the first message that waited for it is the one sent now."""
        async with self._lock:
            total = self._model.total
            for index in range(max(0, total - _SENT_LOOKBACK), total):
                entry = self._model.entries.get(index)
                if entry is not None and entry.status == "waiting":
                    entry.status = "sending"
                    if (view := self._view_at(index)) is not None:
                        view.status = "sending"
                    return

    async def refused(self, client_message_id: str) -> str | None:
        """A message sent from here was refused for good: marked so; its text."""
        async with self._lock:
            index = self._sent_index(client_message_id)
            if index is None:
                return None
            entry = self._model.entries[index]
            entry.status = "error"
            if (view := self._view_at(index)) is not None:
                view.status = "error"
            return entry.text

    async def edited(self, message_id: str, text: str, *, regenerated: bool, reply_id: str | None = None) -> bool:
        """A user message now reads ``text``; with ``regenerated``, what followed it is gone.

        Wherever it is in the chat, mounted or not: the view stays where it is.

        Args:
            message_id: The user message.
            text: Its new text.
            regenerated: The messages after it were dropped, to answer it again.
            reply_id: The new answer, if known (streaming after it).

        Returns:
            False if what followed it was dropped but it is not loaded here (the chat must be loaded again).
        """
        async with self._lock:
            index = self._model.index_of(message_id)
            if index is None:
                return not regenerated  # its new text comes with its page, when that is loaded
            await self._set_text(index, text)
            if regenerated:
                # The new answer may be there already: its first chunks came before the edit's frame.
                keep = reply_id is not None and self._model.index_of(reply_id) == index + 1
                await self._cut(index + 2 if keep else index + 1)
                if reply_id is not None and not keep:
                    await self._append(Entry("assistant", "", reply_id, "streaming"))
            return True

    def keep_shown(self, message_id: str) -> None:
        """Keep a message on screen once the pane is laid out again (the message box it went into grew under it)."""
        index = self._model.index_of(message_id)
        view = None if index is None else self._view_at(index)
        if view is not None:
            self.call_after_refresh(self._scroll_to_shown, view)

    def _scroll_to_shown(self, view: MessageView) -> None:
        if view.is_attached:  # not scrolled off by a range move meanwhile
            self.scroll_to_widget(view, animate=False, immediate=True)

    async def reveal(self, message_id: str) -> bool:
        """Select a message and scroll to it, asking the server where it is if it is not loaded.

        Returns:
            False if it is not in the chat, or its page could not be loaded.
        """
        async with self._lock:
            index = self._model.index_of(message_id)
            if index is None and self._pages is not None:
                try:
                    page = await self._pages.find(message_id)
                except (ClientError, TimeoutError):
                    return False
                self._model.place(page.offset, page.messages, max(self._model.total, page.chat.message_count))
                index = self._model.index_of(message_id)
            if index is None:
                return False
            # Stay at the message, not at the bottom (a released anchor catches again there);
            # ``end``, a new chat or a sent message anchors the view again.
            self.anchor(False)
            if index not in self._range:
                await self._jump(index)
            self.selected = index
            await self._laid_out()
            if (view := self._view_at(index)) is not None:
                self.scroll_to_widget(view, animate=False, top=True, immediate=True)
        self.focus()
        return True

    # --- the range: changes made with the lock held ------------------------------

    async def _answer_index(self, message_id: str) -> int:
        index = self._model.index_of(message_id)
        if index is None:
            index = await self._append(Entry("assistant", "", message_id, "streaming"))
        return index

    async def _append(self, entry: Entry, view: MessageView | None = None) -> int:
        """A new message at the bottom: mounted if the range reaches the bottom, else its entry only."""
        at_bottom = self._range.stop == self._model.total
        index = self._model.append(entry)
        if at_bottom:
            await self.mount(view or self._view_of(index, entry), before=self._below)
            self._range = range(self._range.start, index + 1)
            if (extra := len(self._range) - MOUNTED_WINDOWS * self.window) > 0:
                far = itertools.takewhile(lambda item: self._far(item[1]), self._mounted()[:extra])
                await self._unmount_first(len(list(far)))
        else:
            self._resize_spacers()
        return index

    def _set_reasoning(self, index: int, reasoning: str) -> None:
        if (view := self._view_at(index)) is not None:
            view.reasoning.set_text(reasoning)
        else:
            self._model.entries[index].reasoning = reasoning
            self._changed(index)

    async def _set_text(self, index: int, text: str) -> None:
        if (view := self._view_at(index)) is not None:
            await view.set_text(text)
        else:
            self._model.entries[index].text = text
            self._changed(index)

    def _changed(self, index: int) -> None:
        """An unmounted message's text changed: its height is estimated again, its spacer follows."""
        self._model.changed(index)
        self._resize_spacers()

    async def _cut(self, stop: int) -> None:
        """Forget the messages from index ``stop`` on (an edit dropped them)."""
        if self.selected is not None and self.selected >= stop:
            self.selected = None
        gone = [view for index, view in self._mounted() if index >= stop]
        kept = range(self._range.start, max(self._range.start, min(self._range.stop, stop)))
        await self.remove_children(gone)
        self._range = kept
        self._model.truncate(stop)
        if kept or stop == 0:
            self._resize_spacers()
        else:  # the view was all after the cut: the messages before it take its place
            await self._jump(stop - 1)

    def _mounted(self) -> list[tuple[int, MessageView]]:
        return list(zip(self._range, self.views, strict=True))

    async def _remount(self, span: range) -> None:
        """Unmount every widget and mount those of ``span`` (all loaded) instead."""
        self._measure(self._mounted())
        with self.app.batch_update():
            await self.remove_children(self.views)
            self._range = span
            await self.mount_all(self._views_of(span), before=self._below)
            self._resize_spacers()

    def _far(self, view: MessageView) -> bool:
        """The widget is more than a screen away from what is shown."""
        region, height = view.virtual_region, self.size.height
        return region.bottom < self.scroll_y - height or region.y > self.scroll_y + 2 * height

    async def _unmount_first(self, count: int) -> None:
        if not count:
            return
        mounted = self._mounted()[:count]
        self._measure(mounted)
        await self.remove_children([view for _, view in mounted])
        self._range = range(self._range.start + count, self._range.stop)
        self._resize_spacers()

    def _measure(self, mounted: Iterable[tuple[int, MessageView]]) -> None:
        """Keep what the widgets about to go showed, and the height they took (their margin too)."""
        for index, view in mounted:
            self._entry(index)
            if view.outer_size.height:
                self._model.measured(index, view.outer_size.height + view.styles.margin.bottom)

    def _resize_spacers(self) -> None:
        self._above.resize(self._model.span_height(range(0, self._range.start)))
        self._below.resize(self._model.span_height(range(self._range.stop, self._model.total)))

    async def _load(self, span: range) -> bool:
        """Have every message of ``span`` loaded, asking the server by offset for those missing."""
        while (missing := self._model.missing(span)) is not None:
            if self._pages is None:
                return False
            try:
                page = await self._pages.fetch_at(missing)
            except (ClientError, TimeoutError) as error:
                self.notify(f"Could not load those messages: {error}", severity="warning", markup=False)
                return False
            if not page.messages:
                return False
            self._model.place(page.offset, page.messages, max(self._model.total, page.chat.message_count))
            self._resize_spacers()
        return True

    async def _jump(self, index: int) -> bool:
        """Mount the window around message ``index`` instead of what is mounted; False if it cannot be loaded."""
        span = range(max(0, index - self.window), min(self._model.total, index + self.window))
        if not await self._load(span):
            return False
        await self._remount(span)
        return True

    async def _extend(self, *, down: bool) -> bool:
        """Mount a window past one end of the range, and unmount as much from the other end if it grew too long.

        What is on screen stays in place: the estimated heights the spacer stood for are replaced by real ones.
        """
        span = self._range
        new = (
            range(span.stop, min(span.stop + self.window, self._model.total))
            if down
            else range(max(0, span.start - self.window), span.start)
        )
        if not new or not await self._load(new):
            return False
        mounted = self._mounted()
        anchor_view = mounted[0][1] if mounted else self._below
        anchor_y = anchor_view.virtual_region.y
        start, stop = min(span.start, new.start), max(span.stop, new.stop)
        drop: list[tuple[int, MessageView]] = []
        if (extra := stop - start - MOUNTED_WINDOWS * self.window) > 0:
            # What is furthest from the view goes back into its spacer, its measured height kept;
            # not what is near the screen, which would only be mounted again at once.
            far = mounted if down else mounted[::-1]
            drop = list(itertools.takewhile(lambda item: self._far(item[1]), far[:extra]))
            if down and drop:
                anchor_view = mounted[len(drop)][1] if len(drop) < len(mounted) else self._below
                anchor_y = anchor_view.virtual_region.y
            start, stop = (start + len(drop), stop) if down else (start, stop - len(drop))
        self._measure(drop)
        with self.app.batch_update():
            await self.remove_children([view for _, view in drop])
            if down:
                await self.mount_all(self._views_of(new), before=self._below)
            else:
                await self.mount_all(self._views_of(new), after=self._above)
            self._range = range(start, stop)
            self._resize_spacers()
        await self._laid_out()
        if anchor_view.is_attached:
            self.scroll_to(y=self.scroll_y + anchor_view.virtual_region.y - anchor_y, animate=False, immediate=True)
        return True

    async def _laid_out(self) -> None:
        """Wait until what was just mounted is laid out (so that places and sizes are known)."""
        done = asyncio.Event()
        self.call_after_refresh(done.set)
        await done.wait()

    # --- following the scroll ---------------------------------------------------

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._follow_scroll()

    def on_resize(self) -> None:
        self._follow_scroll()

    def _follow_scroll(self) -> None:
        """Mount what the view is about to show (in a worker: it may ask the server).

        Checked on every scroll (each chunk of an answer followed at the bottom
        scrolls), so a worker starts only when the range has to move.
        """
        if self._following:
            self._look_again = True
        elif self._wanted_move() is not None:
            self._following = True
            self.run_worker(self._follow(), group="range")

    async def _follow(self) -> None:
        try:
            moved = True
            while moved or self._look_again:
                self._look_again = False
                async with self._lock:
                    moved = await self._follow_once()
        finally:
            self._following = False

    def _wanted_move(self) -> str | None:
        """How the range must move for what is on screen: ``jump``, ``up``, ``down``, ``resize`` or not at all."""
        if not self.is_attached or not self.size.height:
            return None
        if self._model.width != self._text_width:
            return "resize"
        top, margin = round(self.scroll_y), self.size.height
        bottom = top + self.size.height
        mounted_top = self._model.span_height(range(0, self._range.start))
        mounted_bottom = self._mounted_bottom
        if bottom + margin < mounted_top or top - margin > mounted_bottom:
            return "jump"  # far into a spacer (the scrollbar, a page step into nothing mounted)
        if self._range.start > 0 and top - margin <= mounted_top:
            return "up"
        if self._range.stop < self._model.total and bottom + margin >= mounted_bottom:
            return "down"
        return None

    async def _follow_once(self) -> bool:
        """One step towards what is on screen: a jump or a window; False if there is nothing to do."""
        move = self._wanted_move()
        if move == "resize":
            self._measure(self._mounted())  # at the old width, before it is forgotten
            self._model.resize(self._text_width)
            self._resize_spacers()
            return True
        if move == "jump":
            top, mounted_bottom = round(self.scroll_y), self._mounted_bottom
            above = top < self._model.span_height(range(0, self._range.start))
            line = top if above else top - mounted_bottom + self._model.span_height(range(self._range.stop))
            index = self._model.index_at(line)
            into = line - self._model.span_height(range(index))
            if not await self._jump(index):
                return False
            await self._laid_out()
            if (view := self._view_at(index)) is not None:
                self.scroll_to(y=view.virtual_region.y + into, animate=False, immediate=True)
            return True
        if move is not None:
            return await self._extend(down=move == "down")
        return False

    @property
    def _mounted_bottom(self) -> int:
        """The line below the last message mounted: where the spacer below begins, as last laid out.

        Read on every scroll (each wheel step, each frame of the scrollbar
        dragged): from the sizes laid out, not ``virtual_region``, which has
        the compositor map the whole screen again after each scroll.
        """
        return self.virtual_size.height - self._below.outer_size.height

    @property
    def _above(self) -> Spacer:
        return self.query_one("#above", Spacer)

    @property
    def _below(self) -> Spacer:
        return self.query_one("#below", Spacer)

    @property
    def _text_width(self) -> int:
        return self.scrollable_content_region.width or 80

    def _views_of(self, span: range) -> list[MessageView]:
        views = []
        for index in span:
            view = self._view_of(index, self._model.entries[index])
            view.set_class(index == self.selected, "-selected")
            views.append(view)
        return views

    def _view_of(self, index: int, entry: Entry) -> MessageView:
        view = MessageView(
            "user" if entry.role == "user" else "assistant",
            entry.text,
            message_id=entry.message_id,
            status=entry.status,
            last_seq=entry.seq,
            attachments=entry.attachments,
            reasoning=entry.reasoning,
            reasoning_expanded=entry.reasoning_expanded,
        )
        view.client_message_id = entry.client_message_id
        view.record = entry.record
        return view

    def _update_hint(self) -> None:
        """The hint while the chat has no message; gone once it has (a chat opened from the empty pane)."""
        if self._model.total:
            self._remove_hint()
        elif not self.query_children("#empty-hint"):
            self.mount(Static(EMPTY_HINT, id="empty-hint", markup=False))

    def _remove_hint(self) -> None:
        for hint in self.query_children("#empty-hint"):
            hint.remove()

    # --- selection and copy ------------------------------------------------

    def watch_selected(self, old: int | None, new: int | None) -> None:
        if (old is None) != (new is None):
            self.refresh_bindings()  # the keys that act on a selected message come or go (check_action)
        if old is not None and (view := self._view_at(old)) is not None:
            view.remove_class("-selected")
        if new is not None and (view := self._view_at(new)) is not None:
            view.add_class("-selected")
            following = new == self._model.total - 1 and self.is_anchored and not self._anchor_released
            if not following:  # the view follows the bottom already: scrolling to the top of the last would stop it
                self.scroll_to_widget(view, animate=False)

    @property
    def selected_view(self) -> MessageView | None:
        """The selected message, if any (and mounted)."""
        return None if self.selected is None else self._view_at(self.selected)

    def on_blur(self) -> None:
        self.selected = None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # The letter keys act on a selected message; with none, they are typing (see on_key).
        if action in _ON_SELECTED or action == "select_previous":
            return self.selected is not None
        if action == "select":
            return self.selected is None
        return True

    async def on_key(self, event: events.Key) -> None:
        acts = event.key in self._bindings.key_to_bindings and (
            self.selected is not None
            or not any(b.action in _ON_SELECTED for b in self._bindings.key_to_bindings[event.key])
        )
        await pass_input_on(self, event, typing=event.is_printable and bool(event.character) and not acts)

    async def on_paste(self, event: events.Paste) -> None:
        await pass_input_on(self, event, typing=True)

    def _select(self, where: Callable[[int | None], int | None], *, bottom: bool = False) -> None:
        """Select the message ``where`` says (given the one selected), mounting it first (in a worker)."""
        self.run_worker(self._select_now(where, bottom, self._generation), group="range")

    async def _select_now(self, where: Callable[[int | None], int | None], bottom: bool, generation: int) -> None:
        async with self._lock:
            index = where(self.selected) if generation == self._generation else None
            if index is None or not 0 <= index < self._model.total:
                return
            if index not in self._range:
                if index == self._range.start - 1:
                    moved = await self._extend(down=False)
                elif index == self._range.stop:
                    moved = await self._extend(down=True)
                else:
                    moved = await self._jump(index)
                if not moved:
                    return
                await self._laid_out()
            if bottom:
                self.anchor()
            else:
                self.anchor(False)
            self.selected = index
            if index == 0:
                self.scroll_home(animate=False, immediate=True)

    def _last_on_screen(self) -> int | None:
        """The last mounted message at least partly on screen (the last mounted if none is)."""
        bottom = self.scroll_y + self.size.height
        last = None
        for index, view in self._mounted():
            if view.virtual_region.y >= bottom:
                break
            last = index
        return last if last is not None else (self._range.stop - 1 if self._range else None)

    def action_select_previous(self) -> None:
        """Select the message above the selected one; with none selected (yet), the lowest on screen."""
        on_screen = self._last_on_screen()
        self._select(lambda selected: on_screen if selected is None else max(0, selected - 1))

    #: ``up`` with no message selected, as the footer shows it (``check_action``): the same step. The second ``up``
    #: of a burst comes here too (the first one's selection is made in a worker) and steps on from the first.
    action_select = action_select_previous

    def action_select_next(self) -> None:
        self._select(lambda selected: None if selected is None else selected + 1)

    def action_page_up(self) -> None:
        if not self.allow_vertical_scroll:
            raise SkipAction()
        self.page(down=False)

    def action_page_down(self) -> None:
        if not self.allow_vertical_scroll:
            raise SkipAction()
        self.page(down=True)

    def page(self, *, down: bool) -> None:
        """Scroll a page down (or up), from this pane's keys or the message box's."""
        # At once, as a pager steps: Textual's animated step took 0.6 s, repainting the pane at each of its
        # frames (each one sent over SSH), and a key pressed meanwhile waited for it.
        if down:
            self.scroll_page_down(animate=False)
        else:
            self.scroll_page_up(animate=False)

    def action_top(self) -> None:
        self._select(lambda _: 0)

    def action_bottom(self) -> None:
        self._select(lambda _: self._model.total - 1, bottom=True)

    def action_copy_message(self) -> None:
        if (view := self.selected_view) is not None:
            self.post_message(self.CopyRequested(view.text, "message"))

    def action_edit(self) -> None:
        view = self.selected_view
        entry = None if self.selected is None else self._entry(self.selected)
        if view is not None and entry is not None and view.role == "user":
            ask_the_app(self, self.EditRequested(entry))  # the keys read with e go into the box, after its text
        elif view is not None:
            self.notify("Only your own messages can be edited: r answers again.", severity="warning")

    def action_regenerate(self) -> None:
        if self.selected is None:
            return
        for index in range(self.selected, -1, -1):
            entry = self._entry(index)
            if entry is None:
                return
            if entry.role == "user":
                ask_the_app(self, self.RegenerateRequested(entry))
                return

    def action_toggle_reasoning(self) -> None:
        view = self.selected_view
        entry = None if self.selected is None else self._entry(self.selected)
        if view is None or entry is None or not view.reasoning.text:
            self.notify("This message has no reasoning to show.", severity="warning")
            return
        view.reasoning.expanded = entry.reasoning_expanded = not view.reasoning.expanded

    def action_details(self) -> None:
        if (view := self.selected_view) is not None:
            ask_the_app(self, self.DetailsRequested(view))

    def action_copy_code(self) -> None:
        view = self.selected_view
        if view is None:
            return
        blocks = view.code_blocks()
        if blocks:
            self.post_message(self.CopyRequested(blocks[-1], "code block"))
        else:
            self.notify("This message has no code block.", severity="warning")
