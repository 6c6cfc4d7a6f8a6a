"""Importing through the real server with the real client: once per conversation, in parts, within the limits."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from mfu_tui.client import ChatClient, RequestError
from mfu_tui.client.import_parts import import_entries
from mfu_tui.importing.chatgpt import Conversation, read_export
from mfu_tui.protocol import (
    MAX_FRAME_BYTES,
    ChatUpdated,
    ImportChat,
    ImportedMessage,
    ImportResult,
    Result,
    decode_result,
)
from tests.importing.export_fixture import write_export
from tests.server.peer import peer
from tests.support.proxy import FaultProxy
from tests.support.server import running_server

WHEN = datetime(2023, 3, 1, 12, 0, tzinfo=UTC)


async def import_all(client: ChatClient, conversations: list[Conversation]) -> list[ImportResult]:
    return [await client.import_chat(c.key, c.title, c.created_at, c.updated_at, c.messages) for c in conversations]


async def test_an_export_imported_twice_through_the_server_creates_nothing_the_second_time(tmp_path):
    conversations = read_export(write_export(tmp_path / "conversations.json")).conversations
    async with running_server(tmp_path) as srv:
        client = ChatClient(srv.url, srv.token(), data_dir=tmp_path / "client")
        await client.connect()
        try:
            first = await import_all(client, conversations)
            listed = await client.list_chats()
            again = await import_all(client, conversations)
            relisted = await client.list_chats()
            branched = await client.get_whole_chat(first[1].chat.id)
        finally:
            await client.close()
    assert [(r.created, r.added) for r in first] == [(True, 4), (True, 2), (True, 2)]
    assert [(r.created, r.added) for r in again] == [(False, 0), (False, 0), (False, 0)]
    assert [r.chat.id for r in again] == [r.chat.id for r in first]
    assert relisted == listed and len(listed.chats) == 3
    # Newest first by the export's update times: the chats keep their place in history.
    assert [chat.title for chat in listed.chats] == ["What is in this chart?", "Rust lifetimes", "Sourdough starter"]
    assert [(m.role, m.content, m.status) for m in branched.messages] == [
        ("user", "What is a lifetime in Rust?", "complete"),
        ("assistant", "How long a reference is valid.", "complete"),
    ]
    assert branched.messages[0].created_at == conversations[1].messages[0].created_at


async def test_a_conversation_larger_than_a_frame_goes_in_parts_and_a_cut_short_one_is_finished(tmp_path):
    answer_body = "".join(f"line {n}: a long answer\n" for n in range(3000))  # ~70,000 characters
    messages = [
        ImportedMessage(role="user", content="Write me something long", created_at=WHEN),
        ImportedMessage(role="assistant", content=answer_body, created_at=WHEN),
        ImportedMessage(role="user", content="Thanks!", created_at=WHEN),
    ]
    entries = import_entries(messages)
    async with running_server(tmp_path) as srv:
        # Cut short: an earlier run sent only the first part, then the connection was gone.
        async with peer(srv.url, srv.token()) as raw:
            part = ImportChat(
                request_id="r1", import_key="chatgpt:long", title="Long", created_at=WHEN, updated_at=WHEN,
                first=0, total=len(entries), messages=entries[:2],
            )  # fmt: skip
            await raw.send(part)
            answer = await raw.expect(Result, request_id="r1")
            await raw.send(part)  # the same part again: nothing new
            repeated = await raw.expect(Result, request_id="r1")
        client = ChatClient(srv.url, srv.token(), data_dir=tmp_path / "client")
        await client.connect()
        try:
            finished = await client.import_chat("chatgpt:long", "Long", WHEN, WHEN, messages)
            whole = await client.get_whole_chat(finished.chat.id)
        finally:
            await client.close()
    assert len(answer_body.encode()) > MAX_FRAME_BYTES and len(entries) == 12  # the answer in 10 entries
    assert decode_result(answer.data, ImportResult).added == 2
    assert decode_result(repeated.data, ImportResult).added == 0
    assert (finished.created, finished.stored, finished.added) == (False, 12, 10)
    assert [m.content for m in whole.messages] == ["Write me something long", answer_body, "Thanks!"]


async def test_a_thousand_conversations_are_not_held_up_by_the_rate_limit_of_messages(tmp_path):
    async with running_server(tmp_path, messages_per_minute=1, message_burst=1) as srv:
        client = ChatClient(srv.url, srv.token(), data_dir=tmp_path / "client")
        await client.connect()
        try:
            results = [
                await client.import_chat(
                    f"chatgpt:{n}", f"Chat {n}", WHEN, WHEN, [ImportedMessage(role="user", content=f"question {n}")]
                )
                for n in range(1000)
            ]
            page = await client.list_chats(limit=200)
        finally:
            await client.close()
    assert all(result.created for result in results)
    assert len(page.chats) == 200 and page.next_cursor is not None


async def test_the_storage_quota_applies_to_what_an_import_adds_only(tmp_path):
    big = [ImportedMessage(role="user", content="x" * 2000, created_at=WHEN)]
    async with running_server(tmp_path, storage_per_user_mib=1000 / 1024 / 1024) as srv:  # 1,000 bytes
        client = ChatClient(srv.url, srv.token(), data_dir=tmp_path / "client")
        await client.connect()
        try:
            first = await client.import_chat("chatgpt:a", "A", WHEN, WHEN, big)  # under the quota when it came
            with pytest.raises(RequestError) as refused:
                await client.import_chat("chatgpt:b", "B", WHEN, WHEN, big)
            again = await client.import_chat("chatgpt:a", "A", WHEN, WHEN, big)  # adds nothing: answered
        finally:
            await client.close()
    assert first.created and not again.created and again.added == 0
    assert refused.value.code == "quota_exceeded" and "storage quota reached" in refused.value.message


async def test_an_import_goes_on_after_its_connection_is_reset_between_parts(tmp_path, caplog):
    caplog.set_level(logging.INFO, "mfu_tui.client")
    answer_body = "".join(f"paragraph {n} of a long answer\n" for n in range(8000))  # ~5 frames
    messages = [ImportedMessage(role="user", content="Go on", created_at=WHEN)]
    messages.append(ImportedMessage(role="assistant", content=answer_body, created_at=WHEN))
    async with running_server(tmp_path) as srv, FaultProxy(srv.port) as proxy:
        client = ChatClient(proxy.url(), srv.token(), data_dir=tmp_path / "client")

        def cut_once(frame: object) -> None:
            # The first part is stored (its chat_updated came): the next one is sent, or about to be.
            if isinstance(frame, ChatUpdated) and proxy.accepted == 1:
                proxy.reset()
                proxy.pass_through()

        client.on_message(cut_once)
        await client.connect()
        try:
            result = await client.import_chat("chatgpt:reset", "Reset", WHEN, WHEN, messages)
            whole = await client.get_whole_chat(result.chat.id)
        finally:
            await client.close()
    assert proxy.accepted >= 2  # it did reconnect, and sent the part whose answer it lost again
    assert any(record.getMessage().startswith("ImportChat not answered") for record in caplog.records)
    assert result.created and result.stored == len(import_entries(messages))
    assert [m.content for m in whole.messages] == ["Go on", answer_body]
