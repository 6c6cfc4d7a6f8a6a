"""Command palette entries beyond the app's actions: open any chat by title."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


class ChatsProvider(Provider):
    """``ctrl+p`` then a few letters of a chat's title opens it."""

    def _chats(self) -> list[tuple[str, str]]:
        from mfu_tui.tui.widgets.chat_list import ChatList

        lists = self.app.query(ChatList)
        if not lists:
            return []
        return [(chat.id, chat.title) for chat in lists.first().chats]

    def _open(self, chat_id: str) -> None:
        self.app.load_chat(chat_id)  # type: ignore[attr-defined]

    async def discover(self) -> Hits:
        for chat_id, title in self._chats()[:10]:
            yield DiscoveryHit(f"Open chat: {title}", partial(self._open, chat_id), help="From the chat list")

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for chat_id, title in self._chats():
            text = f"Open chat: {title}"
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), partial(self._open, chat_id), help="From the chat list")
