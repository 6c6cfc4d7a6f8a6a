"""Edits that survive a connection that dies unnoticed: sent again, applied once, their answer whole."""

import pytest

from mfu_tui.client import Status
from mfu_tui.protocol import Ack, Complete, MessageEdited
from tests.support.proxy import FaultProxy
from tests.support.recorder import assert_delivered_once_in_order
from tests.support.server import running_server


def edited(events, client_edit_id: str) -> list[MessageEdited]:
    return [frame for frame in events.of_type(MessageEdited) if frame.client_edit_id == client_edit_id]


def completed(events, message_id: str) -> bool:
    return any(frame.message_id == message_id for frame in events.of_type(Complete))


@pytest.mark.parametrize("fault", ["edit_lost", "answer_lost"])
async def test_a_regenerating_edit_on_a_dying_connection_is_applied_once(tmp_path, make_client, fault):
    async with running_server(tmp_path, demo_words=30, demo_delay_ms=1) as server, FaultProxy(server.port) as proxy:
        client, events = make_client(proxy.url(), server.token())
        observer, observed = make_client(server.url, server.token(), data_dir=tmp_path / "observer-data")
        await client.connect()
        await observer.connect()
        await client.send_message(None, "first question")
        await events.wait_for(lambda: events.of_type(Ack) and completed(events, events.of_type(Ack)[0].reply_id))
        ack = events.of_type(Ack)[0]
        await observer.subscribe(ack.chat_id)

        if fault == "edit_lost":
            proxy.drop()  # the edit never reaches the server
            client_edit_id = await client.edit_message(ack.chat_id, ack.message_id, "better question", regenerate=True)
        else:
            proxy.stall_reader()  # the edit reaches the server; what it answers does not come back
            client_edit_id = await client.edit_message(ack.chat_id, ack.message_id, "better question", regenerate=True)
            await observed.wait_for(lambda: edited(observed, client_edit_id))
        proxy.reset()  # the connection dies; the client reconnects and sends the edit again
        proxy.pass_through()
        await events.wait_for(lambda: edited(events, client_edit_id))
        reply_id = edited(events, client_edit_id)[0].reply_id
        await events.wait_for(lambda: completed(events, reply_id))
        await observed.wait_for(lambda: completed(observed, reply_id))
        detail = await observer.get_chat(ack.chat_id)

    assert len(edited(events, client_edit_id)) == 1
    assert [frame.reply_id for frame in edited(observed, client_edit_id)] == [reply_id]  # broadcast once
    assert [(m.role, m.content) for m in detail.messages][0] == ("user", "better question")
    assert [m.id for m in detail.messages if m.role == "assistant"] == [reply_id]  # answered once
    assert assert_delivered_once_in_order(events, reply_id) == detail.messages[-1].content
    assert events.errors == []


async def test_an_edit_the_server_refuses_is_not_sent_again(tmp_path, make_client):
    async with running_server(tmp_path, demo_words=5, demo_delay_ms=0) as server, FaultProxy(server.port) as proxy:
        client, events = make_client(proxy.url(), server.token())
        await client.connect()
        await client.send_message(None, "question")
        await events.wait_for(lambda: events.of_type(Ack) and completed(events, events.of_type(Ack)[0].reply_id))
        ack = events.of_type(Ack)[0]
        client_edit_id = await client.edit_message(ack.chat_id, ack.reply_id, "an answer is not editable")
        await events.wait_for(lambda: events.errors)
        proxy.reset()  # a new connection: a pending edit would be sent again on it
        proxy.pass_through()
        await events.wait_for(lambda: events.opens == 2)
        detail = await client.get_chat(ack.chat_id)  # answered after anything sent on opening
    assert [(error.code, error.message_id) for error in events.errors] == [("bad_request", ack.reply_id)]
    assert edited(events, client_edit_id) == []
    assert detail.messages[-1].content != "an answer is not editable"


async def test_an_edit_given_offline_survives_a_restart_of_the_client(tmp_path, make_client):
    data_dir = tmp_path / "client-data"
    async with running_server(tmp_path, demo_words=5, demo_delay_ms=0) as server, FaultProxy(server.port) as proxy:
        client, events = make_client(proxy.url(), server.token(), data_dir=data_dir)
        await client.connect()
        await client.send_message(None, "first question")
        await events.wait_for(lambda: events.of_type(Ack) and completed(events, events.of_type(Ack)[0].reply_id))
        ack = events.of_type(Ack)[0]
        proxy.reset()  # offline
        await events.wait_status(Status.RECONNECTING)
        client_edit_id = await client.edit_message(ack.chat_id, ack.message_id, "better question", regenerate=True)
        await client.close()  # the user quits before the network is back
        proxy.pass_through()

        restarted, later = make_client(proxy.url(), server.token(), data_dir=data_dir)
        await restarted.connect()
        await later.wait_for(lambda: edited(later, client_edit_id))
        reply_id = edited(later, client_edit_id)[0].reply_id
        await later.wait_for(lambda: completed(later, reply_id))
        detail = await restarted.get_chat(ack.chat_id)
    assert [(m.role, m.content) for m in detail.messages][0] == ("user", "better question")
    assert [m.id for m in detail.messages if m.role == "assistant"] == [reply_id]
    assert restarted.outbox.pending_edits() == []
