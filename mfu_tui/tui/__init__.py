"""The mfu-chat terminal app (Textual).

It talks to the server only through ``mfu_tui.client``; nothing here opens
a socket. Start it with ``ChatApp(AppSettings(url=..., token=...)).run()``.
"""

from mfu_tui.tui.app import ChatApp
from mfu_tui.tui.settings import AppSettings

__all__ = ["AppSettings", "ChatApp"]
