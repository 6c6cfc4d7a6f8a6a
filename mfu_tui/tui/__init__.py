"""The mfu-chat terminal app (Textual).

It talks to the server only through ``mfu_tui.client``; nothing here opens
a socket. Start it with ``ChatApp(AppSettings(url=..., token=...)).run()``.

``ChatApp`` is imported when first asked for (PEP 562): the config layer
builds the app's settings types (``tui/settings.py``) before any screen
exists, and must not pay for importing Textual to do so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mfu_tui.tui.settings import AppChoices, AppSettings

if TYPE_CHECKING:
    from mfu_tui.tui.app import ChatApp

__all__ = ["AppChoices", "AppSettings", "ChatApp"]


def __getattr__(name: str) -> Any:
    if name == "ChatApp":
        from mfu_tui.tui.app import ChatApp

        return ChatApp
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
