"""The seed's browser client's frames, exactly as it sends them, answered as it expects.

The seed sends ``message`` with the whole history, no ``clientMessageId`` and
``chatId: ""`` for a new chat; it tells other tabs about an edit with a
``message_edited`` frame of its own; it rejoins a chat with ``?chat=``. The
Node test (tests/seed_client) drives the real page's behaviour end to end;
these tests pin each rule down with raw frames.
"""

from __future__ import annotations

from mfu_tui.protocol import (
    Ack,
    ChatCreated,
    Chunk,
    Complete,
    Error,
    Message,
    MessageEdited,
    Ping,
    Pong,
    Result,
)
from tests.server.peer import new_id, peer, text_of
from tests.server.test_generation import get_chat, send_message
from tests.support.server import running_server

SLOW = {"demo_words": 5000, "demo_delay_ms": 2.0}


def seed_message(chat_id: str, *turns: str, model_id: str = "demo") -> dict[str, object]:
    """The seed page's ``message``: every turn so far, alternating user and assistant, the new one last."""
    roles = ["user", "assistant"] * len(turns)
    history = [{"role": role, "content": text} for role, text in zip(roles, turns, strict=False)]
    return {"type": "message", "chatId": chat_id, "messages": history, "modelId": model_id}


async def test_a_seed_message_without_client_id_to_an_empty_chat_id_creates_a_chat_and_streams(tmp_path):
    async with running_server(tmp_path) as srv:
        async with peer(srv.url, srv.token(), header=False) as page:
            await page.send(seed_message("", "Hello there"))
            ack = await page.expect(Ack)
            assert ack.client_message_id.startswith("server-")
            created = await page.expect(ChatCreated)
            assert created.chat_id == ack.chat_id
            chunks, end = await page.stream(ack.reply_id)
            assert isinstance(end, Complete) and end.seq == len(chunks)
            # No idempotency is promised without a clientMessageId: the same frame again is a new message.
            await page.send(seed_message(ack.chat_id, "Hello there", text_of(chunks), "Hello there"))
            again = await page.expect(Ack, chat_id=ack.chat_id)
            assert again.message_id != ack.message_id
            await page.stream(again.reply_id)
            detail = await get_chat(page, ack.chat_id)
    assert [m.content for m in detail.messages if m.role == "user"] == ["Hello there", "Hello there"]


async def test_the_seeds_whole_history_may_exceed_64_kib(tmp_path):
    async with running_server(tmp_path, demo_words=3) as srv:
        async with peer(srv.url, srv.token(), header=False) as page:
            old_turns = ["x" * 60_000] * 8  # about 480 KB of history resent with the message
            await page.send(seed_message("", *old_turns, "and the new question"))
            ack = await page.expect(Ack)
            await page.stream(ack.reply_id)
            detail = await get_chat(page, ack.chat_id)
    # Only the last user entry is stored: the server's history is the truth, never the array.
    assert [m.content for m in detail.messages if m.role == "user"] == ["and the new question"]


async def test_a_refused_message_names_its_client_message_id(tmp_path):
    async with running_server(tmp_path) as srv:
        async with peer(srv.url, srv.token()) as alice:
            await alice.send({"type": "message", "chatId": 5, "clientMessageId": "m-17", "content": "hi"})
            error = await alice.expect(Error)
    assert (error.code, error.client_message_id) == ("bad_request", "m-17")
    assert error.message == "'chatId' must be a string or null, got int"


async def test_an_unknown_model_is_refused_with_the_models_there_are_and_nothing_is_stored(tmp_path):
    async with running_server(tmp_path) as srv:
        async with peer(srv.url, srv.token()) as alice:
            client_message_id = new_id()
            await alice.send(Message(chat_id=None, content="hi", client_message_id=client_message_id, model_id="1"))
            error = await alice.expect(Error)
            assert (error.code, error.client_message_id) == ("bad_request", client_message_id)
            assert error.message == "unknown model '1': this server has demo"
            await alice.send({"type": "list_chats", "requestId": "r1"})
            listed = await alice.expect(Result, request_id="r1")
    assert listed.data["chats"] == []


async def test_the_pages_edit_notice_is_relayed_to_the_users_other_tabs_only(tmp_path):
    async with running_server(tmp_path, demo_words=3) as srv:
        async with (
            peer(srv.url, srv.token("alice"), header=False) as tab1,
            peer(srv.url, srv.token("alice"), header=False) as tab2,
            peer(srv.url, srv.token("bob"), header=False) as bob,
        ):
            ack = await send_message(tab1, "first")
            await tab1.stream(ack.reply_id)
            notice = {"type": "message_edited", "chatId": ack.chat_id, "messageId": 1764866400123, "content": "fixed"}
            await tab1.send(notice)
            relayed = await tab2.expect(MessageEdited)
            assert (relayed.chat_id, relayed.message_id, relayed.content) == (ack.chat_id, "1764866400123", "fixed")
            # Nothing stored has the page's id: the chat is unchanged.
            detail = await get_chat(tab1, ack.chat_id)
            assert [m.content for m in detail.messages if m.role == "user"] == ["first"]
            # Bob's notice about Alice's chat is refused before anything else, and she hears nothing of it.
            await bob.send(notice)
            assert (await bob.expect(Error)).code == "not_found"
            await tab2.send(Ping(ts=9))
            assert await tab2.expect(Pong) == Pong(ts=9)
            assert [f for f in tab2.received if isinstance(f, MessageEdited)] == [relayed]


async def test_the_pages_edit_of_a_stored_message_is_stored(tmp_path):
    """A page that loaded the chat over REST knows the server's ids: its edit is a real edit."""
    async with running_server(tmp_path, demo_words=3) as srv:
        async with peer(srv.url, srv.token(), header=False) as page:
            ack = await send_message(page, "frist")
            await page.stream(ack.reply_id)
            await page.send(
                {"type": "message_edited", "chatId": ack.chat_id, "messageId": ack.message_id, "content": "first"}
            )
            edited = await page.expect(MessageEdited, message_id=ack.message_id)
            assert edited.content == "first" and edited.reply_id is None
            detail = await get_chat(page, ack.chat_id)
    assert [m.content for m in detail.messages if m.role == "user"] == ["first"]
    assert detail.messages[0].edited_at is not None


async def test_rejoining_with_chat_learns_how_the_last_answer_ended(tmp_path):
    async with running_server(tmp_path, demo_words=3) as srv:
        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, "hello")
            _, end = await alice.stream(ack.reply_id)
        async with peer(srv.url, srv.token(), header=False, query=f"chat={ack.chat_id}") as page:
            assert await page.expect(Complete) == end


async def test_an_answer_interrupted_by_a_restart_is_told_to_a_page_rejoining_with_chat(tmp_path):
    secret, db = "s" * 48, tmp_path / "chat.sqlite3"
    async with running_server(tmp_path, secret=secret, db_path=db, **SLOW) as srv:
        token = srv.token()
        async with peer(srv.url, token, header=False) as page:
            await page.send(seed_message("", "a long one"))
            ack = await page.expect(Ack)
            await page.expect(Chunk, message_id=ack.reply_id)
        # Stopping the server ends the answer as interrupted, with nobody left to tell.
    async with running_server(tmp_path, secret=secret, db_path=db) as srv:
        async with peer(srv.url, token, header=False, query=f"chat={ack.chat_id}") as page:
            end = await page.expect(Complete)
    assert (end.message_id, end.finish_reason) == (ack.reply_id, "interrupted")
