"""Edit, the chat list, models, broadcasts to every connection of a user, and isolation."""

from __future__ import annotations

import asyncio

from mfu_tui.protocol import (
    Ack,
    Cancel,
    Cancelled,
    ChatDetail,
    ChatPage,
    ChatParams,
    ChatSettings,
    ChatSummary,
    ChatUpdated,
    Chunk,
    Complete,
    DeleteChat,
    EditMessage,
    Error,
    GetChat,
    ListChats,
    ListModels,
    Message,
    MessageEdited,
    ModelList,
    Ping,
    Pong,
    RenameChat,
    Result,
    Resume,
    Search,
    SearchResults,
    Subscribe,
    UpdateChat,
    UpdatedChat,
    decode_result,
)
from mfu_tui.server.providers.demo import demo_answer
from mfu_tui.server.store.rows import make_title
from tests.server.peer import Peer, new_id, peer, text_of
from tests.server.test_generation import SLOW, get_chat, send_message
from tests.support.server import running_server


async def request(client: Peer, frame_type: type, **fields) -> Result | Error:
    request_id = new_id()
    await client.send(frame_type(request_id=request_id, **fields))
    while True:
        frame = await client.recv()
        if isinstance(frame, (Result, Error)) and frame.request_id == request_id:
            return frame


async def new_chat(client: Peer, content: str = "hello") -> Ack:
    ack = await send_message(client, content)
    await client.stream(ack.reply_id)
    return ack


async def test_list_chats_pages_newest_first(tmp_path):
    async with running_server(tmp_path, demo_words=3) as srv:
        async with peer(srv.url, srv.token()) as alice:
            acks = [await new_chat(alice, f"chat {i}") for i in range(5)]
            first = await request(alice, ListChats, limit=2)
            page1 = decode_result(first.data, ChatPage)
            second = await request(alice, ListChats, limit=2, before=page1.next_cursor)
            page2 = decode_result(second.data, ChatPage)
            third = await request(alice, ListChats, limit=2, before=page2.next_cursor)
            page3 = decode_result(third.data, ChatPage)
            everything = decode_result((await request(alice, ListChats)).data, ChatPage)
            bad = await request(alice, ListChats, before="nonsense")
    listed = [chat.id for page in (page1, page2, page3) for chat in page.chats]
    assert listed == [ack.chat_id for ack in reversed(acks)]
    assert page3.next_cursor is None
    assert [chat.id for chat in everything.chats] == listed
    assert page1.chats[0].title == "chat 4" and page1.chats[0].message_count == 2
    assert page1.chats[0].model_id is None or isinstance(page1.chats[0].model_id, str)
    assert isinstance(bad, Error) and bad.code == "bad_request"


async def test_get_chat_pages_back_from_the_newest_messages(tmp_path):
    async with running_server(tmp_path, demo_words=3, demo_delay_ms=0) as srv:
        async with peer(srv.url, srv.token()) as alice:
            ack = await new_chat(alice, "message 0")
            for n in range(1, 3):
                following = await send_message(alice, f"message {n}", chat_id=ack.chat_id)
                await alice.stream(following.reply_id)
            newest = decode_result((await request(alice, GetChat, chat_id=ack.chat_id, limit=4)).data, ChatDetail)
            older = await request(alice, GetChat, chat_id=ack.chat_id, limit=4, before=newest.next_cursor)
            oldest = decode_result(older.data, ChatDetail)
            bad = await request(alice, GetChat, chat_id=ack.chat_id, before="not-a-message")
            by_offset = decode_result((await request(alice, GetChat, chat_id=ack.chat_id, offset=2)).data, ChatDetail)
            bad_at = await request(alice, GetChat, chat_id=ack.chat_id, at="not-a-message")
    assert by_offset.offset == 2 and [m.content for m in by_offset.messages if m.role == "user"] == [
        "message 1",
        "message 2",
    ]
    assert isinstance(bad_at, Error) and bad_at.code == "bad_request" and "'at'" in bad_at.message
    assert [m.content for m in newest.messages if m.role == "user"] == ["message 1", "message 2"]
    assert [m.content for m in oldest.messages if m.role == "user"] == ["message 0"]
    assert newest.next_cursor == newest.messages[0].id and oldest.next_cursor is None
    assert isinstance(bad, Error) and bad.code == "bad_request" and "'before'" in bad.message


