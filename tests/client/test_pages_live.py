"""Long chats come in pages: the newest first, then older ones on request, or all of them for an export."""

from mfu_tui.protocol import Ack, Complete
from tests.support.server import running_server

EXCHANGES = 30  # 60 messages: more than the server's default page of 50


async def test_a_long_chat_pages_back_and_comes_whole_for_an_export(tmp_path, make_client):
    async with running_server(
        tmp_path, demo_words=2, demo_delay_ms=0, messages_per_minute=60_000, message_burst=100
    ) as server:
        client, events = make_client(server.url, server.token())
        await client.connect()
        for n in range(EXCHANGES):
            chat_id = events.of_type(Ack)[0].chat_id if n else None
            await client.send_message(chat_id, f"message {n}")
            await events.wait_for(lambda: len(events.of_type(Complete)) == n + 1)
        chat_id = events.of_type(Ack)[0].chat_id
        newest = await client.get_chat(chat_id)
        older = await client.get_chat(chat_id, before=newest.next_cursor)
        whole = await client.get_whole_chat(chat_id)
        first = await client.get_chat(chat_id, offset=0, limit=4)
        middle = await client.get_chat(chat_id, offset=24, limit=4)
        found = await client.get_chat(chat_id, at=newest.messages[9].id, limit=2)

    assert len(newest.messages) == 50 and newest.messages[-2].content == f"message {EXCHANGES - 1}"
    assert len(older.messages) == 10 and older.next_cursor is None
    assert [m.id for m in whole.messages] == [m.id for m in older.messages + newest.messages]
    assert [m.content for m in whole.messages if m.role == "user"] == [f"message {n}" for n in range(EXCHANGES)]
    # A page asked by position says where it is, as every page does.
    assert newest.offset == 10 and older.offset == 0 and first.offset == 0 and middle.offset == 24
    assert [m.id for m in first.messages] == [m.id for m in whole.messages[:4]]
    assert [m.id for m in middle.messages] == [m.id for m in whole.messages[24:28]]
    assert found.offset == 19 and [m.id for m in found.messages] == [m.id for m in whole.messages[19:21]]
    assert events.errors == []
