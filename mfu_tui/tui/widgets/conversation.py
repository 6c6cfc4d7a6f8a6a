"""The conversation pane: the open chat's messages, following the stream."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from mfu_tui.client import ClientError
from mfu_tui.protocol import ChatDetail, StoredMessage
from mfu_tui.tui.chat_window import ChatWindow
from mfu_tui.tui.widgets.composer import TypedElsewhere
from mfu_tui.tui.widgets.message_view import MessageView, stored_status

EMPTY_HINT = "Ask anything · enter sends · ctrl+j new line"

#: Actions on the selected message: their keys (c, b, e, r, i) type into the message box when none is.
_ON_SELECTED = {"copy_message", "copy_code", "edit", "regenerate", "details"}


@dataclass
class OlderPages:
    """The messages of the open chat that are still only on the server, before those loaded."""

    cursor: str
    """The ``next_cursor`` of the oldest page loaded."""
    count: int
    """How many there are, as far as known (the chat's message count less those loaded)."""
    fetch: Callable[[str], Awaitable[ChatDetail]]
    """Asks the server for the page before a cursor, of this chat."""
    fetch_at: Callable[[int], Awaitable[ChatDetail]] | None = None
    """Asks the server for the page starting at a message index, of this chat (``home`` jumps with it)."""
    find: Callable[[str], Awaitable[ChatDetail]] | None = None
    """Asks the server for the page starting at a message of this chat (a search result far back)."""


class Spacer(Widget):
    """Empty lines that stand for messages with no widget (their measured or estimated height)."""

    DEFAULT_CSS = "Spacer { height: 0; width: 1fr; }"

    def resize(self, height: int) -> None:
        """Stand for ``height`` lines."""
        self.styles.height = max(0, height)


class Conversation(VerticalScroll, can_focus=True):
    """The messages of the open chat, oldest at the top.

    A chat opens with the server's newest page of messages, and only the last
    ``window`` of them get widgets; older ones are mounted a window at a time
    when the view reaches the top, and asked of the server a page at a time
    when those loaded run out, so a chat of thousands of messages opens as
    fast as a short one. The view is anchored to the bottom while an answer
    streams and lets go when the user scrolls up.

    ``home`` in a chat not loaded whole jumps: the first page is asked by
    offset and its first window mounted above a ``Spacer`` that stands for
    the messages down to those mounted at the bottom (the newest, which keep
    their widgets, so an answer streaming there goes on). Scrolling through
    that part mounts a window at a time from the records (``ChatWindow``),
    asking the server by offset for pages not loaded, and unmounts what
    scrolled far away into the spacers, so the widgets stay bounded however
    long the chat.

    ``up``/``down`` (or ``home``/``end``, or a search result) select a
    message, and then the letter keys act on it; with no message selected
    (as when the pane just got the focus), a printable key goes to the
    message box instead (``TypedElsewhere``), so typing is never lost.

    | Key(s) | Description | Binding id |
    | :- | :- | :- |
    | up / down | Select the previous / next message. | `conversation.previous` / `conversation.next` |
    | c | Copy the selected message. | `conversation.copy` |
    | b | Copy the selected message's last code block. | `conversation.copy_code` |
    | e | Edit the selected message of yours (it is answered again). | `conversation.edit` |
    | r | Answer again: the selected answer, or the one to the selected message. | `conversation.regenerate` |
    | i | Details of the selected message: model, time, how it ended, tokens, speed. | `conversation.details` |
    | home | Go to the oldest message (only the first window gets widgets). | `conversation.top` |
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
        Binding("down", "select_next", "Next", id="conversation.next", show=False, tooltip="Select the next message"),
        Binding("c", "copy_message", "Copy", id="conversation.copy", tooltip="Copy the selected message"),
        Binding("b", "copy_code", "Copy code", id="conversation.copy_code", tooltip="Copy its last code block"),
        Binding("e", "edit", "Edit", id="conversation.edit", tooltip="Edit this message of yours"),
        Binding("r", "regenerate", "Answer again", id="conversation.regenerate", tooltip="Answer this again"),
        Binding("i", "details", "Details", id="conversation.details", tooltip="Model, time, tokens and speed"),
        Binding("home", "top", "Top", id="conversation.top", show=False, tooltip="Go to the oldest message"),
        Binding("end", "bottom", "Bottom", id="conversation.bottom", show=False, tooltip="Go to the newest message"),
    ]

    DEFAULT_CSS = """
    Conversation {
        height: 1fr;
        padding: 0 1;
        & > #empty-hint { color: $text-muted; width: 1fr; content-align: center middle; height: 1fr; }
        & > #older { color: $text-muted; text-align: center; width: 1fr; height: 1; }
    }
    """

    selected: reactive[int | None] = reactive(None, init=False)
    """The index (among mounted messages) of the selected message, if any."""

    class CopyRequested(Message):
        """Copy this text to the clipboard."""

        def __init__(self, text: str, what: str) -> None:
            super().__init__()
            self.text = text
            self.what = what

    class EditRequested(Message):
        """Edit this user message (in the message box)."""

        def __init__(self, view: MessageView) -> None:
            super().__init__()
            self.view = view

    class RegenerateRequested(Message):
        """Answer this user message again (what follows it is dropped)."""

        def __init__(self, view: MessageView) -> None:
            super().__init__()
            self.view = view

    class DetailsRequested(Message):
        """Show the details of this message."""

        def __init__(self, view: MessageView) -> None:
            super().__init__()
            self.view = view

    def __init__(self, *, window: int = 12, id: str | None = None) -> None:
        """
        Args:
            window: How many messages get widgets at once (at open and per older load).
            id: The widget id.
        """
        super().__init__(id=id)
        self.window = window
        #: Loaded messages that have no widget yet, oldest first.
        self._older: list[StoredMessage] = []
        #: Messages before ``_older`` that are still on the server (``None``: none).
        self._on_server: OlderPages | None = None
        #: The loaded messages of the chat, by index.
        self._model = ChatWindow()
        #: After a jump: the indices mounted between the spacers (``None``: no jump, no spacers).
        self._range: range | None = None
        #: After a jump: the index of the first message mounted below the bottom spacer.
        self._tail_start = 0
        #: After a jump: asks the server for the page at an index.
        self._fetch_at: Callable[[int], Awaitable[ChatDetail]] | None = None
        #: A window is being mounted at one end of the range.
        self._extending = False
        #: How the open chat's pages are asked for (kept to page back again after a jump).
        self._pages: OlderPages | None = None

    def on_mount(self) -> None:
        self.anchor()
        self._show_hint_if_empty()

    # --- reading ---------------------------------------------------------

    @property
    def views(self) -> list[MessageView]:
        """The mounted messages, oldest first."""
        return list(self.query_children(MessageView))

    @property
    def hidden_count(self) -> int:
        """How many older messages have no widget yet (loaded or still on the server)."""
        return len(self._older) + (max(self._on_server.count, 1) if self._on_server else 0)

    def view(self, message_id: str) -> MessageView | None:
        """The widget of a stored message, if mounted.

        Searched from the bottom: the message a chunk is for is nearly always the last.
        """
        for child in reversed(self.children):
            if isinstance(child, MessageView) and child.message_id == message_id:
                return child
        return None

    def view_by_client_id(self, client_message_id: str) -> MessageView | None:
        """The widget of a user message sent from here, before or after its ack."""
        for view in self.query_children(MessageView):
            if view.client_message_id == client_message_id:
                return view
        return None

    def last_user_view(self) -> MessageView | None:
        """The newest user message with a stored id."""
        for view in reversed(self.views):
            if view.role == "user" and view.message_id is not None:
                return view
        return None

    def asked(self, view: MessageView) -> MessageView | None:
        """The user message ``view`` is: itself if it is one, else the one it answers (if mounted)."""
        views = self.views
        for earlier in reversed(views[: views.index(view) + 1]):
            if earlier.role == "user":
                return earlier
        return None

    def later_count(self, view: MessageView) -> int:
        """How many messages follow ``view``."""
        views = self.views
        return len(views) - views.index(view) - 1

    # --- changing --------------------------------------------------------

    async def show_messages(self, messages: list[StoredMessage], older: OlderPages | None = None) -> None:
        """Replace the pane with a chat's messages (only the last window gets widgets).

        Args:
            messages: The newest messages, oldest first.
            older: Where the messages before them come from, if there are any.
        """
        self.selected = None
        await self.remove_children()
        self._model = ChatWindow()
        self._model.place(older.count if older else 0, messages, (older.count if older else 0) + len(messages))
        self._range = None
        self._fetch_at = older.fetch_at if older else None
        self._pages = older
        split = max(0, len(messages) - self.window)
        self._older = list(messages[:split])
        self._on_server = older
        await self.mount_all(_views(messages[split:]))
        await self._update_older_line()
        self._show_hint_if_empty()
        self.anchor()

    async def clear(self) -> None:
        """Empty the pane for a new chat."""
        await self.show_messages([])

    async def add(self, view: MessageView) -> MessageView:
        """Add a message at the bottom."""
        self._remove_hint()
        self._model.total += 1
        await self.mount(view)
        if self.is_anchored and not self._anchor_released:
            self.scroll_end(animate=False, immediate=False)
        return view

    async def remove_after(self, view: MessageView) -> None:
        """Remove every message below ``view`` (an edit with regenerate drops them)."""
        views = self.views
        index = views.index(view)
        await self.remove_children(views[index + 1 :])
        self._model.total -= len(views) - index - 1
        for dropped in range(self._model.total, self._model.total + len(views) - index - 1):
            self._model.records.pop(dropped, None)
        self.selected = None

    async def load_older(self, *, keep_place: bool = True) -> int:
        """Mount the next window of older messages above the first; return how many.

        Args:
            keep_place: Scroll so that what was in view stays in view (not when going to a message).
        """
        if len(self._older) < self.window and self._on_server is not None:
            await self._fetch_older_page(self._on_server)
        if not self._older:
            return 0
        split = max(0, len(self._older) - self.window)
        batch, self._older = self._older[split:], self._older[:split]
        views = self.views
        first = views[0] if views else None
        height_before = self.virtual_size.height
        await self.mount_all(_views(batch), before=first)
        await self._update_older_line()
        if self.selected is not None:
            self.selected += len(batch)
        if keep_place:
            self.call_after_refresh(
                lambda: self.scroll_to(y=self.virtual_size.height - height_before + self.scroll_y, animate=False)
            )
        return len(batch)

    async def reveal(self, message_id: str, *, limit: int = 400) -> bool:
        """Select a message and scroll to it, mounting older messages until it is there.

        Args:
            message_id: A message of the open chat.
            limit: Mount no more than this many messages to find it (each costs a widget).

        Returns:
            False if it is not among the last ``limit`` messages of the chat.
        """
        if self.view(message_id) is None and self._pages is not None and self._pages.find is not None:
            # Far back: one request says where it is, and the view jumps there (nothing above it mounted).
            try:
                page = await self._pages.find(message_id)
            except (ClientError, TimeoutError):
                page = None
            tail_start = self._tail_start if self._range is not None else self._model.total - len(self.views)
            if page is not None and page.messages and page.offset < tail_start:
                self._model.place(page.offset, page.messages, max(self._model.total, page.chat.message_count))
                await self.jump_to(page.offset)
        while (view := self.view(message_id)) is None:
            if len(self.views) >= limit or not await self.load_older(keep_place=False):
                return False
        # Stay at the message, not at the bottom (a released anchor catches again there);
        # ``end``, a new chat or a sent message anchors the view again.
        self.anchor(False)
        self.focus()
        self.selected = self.views.index(view)
        # Once the messages just mounted are laid out, so that the message's place is known.
        laid_out = asyncio.Event()
        self.call_after_refresh(laid_out.set)
        await laid_out.wait()
        self.scroll_to_widget(view, animate=False, top=True, immediate=True)
        return True

    async def _fetch_older_page(self, older: OlderPages) -> None:
        try:
            page = await older.fetch(older.cursor)
        except (ClientError, TimeoutError) as error:
            # Kept as it was: the next move to the top tries again.
            self.notify(f"Could not load older messages: {error}", severity="warning", markup=False)
            return
        if older is not self._on_server:
            return  # another chat was opened meanwhile
        self._older[:0] = page.messages
        if page.next_cursor is None:
            self._on_server = None
        else:
            older.cursor = page.next_cursor
            older.count -= len(page.messages)

    async def _update_older_line(self) -> None:
        for line in self.query_children("#older"):
            await line.remove()
        if self.hidden_count:
            views = self.views
            line = Static(f"↑ {self.hidden_count} older messages", id="older", markup=False)
            await self.mount(line, before=views[0] if views else None)

    def _show_hint_if_empty(self) -> None:
        if not self.views and not self.query_children("#empty-hint"):
            self.mount(Static(EMPTY_HINT, id="empty-hint", markup=False))

    def _remove_hint(self) -> None:
        for hint in self.query_children("#empty-hint"):
            hint.remove()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if new_value <= 0 and old_value > 0 and self.hidden_count:
            self.run_worker(self.load_older(), group="older", exclusive=True)
        elif self._range is not None:
            self._follow_scroll()

    # --- the jumped part: a bounded range between two spacers ---------------

    @property
    def mounted_range(self) -> range | None:
        """After ``home``: the indices of the messages mounted between the spacers."""
        return self._range

    async def jump_to_start(self) -> bool:
        """Show the chat's first window above a spacer for the rest; False if it cannot be loaded."""
        return await self.jump_to(0)

    async def jump_to(self, start: int) -> bool:
        """Show the window from index ``start`` above a spacer for the rest; False if it cannot be loaded."""
        if self._range is None:
            tail = self.views[-self.window :]
            self._tail_start = self._model.total - len(tail)
        else:
            tail = self._below_spacer()
        wanted = range(min(start, self._tail_start), min(start + self.window, self._tail_start))
        if not await self._load(wanted):
            return False
        self.selected = None
        self.anchor(False)
        # Only the newest window keeps its widgets: the rest is the spacers' now.
        with self.app.batch_update():
            await self.remove_children([child for child in self.children if child not in tail])
            self._older, self._on_server = [], None
            top, bottom = Spacer(id="above"), Spacer(id="below")
            await self.mount_all([top, *self._views_of(wanted), bottom], before=tail[0] if tail else None)
            self._range = wanted
            bottom.resize(self._model.span_height(range(wanted.stop, self._tail_start), self._text_width))
        lines_above = self._model.span_height(range(0, wanted.start), self._text_width)
        top.resize(lines_above)
        laid_out = asyncio.Event()
        self.call_after_refresh(laid_out.set)
        await laid_out.wait()
        self.scroll_to(y=lines_above, animate=False, immediate=True)
        return True

    def _between_spacers(self) -> list[MessageView]:
        children = list(self.children)
        first, last = children.index(self.query_one("#above")), children.index(self.query_one("#below"))
        return [child for child in children[first + 1 : last] if isinstance(child, MessageView)]

    def _below_spacer(self) -> list[MessageView]:
        children = list(self.children)
        last = children.index(self.query_one("#below"))
        return [child for child in children[last + 1 :] if isinstance(child, MessageView)]

    async def _leave_range(self) -> None:
        """Back to the newest messages only: the jumped part's widgets and spacers go."""
        self.workers.cancel_group(self, "range")
        self._extending = False
        tail = self._below_spacer()
        self._range = None
        self.selected = None
        await self.remove_children([child for child in self.children if child not in tail])
        first = tail[0].message_id if tail else None
        if self._tail_start and first is not None and self._pages is not None:
            self._on_server = OlderPages(first, self._tail_start, self._pages.fetch, self._pages.fetch_at)
        await self._update_older_line()

    @property
    def _text_width(self) -> int:
        return self.scrollable_content_region.width

    def _views_of(self, span: range) -> list[MessageView]:
        return _views(self._model.records[index] for index in span)

    async def _load(self, span: range) -> bool:
        """Have every message of ``span`` in the model, asking the server by offset for those missing."""
        while (missing := self._model.missing(span)) is not None:
            if self._fetch_at is None:
                return False
            try:
                page = await self._fetch_at(missing)
            except (ClientError, TimeoutError) as error:
                self.notify(f"Could not load those messages: {error}", severity="warning", markup=False)
                return False
            if not page.messages:
                return False
            self._model.place(page.offset, page.messages, max(self._model.total, page.chat.message_count))
        return True

    def _follow_scroll(self) -> None:
        """Mount the next window when the view nears a spacer (in a worker: it may ask the server)."""
        if self._extending:
            return  # it looks again when done; cancelling it between a mount and its spacers would lose count
        span, margin = self._range, self.size.height
        above, below = self.query_one("#above", Spacer), self.query_one("#below", Spacer)
        assert span is not None
        bottom = self.scroll_y + self.size.height
        if span.stop < self._tail_start and bottom + margin >= below.virtual_region.y:
            self._extending = True
            self.run_worker(self._extend(down=True), group="range")
        elif span.start > 0 and self.scroll_y - margin <= above.virtual_region.bottom:
            self._extending = True
            self.run_worker(self._extend(down=False), group="range")

    async def _extend(self, *, down: bool) -> None:
        """Mount a window past one end of the range; unmount as much from the other end if it grew too long."""
        try:
            await self._extend_once(down=down)
        finally:
            self._extending = False
        if self._range is not None:
            self._follow_scroll()  # the view may have moved on meanwhile

    async def _extend_once(self, *, down: bool) -> None:
        span = self._range
        assert span is not None
        width = self._text_width
        new = (
            range(span.stop, min(span.stop + self.window, self._tail_start))
            if down
            else range(max(0, span.start - self.window), span.start)
        )
        if not new or not await self._load(new) or self._range is not span:
            return
        above, below = self.query_one("#above", Spacer), self.query_one("#below", Spacer)
        views = self._between_spacers()
        anchor_view = views[0] if views else below
        anchor_y = anchor_view.virtual_region.y
        start, stop = min(span.start, new.start), max(span.stop, new.stop)
        drop: list[MessageView] = []
        if stop - start > 3 * self.window:
            # What scrolled furthest away goes back into its spacer, its measured height kept.
            count = stop - start - 3 * self.window
            drop = views[:count] if down else views[-count:]
            dropped = range(span.start, span.start + count) if down else range(span.stop - count, span.stop)
            for index, view in zip(dropped, drop, strict=True):
                self._model.measured(index, width, view.outer_size.height + 1)
            start, stop = (start + count, stop) if down else (start, stop - count)
        selected = self.selected_view
        with self.app.batch_update():
            if down:
                await self.mount_all(self._views_of(new), before=below)
            else:
                await self.mount_all(self._views_of(new), after=above)
            await self.remove_children(drop)
            self._range = range(start, stop)
            above.resize(self._model.span_height(range(0, start), width))
            below.resize(self._model.span_height(range(stop, self._tail_start), width))
        if selected is not None and selected in self.views:
            self.set_reactive(Conversation.selected, self.views.index(selected))
        # Keep what was on screen in place: the estimated heights above it were replaced by real ones.
        laid_out = asyncio.Event()
        self.call_after_refresh(laid_out.set)
        await laid_out.wait()
        if anchor_view.is_attached:
            self.scroll_to(y=self.scroll_y + anchor_view.virtual_region.y - anchor_y, animate=False, immediate=True)

    # --- selection and copy ------------------------------------------------

    def watch_selected(self, old: int | None, new: int | None) -> None:
        views = self.views
        if old is not None and old < len(views):
            views[old].remove_class("-selected")
        if new is not None and new < len(views):
            views[new].add_class("-selected")
            following = new == len(views) - 1 and self.is_anchored and not self._anchor_released
            if not following:  # the view follows the bottom already: scrolling to the top of the last would stop it
                self.scroll_to_widget(views[new], animate=False)

    @property
    def selected_view(self) -> MessageView | None:
        """The selected message, if any."""
        views = self.views
        if self.selected is None or self.selected >= len(views):
            return None
        return views[self.selected]

    def on_blur(self) -> None:
        self.selected = None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # The letter keys act on a selected message; with none, they are typing (see on_key).
        if action in _ON_SELECTED:
            return self.selected is not None
        return True

    def on_key(self, event: events.Key) -> None:
        acts = event.key in self._bindings.key_to_bindings and (
            self.selected is not None
            or not any(b.action in _ON_SELECTED for b in self._bindings.key_to_bindings[event.key])
        )
        if event.is_printable and event.character and not acts:
            event.stop()
            self.post_message(TypedElsewhere(event.character))

    async def action_select_previous(self) -> None:
        if self.selected is None:
            self.selected = len(self.views) - 1 if self.views else None
        elif self.selected > 0:
            self.selected -= 1
        elif self.hidden_count:
            self.selected = self.selected + await self.load_older() - 1

    def action_select_next(self) -> None:
        if self.selected is not None and self.selected < len(self.views) - 1:
            self.selected += 1

    async def action_top(self) -> None:
        if self._fetch_at is not None and (self._on_server is not None or self._range is not None):
            if await self.jump_to_start() and self.views:
                self.selected = 0
            return
        while await self.load_older():
            pass
        if self.views:
            self.selected = 0
        self.scroll_home(animate=False)

    async def action_bottom(self) -> None:
        if self._range is not None:
            await self._leave_range()
        self.anchor()
        if self.views:
            self.selected = len(self.views) - 1

    def action_copy_message(self) -> None:
        if (view := self.selected_view) is not None:
            self.post_message(self.CopyRequested(view.text, "message"))

    def action_edit(self) -> None:
        view = self.selected_view
        if view is not None and view.role == "user":
            self.post_message(self.EditRequested(view))
        elif view is not None:
            self.notify("Only your own messages can be edited: r answers again.", severity="warning")

    def action_regenerate(self) -> None:
        view = self.selected_view
        asked = self.asked(view) if view is not None else None
        if asked is not None:
            self.post_message(self.RegenerateRequested(asked))

    def action_details(self) -> None:
        if (view := self.selected_view) is not None:
            self.post_message(self.DetailsRequested(view))

    def action_copy_code(self) -> None:
        view = self.selected_view
        if view is None:
            return
        blocks = view.code_blocks()
        if blocks:
            self.post_message(self.CopyRequested(blocks[-1], "code block"))
        else:
            self.notify("This message has no code block.", severity="warning")


def _views(messages: Iterable[StoredMessage]) -> list[MessageView]:
    views = []
    for message in messages:
        view = MessageView(
            message.role,
            message.content,
            message_id=message.id,
            status="truncated" if message.truncated else stored_status(message.status, message.finish_reason),
            last_seq=message.seq,
            attachments=message.attachments,
        )
        view.record = message
        views.append(view)
    return views
