"""The files of outbox messages on their way to the server, a part at a time.

Each message with files gets one task (``start``) that uploads them in
order and then sends the message. A part waits for its ``attachment_ack``
before the next goes: the ack's ``received`` says where the next part
starts, so a task that starts over after a reconnect sends its first part
at offset 0 and is told how far the server got. A dropped connection or a
refusal of the message stops the task (``stop``, ``stop_all``); the outbox
keeps the message and its files for the next try.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from mfu_tui.client.outbox import PendingFile
from mfu_tui.protocol import ATTACHMENT_PART_BYTES, AttachmentAck, AttachmentPart


class Uploads:
    """The running uploads, by ``clientMessageId``, and the parts waiting for their ack."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._acks: dict[str, asyncio.Future[int]] = {}

    def start(self, client_message_id: str, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` (upload the message's files, then send it) as that message's task."""
        task = asyncio.create_task(work, name=f"mfu-chat upload {client_message_id}")
        self._tasks[client_message_id] = task
        task.add_done_callback(lambda done: self._forget(client_message_id, done))

    def stop(self, client_message_id: str) -> None:
        """Stop the upload of a message (refused, or its connection is gone)."""
        task = self._tasks.pop(client_message_id, None)
        if task is not None:
            task.cancel()

    def stop_all(self) -> None:
        """Stop every upload: the connection they used is gone."""
        for client_message_id in list(self._tasks):
            self.stop(client_message_id)
        for ack in self._acks.values():
            ack.cancel()
        self._acks.clear()

    def acked(self, frame: AttachmentAck) -> None:
        """Hand an ``attachment_ack`` to the part waiting for it (a late one is dropped)."""
        ack = self._acks.pop(frame.client_attachment_id, None)
        if ack is not None and not ack.done():
            ack.set_result(frame.received)

    async def upload(
        self,
        send: Callable[[AttachmentPart], Awaitable[None]],
        client_message_id: str,
        file: PendingFile,
        data: bytes,
    ) -> None:
        """Send ``data`` in parts from where the server is, until it holds all of it."""
        received = 0
        while True:
            ack: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self._acks[file.client_attachment_id] = ack
            await send(
                AttachmentPart(
                    client_message_id=client_message_id,
                    client_attachment_id=file.client_attachment_id,
                    name=file.name,
                    media_type=file.media_type,
                    size=file.size,
                    offset=received,
                    data=data[received : received + ATTACHMENT_PART_BYTES],
                )
            )
            received = await ack
            if received >= file.size:
                return

    def _forget(self, client_message_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(client_message_id) is task:
            del self._tasks[client_message_id]
