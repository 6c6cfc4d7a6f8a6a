"""Attachments over the wire: parts, resume after a reconnect, refusals, and what reaches the model."""

from __future__ import annotations

import base64

from mfu_tui.protocol import (
    ATTACHMENT_PART_BYTES,
    Ack,
    AttachmentAck,
    AttachmentInfo,
    AttachmentPart,
    Error,
    Message,
    UserMessage,
)
from mfu_tui.server.providers.demo import demo_answer
from tests.server.fake_openai import FakeOpenAI
from tests.server.peer import Peer, peer, text_of
from tests.server.test_generation import get_chat, send_message
from tests.server.test_openai_provider import openai_settings
from tests.support.server import running_server

#: A PNG's signature and a little more: the server does not look inside images.
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


async def send_part(client: Peer, key: str, data: bytes, offset: int, **file) -> int | Error:
    """Send bytes ``offset``.. of ``data`` as one part; the ``received`` of its ack, or the error."""
    message_id = file.pop("client_message_id", "m1")
    name, kind = file.pop("name", "notes.txt"), file.pop("media_type", "text/plain")
    piece = data[offset : offset + ATTACHMENT_PART_BYTES]
    await client.send(
        AttachmentPart(
            client_message_id=message_id,
            client_attachment_id=key,
            name=name,
            media_type=kind,
            size=file.pop("size", len(data)),
            offset=offset,
            data=piece,
        )
    )
    while True:
        frame = await client.recv()
        if isinstance(frame, AttachmentAck) and frame.client_attachment_id == key:
            return frame.received
        if isinstance(frame, Error) and frame.client_message_id == message_id:
            return frame


async def upload(client: Peer, key: str, data: bytes, **file) -> None:
    received = 0
    while True:
        received = await send_part(client, key, data, received, **dict(file))
        assert isinstance(received, int), received
        if received == len(data):
            return


async def refusal(client: Peer, client_message_id: str) -> Error:
    return await client.expect(Error, client_message_id=client_message_id)


async def test_a_file_in_parts_with_a_repeat_and_a_gap_arrives_whole_and_the_answer_names_it(tmp_path):
    text = ("line of the notes\n" * 6000).encode()  # 108,000 bytes: three parts
    async with running_server(tmp_path, demo_words=400) as srv:
        async with peer(srv.url, srv.token()) as alice:
            assert await send_part(alice, "a1", text, 0) == ATTACHMENT_PART_BYTES
            # The same part again stores nothing; a part past the end is told where to start.
            assert await send_part(alice, "a1", text, 0) == ATTACHMENT_PART_BYTES
            assert await send_part(alice, "a1", text, 2 * ATTACHMENT_PART_BYTES) == ATTACHMENT_PART_BYTES
            assert await send_part(alice, "a1", text, ATTACHMENT_PART_BYTES) == 2 * ATTACHMENT_PART_BYTES
            assert await send_part(alice, "a1", text, 2 * ATTACHMENT_PART_BYTES) == len(text)
            ack = await send_message(alice, "what is in it?", client_message_id="m1", attachments=["a1"])
            shown = await alice.expect(UserMessage, client_message_id="m1")
            chunks, _ = await alice.stream(ack.reply_id)
            detail = await get_chat(alice, ack.chat_id)
    chip = AttachmentInfo(name="notes.txt", media_type="text/plain", size=len(text))
    assert shown.attachments == [chip] and shown.content == "what is in it?"
    assert detail.messages[0].attachments == [chip] and detail.messages[0].content == "what is in it?"
    assert text_of(chunks) == demo_answer("what is in it?", 400, [chip])
    assert "Attached: notes.txt (text/plain, 108000 bytes)" in text_of(chunks)


async def test_an_upload_cut_by_a_reconnect_goes_on_from_what_the_server_received(tmp_path):
    data = PNG * 50  # 64,000 bytes: two parts
    async with running_server(tmp_path) as srv:
        async with peer(srv.url, srv.token()) as first:
            assert await send_part(first, "a1", data, 0, name="cat.png", media_type="image/png") == 46080
        async with peer(srv.url, srv.token()) as second:
            # A client that does not know how far it got sends from the start: told where to go on.
            assert await send_part(second, "a1", data, 0, name="cat.png", media_type="image/png") == 46080
            assert await send_part(second, "a1", data, 46080, name="cat.png", media_type="image/png") == len(data)
            ack = await send_message(second, "see", client_message_id="m1", attachments=["a1"])
            # The same message resent is acked again, starting nothing.
            await second.send(Message(chat_id=None, client_message_id="m1", content="see", attachments=["a1"]))
            again = await second.expect(Ack, client_message_id="m1")
            detail = await get_chat(second, ack.chat_id)
    assert again == ack
    assert detail.messages[0].attachments == [AttachmentInfo(name="cat.png", media_type="image/png", size=len(data))]