async def test_rename_and_delete_answer_and_broadcast_to_every_connection(tmp_path):
    async with running_server(tmp_path, demo_words=3) as srv:
        async with peer(srv.url, srv.token()) as tab1, peer(srv.url, srv.token()) as tab2:
            ack = await new_chat(tab1)
            renamed = await request(tab1, RenameChat, chat_id=ack.chat_id, title="Renamed")
            summary = decode_result(renamed.data, ChatSummary)
            assert summary.title == "Renamed"
            for tab in (tab1, tab2):
                update = await tab.expect(ChatUpdated, deleted=False)
                while update.chat.title != "Renamed":
                    update = await tab.expect(ChatUpdated, deleted=False)
                assert update.chat == summary
            deleted = await request(tab1, DeleteChat, chat_id=ack.chat_id)
            assert deleted.data == {"chatId": ack.chat_id}
            for tab in (tab1, tab2):
                gone = await tab.expect(ChatUpdated, deleted=True)
                assert gone.chat.id == ack.chat_id
            missing = await request(tab1, GetChat, chat_id=ack.chat_id)
            assert isinstance(missing, Error) and missing.code == "not_found"
            page = decode_result((await request(tab2, ListChats)).data, ChatPage)
            assert page.chats == []


async def test_two_connections_of_one_user_both_get_chat_updated_and_message_edited(tmp_path):
    async with running_server(tmp_path, demo_words=3) as srv:
        async with peer(srv.url, srv.token()) as tab1, peer(srv.url, srv.token()) as tab2:
            ack = await send_message(tab1, "first version")
            created = await tab2.expect(ChatUpdated)
            assert created.chat.id == ack.chat_id
            await tab1.stream(ack.reply_id)
            await tab1.send(EditMessage(chat_id=ack.chat_id, message_id=ack.message_id, content="second version"))
            for tab in (tab1, tab2):
                edited = await tab.expect(MessageEdited)
                assert (edited.chat_id, edited.message_id, edited.content) == (
                    ack.chat_id,
                    ack.message_id,
                    "second version",
                )
                await tab.expect(ChatUpdated)
            detail = await get_chat(tab2, ack.chat_id)
    assert detail.messages[0].content == "second version"
    assert detail.messages[0].edited_at is not None
    assert len(detail.messages) == 2  # without regenerate the answer stays


async def test_edit_with_regenerate_drops_what_follows_and_answers_again(tmp_path):
    async with running_server(tmp_path, demo_words=20) as srv:
        async with peer(srv.url, srv.token()) as alice:
            first = await new_chat(alice, "question one")
            second = await send_message(alice, "question two", chat_id=first.chat_id)
            await alice.stream(second.reply_id)
            await alice.send(
                EditMessage(
                    chat_id=first.chat_id, message_id=first.message_id, content="better question", regenerate=True
                )
            )
            edited = await alice.expect(MessageEdited, message_id=first.message_id)
            chunk = await alice.expect(Chunk, seq=1)
            assert edited.reply_id == chunk.message_id  # the client learns the new answer before it streams
            chunks, end = await alice.stream(chunk.message_id)
            assert isinstance(end, Complete)
            detail = await get_chat(alice, first.chat_id)
    assert [(m.role, m.content) for m in detail.messages] == [
        ("user", "better question"),
        ("assistant", demo_answer("better question", 20)),
    ]
    assert detail.messages[1].id == chunk.message_id not in (first.reply_id, second.reply_id)
    assert text_of([chunk, *chunks]) == detail.messages[1].content
    assert detail.chat.message_count == 2


async def test_assistant_messages_cannot_be_edited(tmp_path):
    async with running_server(tmp_path, demo_words=3) as srv:
        async with peer(srv.url, srv.token()) as alice:
            ack = await new_chat(alice)
            await alice.send(EditMessage(chat_id=ack.chat_id, message_id=ack.reply_id, content="forged"))
            error = await alice.expect(Error)
    assert error.code == "bad_request" and error.message_id == ack.reply_id


async def test_list_models_names_the_demo_model(tmp_path):
    async with running_server(tmp_path) as srv:
        async with peer(srv.url, srv.token()) as alice:
            result = await request(alice, ListModels)
    models = decode_result(result.data, ModelList).models
    assert [(m.id, m.provider, m.default) for m in models] == [("demo", "demo", True)]


