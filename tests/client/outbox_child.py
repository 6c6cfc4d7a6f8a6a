"""A separate client process for the crash tests: ``python -m tests.client.outbox_child URL TOKEN DATA_DIR``.

It uses ``ChatClient`` as a library. It prints ``connected`` once connected
(or ``started`` at once with ``--no-wait``), then for every line read on
stdin sends that line as a new chat's first message and prints its
``clientMessageId`` once the message is in the outbox. It never exits by
itself: the test kills it.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from mfu_tui.client import ChatClient


async def main(url: str, token: str, data_dir: str, wait: bool) -> None:
    client = ChatClient(url, token, data_dir=Path(data_dir), ping_interval=0.5, ping_timeout=1.0)
    await client.connect()
    if wait:
        await client.wait_connected()
    print("connected" if wait else "started", flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        client_message_id = await client.send_message(None, line.rstrip("\n"))
        print(client_message_id, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    url, token, data_dir, *flags = sys.argv[1:]
    asyncio.run(main(url, token, data_dir, wait="--no-wait" not in flags))
