"""The check of the settings only the app knows: the theme and the key bindings.

``mfu-chat`` runs it before the screen changes and ``mfu-chat config show``
runs it too, so a setting the app would refuse is never shown as fine. It
imports Textual and the app's key table when called, so reading the
configuration (login, logout) stays cheap.
"""

from __future__ import annotations

from mfu_tui.config.settings import ConfigError, Settings


def check_app_choices(settings: Settings) -> None:
    """Refuse a theme the app does not have, or a keymap it cannot use.

    Raises:
        ConfigError: one line naming the setting and where it came from.
    """
    from textual.theme import BUILTIN_THEMES

    from mfu_tui.tui.app import ChatApp
    from mfu_tui.tui.keys import keymap_problem

    theme = settings.app.theme
    if theme not in BUILTIN_THEMES:
        known = ", ".join(sorted(BUILTIN_THEMES))
        raise ConfigError(f"{settings.where('theme')}: 'theme' {theme!r} is not a theme (themes: {known})")
    if problem := keymap_problem(ChatApp, settings.app.keymap):
        raise ConfigError(f"{settings.where('keys')}: {problem}")