async def test_another_users_chat_is_not_found_for_every_frame(tmp_path):
    async with running_server(tmp_path, **SLOW) as srv:
        async with peer(srv.url, srv.token("alice")) as alice, peer(srv.url, srv.token("mallory")) as mallory:
            ack = await send_message(alice, "my secret chat")
            await alice.expect(Chunk, message_id=ack.reply_id)
            chat, message = ack.chat_id, ack.message_id
            attempts = [
                Message(chat_id=chat, content="hi", client_message_id=new_id()),
                Cancel(chat_id=chat),
                Cancel(chat_id=chat, message_id=ack.reply_id),
                Resume(chat_id=chat, message_id=ack.reply_id, last_seq=0),
                EditMessage(chat_id=chat, message_id=message, content="pwned"),
                EditMessage(chat_id=chat, message_id=message, content="pwned", regenerate=True),
                Subscribe(chat_id=chat),
            ]
            for frame in attempts:
                await mallory.send(frame)
                error = await mallory.expect(Error)
                assert error.code == "not_found", frame
            for frame_type, fields in (
                (GetChat, {"chat_id": chat}),
                (RenameChat, {"chat_id": chat, "title": "mine now"}),
                (DeleteChat, {"chat_id": chat}),
            ):
                error = await request(mallory, frame_type, **fields)
                assert isinstance(error, Error) and error.code == "not_found"
            # Indistinguishable from a chat that does not exist.
            foreign = await request(mallory, GetChat, chat_id=chat)
            unknown = await request(mallory, GetChat, chat_id="no-such-chat")
            assert (foreign.code, foreign.message) == (unknown.code, unknown.message)
            page = decode_result((await request(mallory, ListChats)).data, ChatPage)
            assert page.chats == []
            async with peer(srv.url, srv.token("mallory"), query=f"chat={chat}") as spy:
                refused = await spy.expect(Error)
                assert (refused.code, refused.chat_id) == ("not_found", chat)
                await spy.send(Ping(ts=1))
                await spy.expect(Pong)
            assert not any(isinstance(f, Chunk) for f in spy.received)
            await alice.send(Cancel(chat_id=chat))
            _, end = await alice.stream(ack.reply_id)
            detail = await get_chat(alice, chat)
        # Mallory saw nothing of Alice's chat.
        leaked = [f for f in mallory.received if getattr(f, "chat_id", None) == chat and not isinstance(f, Error)]
        assert leaked == []
        assert not any(isinstance(f, (Chunk, ChatUpdated, MessageEdited)) for f in mallory.received)
    assert detail.chat.title == "my secret chat"
    assert detail.messages[0].content == "my secret chat"
    assert isinstance(detail, ChatDetail)


async def test_deleting_a_chat_while_it_streams_stops_the_answer_first(tmp_path):
    async with running_server(tmp_path, **SLOW) as srv:
        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, "delete me mid-answer")
            await alice.expect(Chunk, message_id=ack.reply_id)
            deleted = await request(alice, DeleteChat, chat_id=ack.chat_id)
            assert deleted.data == {"chatId": ack.chat_id}
            ends = [f for f in alice.received if isinstance(f, (Cancelled, Complete)) and f.message_id == ack.reply_id]
            assert len(ends) == 1 and isinstance(ends[0], Cancelled)
            await alice.expect(ChatUpdated, deleted=True)
            # The chat is free again: nothing of it remains.
            missing = await request(alice, GetChat, chat_id=ack.chat_id)
            assert isinstance(missing, Error) and missing.code == "not_found"
        assert srv.server.generations.running() == []


async def test_regenerate_on_a_busy_chat_is_a_conflict(tmp_path):
    async with running_server(tmp_path, **SLOW) as srv:
        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, "busy")
            await alice.expect(Chunk, message_id=ack.reply_id)
            await alice.send(EditMessage(chat_id=ack.chat_id, message_id=ack.message_id, content="x", regenerate=True))
            error = await alice.expect(Error)
            assert error.code == "conflict"
            await alice.send(Cancel(chat_id=ack.chat_id))
            await alice.expect(Cancelled, message_id=ack.reply_id)
            detail = await get_chat(alice, ack.chat_id)
    assert detail.messages[0].content == "busy"  # the refused edit changed nothing


async def test_the_same_client_message_id_racing_on_two_connections_is_stored_once(tmp_path):
    async with running_server(tmp_path, demo_words=5) as srv:
        async with peer(srv.url, srv.token()) as tab1, peer(srv.url, srv.token()) as tab2:
            frame = Message(chat_id=None, content="once", client_message_id=new_id())
            await asyncio.gather(tab1.send(frame), tab2.send(frame))
            ack1 = await tab1.expect(Ack)
            ack2 = await tab2.expect(Ack)
            assert ack1 == ack2
            page = decode_result((await request(tab1, ListChats)).data, ChatPage)
            assert [chat.id for chat in page.chats] == [ack1.chat_id]
            detail = await get_chat(tab1, ack1.chat_id)
    assert [m.role for m in detail.messages] == ["user", "assistant"]


