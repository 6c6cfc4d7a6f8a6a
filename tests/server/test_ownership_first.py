"""Ownership before anything else: another user's chat id can neither block its owner nor be told apart."""

from __future__ import annotations

from mfu_tui.protocol import Ack, EditMessage, Error, Message
from tests.server.peer import new_id, peer
from tests.server.test_generation import send_message
from tests.support.server import running_server


async def test_messages_naming_someone_elses_chat_never_refuse_its_owners(tmp_path):
    async with running_server(tmp_path, demo_words=2, message_burst=200, messages_per_minute=600) as srv:
        async with peer(srv.url, srv.token("alice")) as alice, peer(srv.url, srv.token("mallory")) as mallory:
            first = await send_message(alice, "my chat")
            await alice.stream(first.reply_id)
            for round_number in range(20):
                # Mallory's frames reach the server just before each of Alice's, naming her chat.
                for _ in range(3):
                    await mallory.send(Message(chat_id=first.chat_id, content="mine now", client_message_id=new_id()))
                ack = await send_message(alice, f"still mine {round_number}", chat_id=first.chat_id)
                await alice.stream(ack.reply_id)
            refusals = [await mallory.expect(Error) for _ in range(60)]
    assert {(e.code, e.message) for e in refusals} == {("not_found", "chat not found")}
    assert not [f for f in alice.received if isinstance(f, Error)]


async def test_a_regenerating_edit_of_someone_elses_chat_never_blocks_its_owner(tmp_path):
    async with running_server(tmp_path, demo_words=2) as srv:
        async with peer(srv.url, srv.token("alice")) as alice, peer(srv.url, srv.token("mallory")) as mallory:
            first = await send_message(alice, "my chat")
            await alice.stream(first.reply_id)
            edit = EditMessage(chat_id=first.chat_id, message_id=first.message_id, content="x", regenerate=True)
            await mallory.send(edit)
            ack = await send_message(alice, "next", chat_id=first.chat_id)
            assert isinstance(ack, Ack)
            assert (await mallory.expect(Error)).code == "not_found"


async def test_an_empty_rate_bucket_answers_not_found_for_a_foreign_chat_as_for_none(tmp_path):
    async with running_server(tmp_path, demo_words=2, message_burst=1, messages_per_minute=0.01) as srv:
        async with peer(srv.url, srv.token("alice")) as alice, peer(srv.url, srv.token("mallory")) as mallory:
            theirs = await send_message(alice, "alice's")
            await send_message(mallory, "spends mallory's one message")
            answers = []
            for chat_id in (theirs.chat_id, "no-such-chat"):
                await mallory.send(Message(chat_id=chat_id, content="probe", client_message_id=new_id()))
                error = await mallory.expect(Error)
                answers.append((error.code, error.message))
    assert answers == [("not_found", "chat not found")] * 2
