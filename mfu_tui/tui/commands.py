"""The command palette: entries beyond the app's actions (open any chat by its title or by words in it)."""

from __future__ import annotations

from functools import partial

from textual import on
from textual.command import CommandPalette, DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.events import Mount
from textual.message import Message
from textual.widgets import Input, OptionList

from mfu_tui.client import ClientError
from mfu_tui.protocol import search_words

#: Messages found by the server's search shown in the palette, at most.
SEARCH_HITS = 8
#: Scores of those messages: below a good title match, newest first.
SEARCH_SCORE = 0.5


class ChatsProvider(Provider):
    """``ctrl+p`` then a few letters of a chat's title opens it; words of a message open its chat at it."""

    def _chats(self) -> list[tuple[str, str]]:
        from mfu_tui.tui.widgets.chat_list import ChatList

        lists = self.app.query(ChatList)
        if not lists:
            return []
        return [(chat.id, chat.title) for chat in lists.first().chats]

    def _open(self, chat_id: str) -> None:
        self.app.load_chat(chat_id)  # type: ignore[attr-defined]

    def _open_at(self, chat_id: str, message_id: str) -> None:
        self.app.open_at(chat_id, message_id)  # type: ignore[attr-defined]

    async def discover(self) -> Hits:
        for chat_id, title in self._chats()[:10]:
            yield DiscoveryHit(f"Open chat: {title}", partial(self._open, chat_id), help="From the chat list")

    async def search(self, query: str) -> Hits:
        from mfu_tui.tui.screens.search import snippet_content

        matcher = self.matcher(query)
        for chat_id, title in self._chats():
            text = f"Open chat: {title}"
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), partial(self._open, chat_id), help="From the chat list")
        if not search_words(query):
            return
        try:
            results = await self.app.client.search(query, limit=SEARCH_HITS)  # type: ignore[attr-defined]
        except (ClientError, TimeoutError):
            return  # the palette still has the titles; ctrl+f says what went wrong
        for rank, hit in enumerate(results.hits):
            # Server text as plain Content (the palette reads ``help`` as markup, so it stays ours).
            display = Content.assemble(Content(f"{hit.chat_title}: ").stylize("bold"), snippet_content(hit))
            command = partial(self._open_at, hit.chat_id, hit.message_id)
            yield Hit(SEARCH_SCORE - rank / 100, display, command, text=hit.snippet, help="A message with these words")


class ChatPalette(CommandPalette):
    """Textual's command palette, doing nothing more once it is closed.

    Keys that come together (after a freeze, over a slow link) can close
    the palette before it handled what they did to it: ``escape`` typed
    before ``ctrl+p`` reaches the palette's binding late, as it bubbles up,
    while ``ctrl+p`` opened it at once. Its mount, or a letter typed
    meanwhile, would then start gathering commands into a list already
    removed, and the worker's error (``NoMatches: CommandList``) ended the app.
    """

    @on(Mount)
    @on(Input.Changed)
    @on(Input.Submitted)
    @on(OptionList.OptionSelected)
    def _ignore_when_closed(self, event: Message) -> None:
        if self not in self.app.screen_stack:
            event.prevent_default()  # Textual's own handlers, in the base class, do not run
            event.stop()
