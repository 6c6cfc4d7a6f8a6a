"""The floor of the startup bench: a bare Textual app laid out like mfu-chat.

A header, a sidebar titled "Chats" beside a scrolling pane and a text area,
and a footer, and nothing else: no client, no settings, no stylesheet file.
``bench.startup`` times its first frame next to the real app's.
"""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Header, Static, TextArea


class BareApp(App[None]):
    CSS = "#sidebar { width: 32; } TextArea { height: 3; }"

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="sidebar"):
                yield Static("Chats")
            with Vertical():
                yield VerticalScroll()
                yield TextArea()
        yield Footer()


if __name__ == "__main__":
    BareApp().run()
