"""An aiohttp application's listener, bound in one step and served in another (the REST API, ``/metrics``).

aiohttp's sites bind and serve at once. The server binds every listener
before it opens its database, so a taken port or a wrong host stops the
start before the file is made or migrated, and lets requests in only once
the store is open: websockets' ``start_serving=False`` for the WebSocket
port, this for the others.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web


class HttpListener:
    """``app`` on an address: ``bind``, then ``serve``, then ``close``.

    Args:
        app: The application.
        runner_options: For its ``web.AppRunner`` (``access_log``, ``shutdown_timeout``...).
    """

    def __init__(self, app: web.Application, **runner_options: Any) -> None:
        self._runner = web.AppRunner(app, **runner_options)
        self._server: asyncio.Server | None = None
        #: The port once bound.
        self.port: int | None = None

    async def bind(self, host: str, port: int, *, reuse_port: bool = False) -> int:
        """Bind ``host:port`` (0: a free port), accepting no one yet; returns the port.

        ``reuse_port``: the workers of ``--workers`` share the port, any of them answers a request.

        Raises:
            OSError: The host is not this machine's, the port is taken...
        """
        await self._runner.setup()
        assert self._runner.server is not None  # made by setup
        try:
            self._server = await asyncio.get_running_loop().create_server(
                self._runner.server, host, port, reuse_port=reuse_port or None, start_serving=False
            )
        except BaseException:
            await self._runner.cleanup()
            raise
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def serve(self) -> None:
        """Accept requests."""
        assert self._server is not None
        await self._server.start_serving()

    async def close(self) -> None:
        """Stop accepting; requests in progress get the runner's ``shutdown_timeout`` to finish. Bound or not."""
        if self._server is None:
            return
        self._server.close()
        await self._runner.cleanup()
        self._server = None
        self.port = None
