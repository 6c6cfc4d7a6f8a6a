"""Search every chat: results as you type, Enter opens the chat at the message."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from mfu_tui.client import ClientError
from mfu_tui.protocol import MAX_QUERY_LENGTH, SearchHit, SearchResults, search_words
from mfu_tui.tui.screens.dialog import Dialog

#: The style of the matched words in a snippet.
MATCH_STYLE = "bold reverse"


def snippet_content(hit: SearchHit) -> Content:
    """A hit's snippet as plain text with its matched words styled: never read as markup."""
    content = Content(hit.snippet)
    for start, end in hit.highlights:
        content = content.stylize(MATCH_STYLE, start, end)
    return content


def hit_prompt(hit: SearchHit) -> Content:
    """Two lines for a result: the chat's title, who wrote it and when; then the snippet."""
    when = hit.created_at.astimezone().strftime("%Y-%m-%d")
    who = "you" if hit.role == "user" else "answer"
    heading = Content.assemble(Content(hit.chat_title).stylize("bold"), Content(f" · {who} · {when}").stylize("dim"))
    return Content("\n").join([heading, snippet_content(hit)])


class SearchScreen(Dialog[SearchHit | None]):
    """A search box over every chat; dismiss with the chosen hit or ``None``.

    Results follow the typing: a search starts ``delay`` seconds after the
    last key, and an answer to an older query is dropped.

    | Key(s) | Description | Binding id |
    | :- | :- | :- |
    | enter | Open the highlighted result's chat at that message. | (the input's submit) |
    | down / up | Move through the results. | `search.next` / `search.previous` |
    | escape | Close. | `search.cancel` |
    """

    AUTO_FOCUS = "Input"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Close", id="search.cancel"),
        Binding("down", "move(1)", "Next", id="search.next", show=False),
        Binding("up", "move(-1)", "Previous", id="search.previous", show=False),
    ]

    DEFAULT_CSS = """
    SearchScreen {
        align: center top;
        & > Vertical {
            width: 90;
            max-width: 95%;
            height: auto;
            max-height: 90%;
            margin-top: 2;
            border: round $accent;
            background: $surface;
            padding: 0 1;
        }
        & #status { color: $text-muted; height: 1; }
        & OptionList { height: auto; max-height: 24; border: none; padding: 0; }
    }
    """

    hits: reactive[list[SearchHit]] = reactive(list, init=False)
    """The results shown, newest first."""

    def __init__(self, search: Callable[[str], Awaitable[SearchResults]], *, delay: float = 0.25) -> None:
        """
        Args:
            search: Asks the server (``ChatClient.search``).
            delay: Seconds after the last key before a search starts.
        """
        super().__init__()
        self._search = search
        self.delay = delay
        self._timer: Timer | None = None
        # Set once the words in the box have been searched for (or found to be none).
        self._answered = asyncio.Event()
        self._answered.set()

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Search every chat"
            box.border_subtitle = "enter: open · ↑↓: choose · esc: close"
            yield Input(placeholder="Words to find", max_length=MAX_QUERY_LENGTH, id="query")
            yield Static("Type to search every chat.", id="status", markup=False)
            yield OptionList(id="results")

    async def settled(self) -> None:
        """Wait until the words in the box have been searched for and the results are shown.

        For tests and screenshot scripts, which wait on this rather than on time.
        """
        await self._answered.wait()

    def on_input_changed(self, event: Input.Changed) -> None:
        self._answered.clear()
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(self.delay, lambda: self._run(event.value))

    @work(group="search", exclusive=True)
    async def _run(self, query: str) -> None:
        """Search for ``query``; exclusive, so the answer to an older query never replaces a newer one."""
        await self._show(query)
        if query == self.query_one(Input).value:
            self._answered.set()

    async def _show(self, query: str) -> None:
        status = self.query_one("#status", Static)
        if not search_words(query):
            self.hits = []
            status.update("Type a word: letters or digits." if query.strip() else "Type to search every chat.")
            return
        status.update("Searching…")
        try:
            results = await self._search(query)
        except (ClientError, TimeoutError) as error:
            status.update(f"Search failed: {error}" if isinstance(error, ClientError) else "The server did not answer.")
            return
        self.hits = results.hits
        count = len(results.hits)
        more = "+" if results.next_cursor else ""
        status.update(f"{count}{more} message{'s' if count != 1 else ''}" if count else "No message holds these words.")

    def watch_hits(self, hits: list[SearchHit]) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options(Option(hit_prompt(hit), id=str(index)) for index, hit in enumerate(hits))
        if hits:
            options.highlighted = 0

    def on_input_submitted(self) -> None:
        highlighted = self.query_one(OptionList).highlighted
        if highlighted is not None and highlighted < len(self.hits):
            self.dismiss(self.hits[highlighted])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.hits[event.option_index])

    def action_move(self, step: int) -> None:
        options = self.query_one(OptionList)
        if step > 0:
            options.action_cursor_down()
        else:
            options.action_cursor_up()

    def action_cancel(self) -> None:
        self.dismiss(None)
