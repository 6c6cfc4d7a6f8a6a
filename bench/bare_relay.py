"""The floor of the server benches: the least a Python websockets server does to relay the same chunks.

``python -m bench.bare_relay --upstream http://127.0.0.1:PORT`` listens on
a free loopback port and prints ``bare relay: listening on ws://127.0.0.1:PORT/ws``.
Each connection may send the protocol's ``ping`` (answered with a ``pong``)
and ``message`` frames: for a message it streams a completion from the
OpenAI-compatible upstream with aiohttp, as ``mfu-chat serve --provider openai``
does, and sends each piece as a ``chunk`` frame (one ``send`` per frame),
then a ``complete``. No token check, no store, no history, no hub, no
queue: what is left is websockets, the HTTP client and the codec, which
any server relaying these frames in Python pays.

``bench.floor`` runs it beside ``mfu-chat serve``; ``--loop uvloop`` runs
it on uvloop (the server's ``--loop``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from typing import Any

import aiohttp
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from mfu_tui.protocol import Chunk, Complete, Message, Ping, Pong, decode_client, encode


class BareRelay:
    """The relay: one HTTP session to the upstream for every connection."""

    def __init__(self, upstream: str) -> None:
        self.completions = f"{upstream}/v1/chat/completions"
        self.session: aiohttp.ClientSession | None = None

    async def serve(self, websocket: ServerConnection) -> None:
        try:
            async for data in websocket:
                frame = decode_client(data)
                if isinstance(frame, Ping):
                    await websocket.send(encode(Pong(ts=frame.ts)), text=True)
                elif isinstance(frame, Message):
                    await self.relay(websocket, frame)
        except ConnectionClosed:
            pass

    async def relay(self, websocket: ServerConnection, frame: Message) -> None:
        assert self.session is not None
        chat_id, message_id, seq = frame.chat_id or str(uuid.uuid4()), str(uuid.uuid4()), 0
        body = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": frame.content}]}
        async with self.session.post(self.completions, json=body) as response:
            async for line in response.content:
                text = line.decode()
                if not text.startswith("data:") or (payload := text[5:].strip()) == "[DONE]":
                    continue
                for choice in json.loads(payload).get("choices") or []:
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        seq += 1
                        chunk = Chunk(chat_id=chat_id, message_id=message_id, seq=seq, content=content)
                        await websocket.send(encode(chunk), text=True)
        await websocket.send(encode(Complete(chat_id=chat_id, message_id=message_id, seq=seq)), text=True)


async def main(args: argparse.Namespace) -> None:
    relay = BareRelay(args.upstream)
    relay.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    options: dict[str, Any] = {"compression": None, "backlog": 4096, "max_queue": 2}
    async with serve(relay.serve, "127.0.0.1", args.port, **options) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"bare relay: listening on ws://127.0.0.1:{port}/ws", flush=True)
        await server.serve_forever()


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", default="http://127.0.0.1:9", help="base URL of bench.upstream")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(main(args))
    else:
        asyncio.run(main(args))


if __name__ == "__main__":
    run()
