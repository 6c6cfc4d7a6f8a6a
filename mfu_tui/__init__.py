"""mfu-chat: a terminal chat client for AI models, and the server it talks to.

The package is layered; an arrow means "may import":

    tui (Textual)  ->  client (asyncio)  ->  protocol (pure, no I/O)
    server (asyncio)  ->  protocol
    cli, config  ->  any of them

Importing this module must stay cheap: `mfu-chat --version` depends on it.
"""

__version__ = "0.1.0"
