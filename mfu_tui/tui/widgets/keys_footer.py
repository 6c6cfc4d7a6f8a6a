"""The footer: the keys that do something here, composed again only when they change."""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer

#: What the footer shows of a binding: its key, description, action, whether it is enabled, its tooltip.
ShownKey = tuple[str, str, str, bool, str]


class KeysFooter(Footer):
    """Textual's ``Footer``, composed again only when the keys it shows change.

    Textual's footer composes all its keys again (a dozen widgets mounted
    and styled) each time the screen's bindings are refreshed: on every
    focus change, and as an answer starts and ends, most often to show the
    same keys. This one compares what it would show first.
    """

    def __init__(self) -> None:
        super().__init__()
        self._shown: tuple[ShownKey, ...] | None = None

    def bindings_changed(self, screen: Screen) -> None:
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            shown = tuple(
                (binding.key, binding.description, binding.action, enabled, tooltip)
                for _, binding, enabled, tooltip in screen.active_bindings.values()
                if binding.show
            )
            if shown == self._shown:
                self._bindings_ready = True
                return
            self._shown = shown
        super().bindings_changed(screen)
