"""The table of key bindings, as the help screen and the docs show it, and the check of a keymap."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from textual.app import App
from textual.binding import Binding
from textual.dom import DOMNode

#: What the help screen shows to remap a key: a ``[keys]`` table of the config file, as it is read.
REMAP_EXAMPLE = '[keys]\n"app.new_chat" = "ctrl+t"'

#: Modifiers, in the order Textual names them (``ctrl+shift+up``).
MODIFIERS = ("ctrl", "alt", "shift", "meta", "super", "hyper")

#: Keys Textual itself takes in every screen: remapping one of ours to them would hide it.
RESERVED = {"ctrl+p": "opens the command palette", "tab": "moves the focus", "shift+tab": "moves the focus"}


class KeyRow(NamedTuple):
    """One line of the key table."""

    area: str
    keys: str
    description: str
    binding_id: str


def binding_rows(app_class: type[App[Any]], keymap: Mapping[str, str]) -> list[KeyRow]:
    """Every binding of the app and its widgets, with keys remapped by ``keymap`` (binding id to keys)."""
    return [
        KeyRow(
            area,
            _display_keys(keymap.get(binding_id, binding.key)),
            binding.tooltip or binding.description,
            binding_id,
        )
        for area, binding_id, binding in _bindings(app_class)
    ]


def keys_of(app_class: type[App[Any]], keymap: Mapping[str, str], binding_id: str) -> str:
    """The key(s) of one of the app's bindings, as ``keymap`` has them (``f6``), for a hint."""
    for _, found_id, binding in _bindings(app_class):
        if found_id == binding_id:
            return _display_keys(keymap.get(binding_id, binding.key))
    raise KeyError(binding_id)


def keymap_problem(app_class: type[App[Any]], keymap: Mapping[str, str]) -> str | None:
    """What stops the app from using ``keymap`` (binding id to keys), in one line; ``None`` if nothing.

    A keymap is refused for an id the app does not have, a key that is not
    a key name (it would leave the action without a key, silently), and a
    key that another binding has where both work (an app key works
    everywhere) or that Textual takes itself (the palette, focus moves):
    one of the two would never run.
    """
    if not keymap:  # the defaults: nothing to check, and the dialogs' bindings need not be imported
        return None
    bindings = _bindings(app_class)
    known = {binding_id for _, binding_id, _ in bindings}
    for binding_id, keys in keymap.items():
        entry = f'"{binding_id}" = "{keys}"'
        if binding_id not in known:
            return f"'keys' has no binding {binding_id!r} (press F1 in the app for the ids, e.g. app.cancel)"
        for key in _split(keys):
            if not is_key_name(key):
                return (
                    f"'keys' {entry}: {key!r} is not a key name "
                    '(write keys as ctrl+t, alt+left, shift+f5, escape, pageup or a letter; several: "f2,ctrl+e")'
                )
    # The overlaps the defaults have are meant (f8 deletes in the list and anywhere);
    # a new one would leave one of the two bindings without its key.
    meant = _overlaps(bindings, {})
    for (binding_id, key), other in _overlaps(bindings, keymap).items():
        if binding_id not in keymap or (binding_id, key) in meant:
            continue
        entry = f'"{binding_id}" = "{keymap[binding_id]}"'
        if key in RESERVED:
            return f"'keys' {entry}: {key} {RESERVED[key]} in every screen; choose another key"
        return f"'keys' {entry}: {key} is already {other}'s key; give one of them another key"
    return None


def _overlaps(bindings: list[tuple[str, str, Binding]], keymap: Mapping[str, str]) -> dict[tuple[str, str], str]:
    """(id, key) to another binding's id that has that key where both work; keys of Textual's own count too.

    A binding of the app works everywhere, one of a widget where it has the focus.
    """
    placed = [
        (area, binding_id, _canonical(key))
        for area, binding_id, binding in bindings
        for key in _split(keymap.get(binding_id, binding.key))
    ]
    found: dict[tuple[str, str], str] = {}
    for area, binding_id, key in placed:
        if key in RESERVED:
            found[(binding_id, key)] = "Textual's"
        for other_area, other_id, other_key in placed:
            shared = area == other_area or "Anywhere" in (area, other_area)
            if other_key == key and other_id != binding_id and shared:
                found.setdefault((binding_id, key), other_id)
    return found


def is_key_name(key: str) -> bool:
    """True if Textual can match ``key``: modifiers then a named key or one printable character."""
    *modifiers, base = key.split("+") if key != "+" else [key]
    if len(set(modifiers)) != len(modifiers) or not set(modifiers) <= set(MODIFIERS):
        return False
    return (len(base) == 1 and base.isprintable() and not base.isspace()) or base in _named_keys()


def _named_keys() -> set[str]:
    from textual.keys import Keys, _character_to_key

    named = {key.value.rsplit("+", 1)[-1] for key in Keys}
    named |= {_character_to_key(chr(code)) for code in range(32, 127)}
    return {name for name in named if name.isidentifier() or name.isalnum()}


def _canonical(key: str) -> str:
    """``shift+ctrl+x`` and ``ctrl+shift+x`` are one key: modifiers in Textual's order."""
    *modifiers, base = key.split("+") if key != "+" else [key]
    return "+".join([*(m for m in MODIFIERS if m in modifiers), base])


def _split(keys: str) -> list[str]:
    return [key.strip() for key in keys.split(",") if key.strip()]


def _bindings(app_class: type[DOMNode]) -> list[tuple[str, str, Binding]]:
    """(area, id, binding) for every binding with an id, in help-screen order; an id's first binding in an area.

    An id may name two bindings of one widget that share the key (the conversation's ``up``, shown in the
    footer only before a message is selected): a remap moves both, the help shows the first.
    """
    from mfu_tui.tui.screens.chat_settings import ChatSettingsScreen
    from mfu_tui.tui.screens.details import DetailsScreen
    from mfu_tui.tui.widgets.chat_list import ChatList
    from mfu_tui.tui.widgets.composer import Composer
    from mfu_tui.tui.widgets.conversation import Conversation

    areas: list[tuple[str, type[DOMNode]]] = [
        ("Anywhere", app_class),
        ("Composer", Composer),
        ("Conversation", Conversation),
        ("Chat list", ChatList),
        ("Chat settings", ChatSettingsScreen),
        ("Message details", DetailsScreen),
    ]
    found: dict[tuple[str, str], Binding] = {}
    for area, node_class in areas:
        for binding in node_class.BINDINGS:
            if isinstance(binding, Binding) and binding.id is not None:
                found.setdefault((area, binding.id), binding)
    return [(area, binding_id, binding) for (area, binding_id), binding in found.items()]


def _display_keys(keys: str) -> str:
    return ", ".join(key.strip() for key in keys.split(","))