async def test_two_messages_racing_into_one_chat_start_one_answer(tmp_path):
    async with running_server(tmp_path, **SLOW) as srv:
        async with peer(srv.url, srv.token()) as tab1, peer(srv.url, srv.token()) as tab2:
            ack = await send_message(tab1, "first")
            await tab1.send(Cancel(chat_id=ack.chat_id))
            await tab1.expect(Cancelled, message_id=ack.reply_id)
            one = Message(chat_id=ack.chat_id, content="one", client_message_id=new_id())
            two = Message(chat_id=ack.chat_id, content="two", client_message_id=new_id())
            await asyncio.gather(tab1.send(one), tab2.send(two))
            outcomes = []
            for tab in (tab1, tab2):
                while True:
                    frame = await tab.recv()
                    if isinstance(frame, (Ack, Error)):
                        outcomes.append(frame)
                        break
            acks = [f for f in outcomes if isinstance(f, Ack)]
            errors = [f for f in outcomes if isinstance(f, Error)]
            assert len(acks) == 1 and len(errors) == 1 and errors[0].code == "conflict"
            await tab1.send(Cancel(chat_id=ack.chat_id))
            winner = tab1 if isinstance(outcomes[0], Ack) else tab2
            await winner.expect(Cancelled, message_id=acks[0].reply_id)
            detail = await get_chat(tab1, ack.chat_id)
    assert len(detail.messages) == 4


def test_titles_come_from_the_first_words():
    assert make_title("What is a monad?") == "What is a monad?"
    assert make_title("one two three four five six seven eight nine ten") == "one two three four five six seven eight…"
    assert make_title("   \n ") == "New chat"
    assert len(make_title("x" * 500)) <= 60


async def test_search_finds_the_senders_messages_only_newest_first(tmp_path):
    async with running_server(tmp_path, demo_words=3, demo_delay_ms=0) as srv:
        async with peer(srv.url, srv.token()) as alice, peer(srv.url, srv.token("bob")) as bob:
            older = await new_chat(alice, "a quokka smiles")
            await new_chat(alice, "nothing to see")
            newer = await new_chat(alice, "Quokkas again: the QUOKKA")
            await new_chat(bob, "bob has a quokka too")
            first = decode_result((await request(alice, Search, query="quokka", limit=1)).data, SearchResults)
            rest = await request(alice, Search, query="quokka", before=first.next_cursor)
            bobs = decode_result((await request(bob, Search, query="bob")).data, SearchResults)
            foreign = await request(alice, Search, query="quokka", before=bobs.hits[0].message_id)
            prefix = decode_result((await request(alice, Search, query="quok")).data, SearchResults)
            deleted = await request(alice, DeleteChat, chat_id=older.chat_id)
            after_delete = decode_result((await request(alice, Search, query="quokka")).data, SearchResults)
    hits = first.hits + decode_result(rest.data, SearchResults).hits
    assert [hit.message_id for hit in hits] == [newer.message_id, older.message_id]
    assert hits[0].chat_title == "Quokkas again: the QUOKKA" and hits[0].role == "user"
    assert [hits[0].snippet[a:b] for a, b in hits[0].highlights] == ["Quokkas", "QUOKKA"]  # the last word: a prefix
    assert isinstance(foreign, Error) and foreign.code == "bad_request" and foreign.request_id is not None
    assert [hit.message_id for hit in prefix.hits] == [newer.message_id, older.message_id]
    assert [prefix.hits[1].snippet[a:b] for a, b in prefix.hits[1].highlights] == ["quokka"]
    assert isinstance(deleted, Result)
    assert [hit.message_id for hit in after_delete.hits] == [newer.message_id]


async def test_a_query_without_words_is_refused_before_it_reaches_the_index(tmp_path):
    async with running_server(tmp_path, demo_words=3, demo_delay_ms=0) as srv:
        async with peer(srv.url, srv.token()) as alice:
            await new_chat(alice, 'a "quoted" AND starred* NEAR( words')
            refused = []
            for query in ["", "   ", '"', "*", "-", "NEAR("[-1], '" * - ( ) : ^ +']:
                await alice.send({"type": "search", "requestId": "r1", "query": query})
                refused.append(await alice.expect(Error))
            # Operators are words like any other: found, not obeyed.
            found = [
                decode_result((await request(alice, Search, query=query)).data, SearchResults)
                for query in ('"quoted', "AND", "NEAR(", "starred*", '" AND NEAR( *')
            ]
            await alice.send(Ping(ts=1))
            await alice.expect(Pong)  # the connection is still open
    assert [(error.code, error.message, error.request_id) for error in refused] == [
        ("bad_request", "'query' has no words to search for", "r1")
    ] * 7
    assert [len(results.hits) for results in found] == [1] * 5


