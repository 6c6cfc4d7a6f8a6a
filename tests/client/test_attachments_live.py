"""Files sent with messages by the real client to the real server: copied, uploaded, resumed, refused."""

from __future__ import annotations

from mfu_tui.client import Status
from mfu_tui.client.attachments import read_attachment
from mfu_tui.protocol import ATTACHMENT_PART_BYTES, Ack, AttachmentInfo, AttachmentPart, Complete
from tests.support.proxy import FaultProxy
from tests.support.server import running_server


def acked(events, client_message_id: str) -> bool:
    return any(ack.client_message_id == client_message_id for ack in events.of_type(Ack))


async def test_a_file_is_sent_as_attached_even_if_it_changes_and_its_copy_goes_with_the_ack(tmp_path, make_client):
    notes = tmp_path / "notes.md"
    notes.write_text("# My notes\n")
    async with running_server(tmp_path, demo_words=300) as server:
        client, events = make_client(server.url, server.token())
        await client.connect()
        attached = read_attachment(notes)
        client_message_id = await client.send_message(None, "summarise", attachments=[attached])
        notes.write_text("changed after attaching")
        # Read before the upload task runs: send_message returns once the copy and the record are on disk.
        kept = [
            (copy, copy.read_text(), copy.stat().st_mode)
            for copy in (tmp_path / "client-data" / "attachments").iterdir()
        ]
        await events.wait_for(lambda: acked(events, client_message_id) and events.of_type(Complete))
        chat_id = events.of_type(Ack)[0].chat_id
        detail = await client.get_chat(chat_id)
    ((copy, text, mode),) = kept
    assert text == "# My notes\n" and mode & 0o077 == 0
    assert not copy.exists()  # done: the copy went with the message
    assert detail.messages[0].attachments == [AttachmentInfo(name="notes.md", media_type="text/plain", size=11)]
    assert "Attached: notes.md (text/plain, 11 bytes)" in detail.messages[1].content
    assert len(client.outbox) == 0


async def test_an_upload_cut_by_the_network_goes_on_from_what_the_server_received(tmp_path, make_client):
    image = tmp_path / "photo.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 1000)  # 256,008 bytes: six parts
    offsets: list[int] = []
    async with running_server(tmp_path, demo_words=5) as server, FaultProxy(server.port) as proxy:
        handlers = server.server.handlers
        store_part = handlers._table[AttachmentPart]

        async def watched(sender, frame):
            offsets.append(frame.offset)
            await store_part(sender, frame)
            if len(offsets) == 3:  # the third part is stored: the network goes down before its ack
                proxy.reset()

        handlers._table[AttachmentPart] = watched
        client, events = make_client(proxy.url(), server.token())
        await client.connect()
        client_message_id = await client.send_message(None, "look", attachments=[read_attachment(image)])
        await events.wait_status(Status.RECONNECTING)
        proxy.pass_through()
        await events.wait_for(lambda: acked(events, client_message_id))
        detail = await client.get_chat(events.of_type(Ack)[0].chat_id)
    part = ATTACHMENT_PART_BYTES
    # After the reconnect the first part goes again, is told 3 parts are there, and the rest follows.
    assert offsets == [0, part, 2 * part, 0, 3 * part, 4 * part, 5 * part]
    assert detail.messages[0].attachments == [AttachmentInfo(name="photo.png", media_type="image/png", size=256008)]


async def test_a_file_the_server_refuses_gives_the_message_back_and_empties_the_outbox(tmp_path, make_client):
    big = tmp_path / "big.txt"
    big.write_text("x" * 2000)
    async with running_server(tmp_path, max_attachment_bytes=1000) as server:
        client, events = make_client(server.url, server.token())
        await client.connect()
        client_message_id = await client.send_message(None, "too much", attachments=[read_attachment(big)])
        await events.wait_for(lambda: any(e.client_message_id == client_message_id for e in events.errors))
    (error,) = events.errors
    assert error.code == "too_large" and error.message == "'big.txt' is 2.0 KiB: a message may carry 1000 bytes"
    assert len(client.outbox) == 0
    assert list((tmp_path / "client-data" / "attachments").iterdir()) == []
