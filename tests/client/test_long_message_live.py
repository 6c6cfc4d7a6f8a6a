"""A message too long for one frame comes whole: its rest in parts, asked again after a lost connection."""

import logging

from mfu_tui.client import MessageTextLoaded, Status
from mfu_tui.client.safe_text import clean_text
from mfu_tui.protocol import SENT_MESSAGE_CHARS
from tests.support.long_messages import answer_body, store_answer_body
from tests.support.proxy import FaultProxy
from tests.support.server import running_server


async def test_the_rest_of_a_cut_message_arrives_once_in_order_across_a_lost_connection(tmp_path, make_client, caplog):
    caplog.set_level(logging.INFO, logger="mfu_tui.client")
    text = answer_body()
    chat_id, answer_id = await store_answer_body(tmp_path / "server.sqlite3", text)
    async with running_server(tmp_path) as server, FaultProxy(server.port) as proxy:
        # A short heartbeat: the connection that lost the part is found dead at once.
        client, events = make_client(proxy.url(), server.token(), ping_interval=0.2, ping_timeout=0.5)
        await client.connect()
        page = await client.get_chat(chat_id)
        (cut,) = [message for message in page.messages if message.id == answer_id]
        assert cut.truncated and len(cut.content) == SENT_MESSAGE_CHARS
        # The first part is asked for on a connection that loses everything from now on.
        proxy.drop()
        client.load_whole_texts(chat_id, page.messages)
        client.load_whole_texts(chat_id, page.messages)  # already loading: not asked twice
        await events.wait_status(Status.RECONNECTING)
        proxy.pass_through()
        await events.wait_for(lambda: events.of_type(MessageTextLoaded))
        exported = await client.get_whole_chat(chat_id)

    (loaded,) = events.of_type(MessageTextLoaded)
    assert (loaded.chat_id, loaded.message_id) == (chat_id, answer_id)
    # Every character once, in order, across the parts' edges; the escape character stripped.
    assert loaded.content == clean_text(text) and "\x1b" in text and "\x1b" not in loaded.content
    # The part lost with the first connection was asked for again on the next.
    assert events.opens >= 2 and "GetMessageText not answered (connection lost" in caplog.text
    # An export gets the whole text too, no longer marked cut.
    answer = next(message for message in exported.messages if message.id == answer_id)
    assert answer.content == loaded.content and not answer.truncated
    assert not [error for error in events.errors if error.message_id == answer_id]


async def test_a_cut_message_loaded_once_comes_whole_again_from_memory_when_its_page_comes_again(tmp_path, make_client):
    text = answer_body()
    chat_id, answer_id = await store_answer_body(tmp_path / "server.sqlite3", text)
    async with running_server(tmp_path) as server, FaultProxy(server.port) as proxy:
        client, events = make_client(proxy.url(), server.token())
        await client.connect()
        page = await client.get_chat(chat_id)
        client.load_whole_texts(chat_id, page.messages)
        await events.wait_for(lambda: len(events.of_type(MessageTextLoaded)) == 1)
        # The page comes again (the app loads the open chat after each reconnect) on a connection that
        # loses everything: the whole text comes anyway, without a request.
        proxy.drop()
        client.load_whole_texts(chat_id, page.messages)
        await events.wait_for(lambda: len(events.of_type(MessageTextLoaded)) == 2)
        proxy.pass_through()
    first, again = events.of_type(MessageTextLoaded)
    assert again == first and again.content == clean_text(text)
