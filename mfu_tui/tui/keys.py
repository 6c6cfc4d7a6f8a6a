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
    keymap = app._keymap
    return [
        KeyRow(
            area,
            _display_keys(keymap.get(binding_id, binding.key)),
            binding.tooltip or binding.description,
            binding_id,
        )
        for area, binding_id, binding in _bindings(type(app))
    ]


def binding_ids() -> set[str]:
    """The ids a user may remap (the config file's ``[keys]`` table)."""
    from mfu_tui.tui.app import ChatApp

    return {binding_id for _, binding_id, _ in _bindings(ChatApp)}


def _bindings(app_class: type[DOMNode]) -> list[tuple[str, str, Binding]]:
    """(area, id, binding) for every binding with an id, in help-screen order."""
    from mfu_tui.tui.screens.chat_settings import ChatSettingsScreen
    from mfu_tui.tui.widgets.chat_list import ChatList
    from mfu_tui.tui.widgets.composer import Composer
    from mfu_tui.tui.widgets.conversation import Conversation

    areas: list[tuple[str, type[DOMNode]]] = [
        ("Anywhere", app_class),
        ("Composer", Composer),
        ("Conversation", Conversation),
        ("Chat list", ChatList),
        ("Chat settings", ChatSettingsScreen),
    ]
    return [
        (area, binding.id, binding)
        for area, node_class in areas
        for binding in node_class.BINDINGS
        if isinstance(binding, Binding) and binding.id is not None
    ]


def _display_keys(keys: str) -> str:
    return ", ".join(key.strip() for key in keys.split(","))