async def test_files_over_the_bound_are_refused_with_too_large_naming_the_message(tmp_path):
    async with running_server(tmp_path, max_attachment_bytes=1000) as srv:
        async with peer(srv.url, srv.token()) as alice:
            big = await send_part(alice, "a1", b"x" * 1001, 0, client_message_id="m1")
            await upload(alice, "a2", b"y" * 600, client_message_id="m2")
            await upload(alice, "a3", b"z" * 600, client_message_id="m2")
            await alice.send(Message(chat_id=None, client_message_id="m2", content="two", attachments=["a2", "a3"]))
            together = await refusal(alice, "m2")
            # Unsent files hold 1,200 bytes: one of 900 more would pass twice the bound.
            unsent = await send_part(alice, "a4", b"w" * 900, 0, client_message_id="m3")
    assert isinstance(big, Error) and big.code == "too_large"
    assert big.message == "'notes.txt' is 1001 bytes: a message may carry 1000 bytes"
    assert together.code == "too_large" and "hold 1.2 KiB: at most 1000 bytes" in together.message
    assert isinstance(unsent, Error) and unsent.code == "too_large" and "send those messages first" in unsent.message


async def test_another_users_incomplete_or_sent_file_is_refused_and_nothing_is_stored(tmp_path):
    async with running_server(tmp_path) as srv:
        async with peer(srv.url, srv.token("bob")) as bob:
            await upload(bob, "bobs", b"bob's secret")
        async with peer(srv.url, srv.token()) as alice:
            await alice.send(Message(chat_id=None, client_message_id="m1", content="x", attachments=["bobs"]))
            foreign = await refusal(alice, "m1")
            await send_part(alice, "half", b"0123456789" * 5000, 0)
            await alice.send(Message(chat_id=None, client_message_id="m2", content="x", attachments=["half"]))
            incomplete = await refusal(alice, "m2")
            await upload(alice, "once", b"one file")
            await send_message(alice, "first", client_message_id="m3", attachments=["once"])
            await alice.send(Message(chat_id=None, client_message_id="m4", content="x", attachments=["once"]))
            twice = await refusal(alice, "m4")
            mismatch = await send_part(alice, "once", b"one file", 0, name="other.txt")
        stored = [await srv.server.store.find_exchange("alice", key) for key in ("m1", "m2", "m4")]
    assert (foreign.code, foreign.message) == ("not_found", "attachment 'bobs' not found")
    assert incomplete.code == "bad_request" and "is not whole: 46080 of 50000 bytes received" in incomplete.message
    assert (twice.code, twice.message) == ("bad_request", "'notes.txt' was sent with another message")
    assert isinstance(mismatch, Error) and mismatch.code == "bad_request"
    assert stored == [None, None, None]


async def test_a_type_the_models_cannot_take_is_refused_in_words(tmp_path):
    async with running_server(tmp_path) as srv:
        async with peer(srv.url, srv.token()) as alice:
            frame = {
                "type": "attachment_part",
                "clientMessageId": "m1",
                "clientAttachmentId": "a1",
                "name": "scan.bmp",
                "mediaType": "image/bmp",
                "size": 2,
                "offset": 0,
                "data": "Qk0=",
            }
            await alice.send(frame)
            refused = await refusal(alice, "m1")
    assert refused.code == "bad_request"
    assert refused.message.startswith("'mediaType' 'image/bmp' cannot be sent to a model")


async def test_files_count_against_the_storage_quota(tmp_path):
    async with running_server(tmp_path, storage_per_user_mib=0.05) as srv:  # 52,428 bytes
        async with peer(srv.url, srv.token()) as alice:
            data = b"q" * 100_000
            assert await send_part(alice, "a1", data, 0) == 46080
            assert await send_part(alice, "a1", data, 46080) == 92160
            over = await send_part(alice, "a1", data, 92160)
    assert isinstance(over, Error) and over.code == "quota_exceeded"


async def test_an_image_reaches_the_upstream_as_an_image_url_part_and_a_text_file_as_a_fenced_block(tmp_path):
    notes = b"def f():\n    return '```'\n"
    async with FakeOpenAI() as fake, running_server(tmp_path, **openai_settings(fake)) as srv:
        async with peer(srv.url, srv.token()) as alice:
            await upload(alice, "t1", notes, name="f.py")
            await upload(alice, "i1", PNG, name="cat.png", media_type="image/png")
            ack = await send_message(alice, "explain", client_message_id="m1", attachments=["t1", "i1"])
            await alice.stream(ack.reply_id)
            again = await send_message(alice, "and more?", chat_id=ack.chat_id)
            await alice.stream(again.reply_id)
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()}}
    text = "explain\n\nf.py:\n````\ndef f():\n    return '```'\n````"
    assert fake.requests[0]["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": text}, image]},
    ]
    # The files stay with their message for the later answers of the chat.
    assert fake.requests[1]["messages"][0] == fake.requests[0]["messages"][0]
    assert fake.requests[1]["messages"][2] == {"role": "user", "content": "and more?"}