async def test_update_chat_answers_and_broadcasts_settings_pin_and_archive(tmp_path):
    async with running_server(tmp_path, demo_words=3) as srv:
        async with peer(srv.url, srv.token()) as tab1, peer(srv.url, srv.token()) as tab2:
            older = await new_chat(tab1, "older")
            newer = await new_chat(tab1, "newer")
            params = ChatParams(temperature=0.2, top_p=0.5, max_tokens=64, seed=42)
            answer = await request(tab1, UpdateChat, chat_id=older.chat_id, system_prompt="Be brief.", params=params)
            configured = decode_result(answer.data, UpdatedChat)
            told = [await tab.expect(ChatUpdated, settings=configured.settings) for tab in (tab1, tab2)]
            pinned = decode_result(
                (await request(tab2, UpdateChat, chat_id=older.chat_id, pinned=True)).data, UpdatedChat
            )
            told_pin = await tab1.expect(ChatUpdated, chat=pinned.chat)
            listed = decode_result((await request(tab1, ListChats)).data, ChatPage)
            await request(tab1, UpdateChat, chat_id=newer.chat_id, archived=True)
            main = decode_result((await request(tab1, ListChats)).data, ChatPage)
            archive = decode_result((await request(tab1, ListChats, archived=True)).data, ChatPage)
            detail = await get_chat(tab2, older.chat_id)
    assert configured.settings == ChatSettings(system_prompt="Be brief.", params=params)
    assert all(frame.chat == configured.chat and not frame.deleted for frame in told)
    # A pin needs no settings in the broadcast: the list's frames stay small.
    assert pinned.chat.pinned and told_pin.settings is None
    assert [chat.id for chat in listed.chats] == [older.chat_id, newer.chat_id]
    assert [chat.id for chat in main.chats] == [older.chat_id]
    assert [(chat.id, chat.archived) for chat in archive.chats] == [(newer.chat_id, True)]
    assert detail.settings == configured.settings


async def test_update_chat_refusals_name_the_field_and_the_bound(tmp_path):
    async with running_server(tmp_path, demo_words=3) as srv:
        async with peer(srv.url, srv.token()) as alice, peer(srv.url, srv.token("bob")) as bob:
            ack = await new_chat(alice)
            refusals = []
            for params in ({"temperature": 2.5}, {"topP": -0.1}, {"maxTokens": 0}, {"seed": 1.5}):
                frame = {"type": "update_chat", "requestId": "bad", "chatId": ack.chat_id, "params": params}
                await alice.send(frame)
                refusals.append(await alice.expect(Error, request_id="bad"))
            await alice.send({"type": "update_chat", "requestId": "empty", "chatId": ack.chat_id})
            empty = await alice.expect(Error, request_id="empty")
            with_settings = {"type": "message", "chatId": ack.chat_id, "content": "x", "systemPrompt": "not here"}
            await alice.send(with_settings)
            misplaced = await alice.expect(Error)
            foreign = await request(bob, UpdateChat, chat_id=ack.chat_id, pinned=True)
            unchanged = await get_chat(alice, ack.chat_id)
    assert [(error.code, error.message) for error in refusals] == [
        ("bad_request", "'params.temperature' must be a number <= 2.0"),
        ("bad_request", "'params.topP' must be a number >= 0.0"),
        ("bad_request", "'params.maxTokens' must be an integer >= 1"),
        ("bad_request", "'params.seed' must be an integer or null, got float"),
    ]
    assert empty.code == "bad_request" and "changes nothing" in empty.message
    assert misplaced.code == "bad_request" and "only with a message that creates a chat" in misplaced.message
    assert isinstance(foreign, Error) and foreign.code == "not_found"
    assert unchanged.settings == ChatSettings() and not unchanged.chat.pinned


async def test_the_demo_model_answers_a_chat_with_a_system_prompt_and_parameters(tmp_path):
    async with running_server(tmp_path, demo_words=5) as srv:
        async with peer(srv.url, srv.token()) as alice:
            settings = {"system_prompt": "Answer in French.", "params": ChatParams(temperature=2.0, seed=1)}
            ack = await send_message(alice, "question", **settings)
            chunks, end = await alice.stream(ack.reply_id)
    assert isinstance(end, Complete) and end.finish_reason == "stop"
    assert text_of(chunks) == demo_answer("question", 5)
