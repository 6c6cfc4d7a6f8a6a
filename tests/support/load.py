"""Load clients for load tests and benches: opening many authenticated connections, pinging them."""

from __future__ import annotations

import asyncio
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from mfu_tui.protocol import Ping, Pong, decode_server, encode


async def open_connections(
    url: str, tokens: list[str], addresses: list[str], errors: list[str], *, at_once: int, open_timeout: float
) -> list[ClientConnection]:
    """One connection per token, spread over the loopback ``addresses``; failures go to ``errors``.

    At most ``at_once`` handshakes run together, so the server's accept queue
    is not flooded. Loopback source addresses let one machine open more
    connections than one address has ports.
    """
    gate = asyncio.Semaphore(at_once)

    async def open_one(index: int) -> ClientConnection | None:
        async with gate:
            try:
                return await connect(
                    url,
                    additional_headers={"Authorization": f"Bearer {tokens[index]}"},
                    proxy=None,
                    local_addr=(addresses[index % len(addresses)], 0),
                    open_timeout=open_timeout,
                    ping_interval=None,  # the server pings; the load's own JSON pings check liveness
                    max_queue=None,
                    compression=None,  # as the server: no per-connection compression
                )
            except Exception as error:  # noqa: BLE001 (a figure: connections that failed)
                errors.append(f"open: {error!r}")
                return None

    opened = await asyncio.gather(*(open_one(index) for index in range(len(tokens))))
    return [ws for ws in opened if ws is not None]


async def ping_once(ws: ClientConnection, figures: dict[str, Any], timeout: float) -> None:
    """Send a JSON ping and wait for its pong: ``figures["pongs"]`` counts answers, ``["errors"]`` failures."""
    try:
        await ws.send(encode(Ping(ts=1.0)).decode())
        async with asyncio.timeout(timeout):
            async for data in ws:
                if isinstance(decode_server(data), Pong):
                    figures["pongs"] += 1
                    return
    except Exception as error:  # noqa: BLE001 (a figure: connections that did not answer)
        figures["errors"].append(f"ping: {error!r}")
