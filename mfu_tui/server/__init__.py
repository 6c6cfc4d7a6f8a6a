"""``mfu-chat serve``: the WebSocket chat server.

Public API for in-process use (tests, the app's embedded mode)::

    from mfu_tui.server import ChatServer, ServerConfig
    server = ChatServer(ServerConfig(secret=..., port=0))
    await server.start()      # server.port, server.url
    await server.stop()

``mint_token`` lives in ``mfu_tui.server.auth``. See ``docs/server.md``.
"""

from mfu_tui.server.app import ChatServer
from mfu_tui.server.config import ConfigError, ServerConfig

__all__ = ["ChatServer", "ConfigError", "ServerConfig"]
