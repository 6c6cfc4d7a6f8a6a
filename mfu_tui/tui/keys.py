"""The table of key bindings, as the help screen and the docs show it."""

from __future__ import annotations

from typing import NamedTuple

from textual.app import App
from textual.binding import Binding
from textual.dom import DOMNode


class KeyRow(NamedTuple):
    """One line of the key table."""

    area: str
    keys: str
    description: str
    binding_id: str


def binding_rows(app: App[object]) -> list[KeyRow]:
    """Every binding of the app and its widgets, with keys remapped by the keymap."""
    from mfu_tui.tui.widgets.chat_list import ChatList
    from mfu_tui.tui.widgets.composer import Composer
    from mfu_tui.tui.widgets.conversation import Conversation

    areas: list[tuple[str, type[DOMNode]]] = [
        ("Anywhere", type(app)),
        ("Composer", Composer),
        ("Conversation", Conversation),
        ("Chat list", ChatList),
    ]
    keymap = app._keymap
    rows = []
    for area, node_class in areas:
        for binding in node_class.BINDINGS:
            if not isinstance(binding, Binding) or binding.id is None:
                continue
            keys = keymap.get(binding.id, binding.key)
            rows.append(KeyRow(area, _display_keys(keys), binding.tooltip or binding.description, binding.id))
    return rows


def _display_keys(keys: str) -> str:
    return ", ".join(key.strip() for key in keys.split(","))
