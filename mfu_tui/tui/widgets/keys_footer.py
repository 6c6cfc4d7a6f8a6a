"""The footer: the keys that do something here, composed again only when they change."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

#: What the footer shows of a binding: its key as shown, description, action, whether enabled, tooltip.
ShownKey = tuple[str, str, str, bool, str]


class KeysFooter(Footer):
    """Textual's ``Footer``, composed again only when the keys it shows change.

    Textual's footer composes all its keys again (a dozen widgets mounted
    and styled) each time the screen's bindings are refreshed: on every
    focus change, and as an answer starts and ends, most often to show the
    same keys. This one compares what it would show first, when it is about
    to compose (the bindings are settled by then: a refresh is announced
    before the focus has moved).

    The key that stops an answer comes first while it shows: an app key,
    it came last, after the focused widget's, and at 80 columns with a
    message selected it was cut off.
    """

    #: The actions whose keys the footer shows first, when they show.
    FIRST = ("cancel",)

    def __init__(self) -> None:
        super().__init__()
        self._shown: tuple[bool, tuple[ShownKey, ...]] | None = None

    async def recompose(self) -> None:
        shown = (
            self.show_command_palette,
            tuple(
                (self.app.get_key_display(binding), binding.description, binding.action, enabled, tooltip)
                for _, binding, enabled, tooltip in self.screen.active_bindings.values()
                if binding.show
            ),
        )
        if shown != self._shown:
            self._shown = shown
            await super().recompose()

    def compose(self) -> ComposeResult:
        keys = list(super().compose())
        yield from sorted(keys, key=lambda key: not (isinstance(key, FooterKey) and key.action in self.FIRST))
