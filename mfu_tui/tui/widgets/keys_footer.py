"""The footer: the keys that do something here, changed in place only where they change."""

from __future__ import annotations

from difflib import SequenceMatcher

from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

#: What the footer shows of a binding: its key as shown, description, action, whether enabled, tooltip.
ShownKey = tuple[str, str, str, bool, str]


class KeysFooter(Footer):
    """Textual's ``Footer``, changed only where the keys it shows change.

    Textual's footer composes all its keys again (a dozen widgets removed,
    mounted and styled, then laid out) each time the screen's bindings are
    refreshed: on every focus change, and as an answer starts and ends, most
    often to show the same keys. This one compares what it would show first,
    when it is about to compose (the bindings are settled by then: a refresh
    is announced before the focus has moved), and then mounts the keys that
    come and removes those that go, leaving the others as they are: as an
    answer starts and ends, one key, not the footer's dozen, in the time of
    the answer's own first and last frames.

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
        if shown == self._shown:
            return
        composed_before = self._shown is not None
        self._shown = shown
        if composed_before and self.is_attached:
            await self._change_keys()
        else:
            await super().recompose()

    def compose(self) -> ComposeResult:
        keys = list(super().compose())
        yield from sorted(keys, key=lambda key: not (isinstance(key, FooterKey) and key.action in self.FIRST))

    async def _change_keys(self) -> None:
        """Make the footer's keys those ``compose`` makes now, mounting and removing only the ones that differ."""
        have = list(self.children)
        wanted = list(self.compose())
        steps = SequenceMatcher(a=[_looks(key) for key in have], b=[_looks(key) for key in wanted], autojunk=False)
        going: list[Widget] = []
        coming: list[tuple[list[Widget], Widget | None, Widget | None]] = []  # new keys; the kept keys around
        for step, old_start, old_end, new_start, new_end in steps.get_opcodes():
            if step == "equal":
                continue
            going.extend(have[old_start:old_end])
            if new_start < new_end:
                # Steps that are not "equal" are never adjacent: the keys either side of this one stay.
                before = have[old_end] if old_end < len(have) else None
                after = have[old_start - 1] if before is None and old_start > 0 else None
                coming.append((wanted[new_start:new_end], before, after))
        async with self.batch():
            if going:
                await self.remove_children(going)
            for keys, before, after in coming:
                await self.mount_all(keys, before=before, after=after)


def _looks(widget: Widget) -> tuple[object, ...]:
    """What tells one footer key from another on screen: two keys alike are interchangeable."""
    if not isinstance(widget, FooterKey):
        return (type(widget), id(widget))  # not a key (Textual's key groups, unused here): never kept
    return (
        widget.key,
        widget.key_display,
        widget.description,
        widget.action,
        widget.has_class("-disabled"),
        widget.tooltip,
        widget.has_class("-command-palette"),  # docked right (the others: the classes of mounting, ``-compact``)
    )
