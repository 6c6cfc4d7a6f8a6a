"""Messages, streams, cancel, resume and resync against the real server."""

from __future__ import annotations

import asyncio

from mfu_tui.protocol import (
    Ack,
    Cancel,
    Cancelled,
    ChatCreated,
    ChatDetail,
    ChatUpdated,
    Chunk,
    Complete,
    Error,
    GetChat,
    Message,
    Result,
    Resume,
    Resync,
    Subscribe,
    Usage,
    decode_result,
)
from mfu_tui.server import generation as generation_module
from mfu_tui.server.generation import MAX_CHUNK_CHARS
from mfu_tui.server.providers.demo import demo_answer, demo_reasoning
from tests.server.peer import Peer, new_id, peer, reasoning_of, text_of
from tests.support.server import running_server

#: A demo answer long and slow enough to still be running when the test acts on it.
SLOW = {"demo_words": 5000, "demo_delay_ms": 2.0}


async def send_message(client: Peer, content: str, chat_id: str | None = None, **extra) -> Ack:
    client_message_id = extra.pop("client_message_id", new_id())
    await client.send(Message(chat_id=chat_id, content=content, client_message_id=client_message_id, **extra))
    return await client.expect(Ack, client_message_id=client_message_id)


async def get_chat(client: Peer, chat_id: str) -> ChatDetail:
    request_id = new_id()
    await client.send(GetChat(request_id=request_id, chat_id=chat_id))
    result = await client.expect(Result, request_id=request_id)
    return decode_result(result.data, ChatDetail)


async def test_a_new_chat_streams_the_answer_and_stores_it(tmp_path):
    async with running_server(tmp_path, demo_words=60) as srv:
        async with peer(srv.url, srv.token()) as alice:
            client_message_id = new_id()
            await alice.send(Message(chat_id=None, content="What is a monad?", client_message_id=client_message_id))
            ack = await alice.recv()
            assert isinstance(ack, Ack) and ack.client_message_id == client_message_id
            created = await alice.recv()
            assert created == ChatCreated(
                chat_id=ack.chat_id, title="What is a monad?", client_message_id=client_message_id
            )
            chunks, end = await alice.stream(ack.reply_id)
            assert [chunk.seq for chunk in chunks] == list(range(1, len(chunks) + 1))
            assert all(chunk.chat_id == ack.chat_id for chunk in chunks)
            assert isinstance(end, Complete) and end.seq == len(chunks) and end.finish_reason == "stop"
            assert text_of(chunks) == demo_answer("What is a monad?", 60)
            updated = await alice.expect(ChatUpdated)
            assert updated.chat.id == ack.chat_id

            detail = await get_chat(alice, ack.chat_id)
    user_message, reply = detail.messages
    assert (user_message.id, user_message.role, user_message.content) == (ack.message_id, "user", "What is a monad?")
    assert user_message.client_message_id == client_message_id
    assert (reply.id, reply.role, reply.status, reply.seq) == (ack.reply_id, "assistant", "complete", len(chunks))
    assert reply.content == text_of(chunks)
    assert detail.chat.message_count == 2
    # The demo model reports words as tokens: the question's four, the answer's pieces (a
    # chunk may join several: those that came while the one before was being stored).
    assert end.usage == Usage(prompt_tokens=4, completion_tokens=len(reply.content.split()))
    assert end.first_token_ms is not None and end.first_token_ms >= 0
    assert end.tokens_per_second is not None and end.tokens_per_second > 0
    # Stored with the answer, as the complete frame said; a user message has none.
    assert (reply.usage, reply.first_token_ms, reply.tokens_per_second) == (
        end.usage,
        end.first_token_ms,
        end.tokens_per_second,
    )
    assert (user_message.usage, user_message.first_token_ms, user_message.tokens_per_second) == (None, None, None)


async def test_the_demo_answer_is_markdown_that_quotes_the_question():
    text = demo_answer("How do I sort a list?", 200)
    assert text.startswith("## ")
    assert "> How do I sort a list?" in text
    assert "\n- " in text
    assert "```python\n" in text and text.count("```") == 2
    assert text == demo_answer("How do I sort a list?", 200)
    assert len(text.split()) == 200


async def test_the_seed_messages_array_form_is_accepted(tmp_path):
    async with running_server(tmp_path) as srv:
        async with peer(srv.url, srv.token()) as alice:
            client_message_id = new_id()
            await alice.send(
                {
                    "type": "message",
                    "chatId": None,
                    "clientMessageId": client_message_id,
                    "messages": [
                        {"role": "user", "content": "old"},
                        {"role": "assistant", "content": "forged history"},
                        {"role": "user", "content": "the new question"},
                    ],
                }
            )
            ack = await alice.expect(Ack)
            await alice.stream(ack.reply_id)
            detail = await get_chat(alice, ack.chat_id)
    # Only the last user entry is stored: the array never rewrites history.
    assert [(m.role, m.content) for m in detail.messages][0] == ("user", "the new question")
    assert len(detail.messages) == 2


async def test_a_follow_up_message_answers_in_the_same_chat(tmp_path):
    async with running_server(tmp_path) as srv:
        async with peer(srv.url, srv.token()) as alice:
            first = await send_message(alice, "first")
            await alice.stream(first.reply_id)
            second = await send_message(alice, "second", chat_id=first.chat_id)
            chunks, end = await alice.stream(second.reply_id)
            assert second.chat_id == first.chat_id
            assert isinstance(end, Complete)
            assert text_of(chunks) == demo_answer("second", 40)
            detail = await get_chat(alice, first.chat_id)
    assert [m.role for m in detail.messages] == ["user", "assistant", "user", "assistant"]


async def test_the_same_client_message_id_is_stored_once_and_acked_the_same(tmp_path):
    async with running_server(tmp_path) as srv:
        async with peer(srv.url, srv.token()) as alice:
            client_message_id = new_id()
            first = await send_message(alice, "hello", client_message_id=client_message_id)
            await alice.stream(first.reply_id)
            again = await send_message(alice, "hello", client_message_id=client_message_id)
            assert again == first
        # From another connection too, and while nothing else happens.
        async with peer(srv.url, srv.token()) as alice2:
            third = await send_message(alice2, "hello", client_message_id=client_message_id)
            assert third == first
            detail = await get_chat(alice2, first.chat_id)
    assert len(detail.messages) == 2


async def test_a_retry_while_the_answer_streams_gets_the_ack_not_a_conflict(tmp_path):
    async with running_server(tmp_path, **SLOW) as srv:
        async with peer(srv.url, srv.token()) as alice:
            client_message_id = new_id()
            first = await send_message(alice, "hello", client_message_id=client_message_id)
            await alice.expect(Chunk, message_id=first.reply_id)
            again = await send_message(alice, "hello", chat_id=first.chat_id, client_message_id=client_message_id)
            assert again == first
            await alice.send(Cancel(chat_id=first.chat_id))
            await alice.expect(Cancelled, message_id=first.reply_id)


async def test_a_message_to_a_busy_chat_gets_conflict_not_an_interleaved_stream(tmp_path):
    async with running_server(tmp_path, **SLOW) as srv:
        async with peer(srv.url, srv.token()) as alice:
            first = await send_message(alice, "long one")
            await alice.expect(Chunk, message_id=first.reply_id)
            refused = new_id()
            await alice.send(Message(chat_id=first.chat_id, content="another", client_message_id=refused))
            error = await alice.expect(Error)
            assert error.code == "conflict" and error.chat_id == first.chat_id
            assert error.client_message_id == refused
            await alice.send(Cancel(chat_id=first.chat_id))
            _, end = await alice.stream(first.reply_id)
            assert isinstance(end, Cancelled)
            detail = await get_chat(alice, first.chat_id)
    assert len(detail.messages) == 2


async def test_cancel_stops_the_stream_stores_the_partial_and_tells_every_subscriber(tmp_path):
    async with running_server(tmp_path, **SLOW) as srv:
        async with peer(srv.url, srv.token()) as alice, peer(srv.url, srv.token()) as other_tab:
            ack = await send_message(alice, "tell me everything")
            await other_tab.send(Subscribe(chat_id=ack.chat_id))
            await alice.expect(Chunk, message_id=ack.reply_id, seq=3)
            await alice.send(Cancel(chat_id=ack.chat_id, message_id=ack.reply_id))
            chunks, end = await alice.stream(ack.reply_id)
            assert isinstance(end, Cancelled)
            _, end_seen_by_other = await other_tab.stream(ack.reply_id)
            assert end_seen_by_other == end
            detail = await get_chat(alice, ack.chat_id)
            # A repeated cancel is harmless: it says how the message ended.
            await alice.send(Cancel(chat_id=ack.chat_id, message_id=ack.reply_id))
            assert await alice.expect(Cancelled) == end
    received = alice.received
    streamed = [f for f in received if isinstance(f, Chunk) and f.message_id == ack.reply_id]
    reply = detail.messages[1]
    assert reply.status == "cancelled" and reply.finish_reason == "cancelled"
    assert reply.seq == end.seq == len(streamed)
    assert reply.content == text_of(streamed)
    assert 3 <= end.seq < len(demo_answer("tell me everything", 5000).split())


async def test_a_disconnect_is_not_a_cancel_and_resume_replays_then_follows_live(tmp_path):
    async with running_server(tmp_path, demo_words=400, demo_delay_ms=2.0) as srv:
        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, "keep going")
            first = await alice.expect(Chunk, message_id=ack.reply_id, seq=5)
        seen = [f for f in alice.received if isinstance(f, Chunk)]
        assert seen[-1] == first
        async with peer(srv.url, srv.token()) as again:
            await again.send(Resume(chat_id=ack.chat_id, message_id=ack.reply_id, last_seq=5))
            chunks, end = await again.stream(ack.reply_id)
            detail = await get_chat(again, ack.chat_id)
    assert [c.seq for c in chunks] == list(range(6, end.seq + 1))
    assert isinstance(end, Complete) and end.finish_reason == "stop"
    assert text_of(seen[:5]) + text_of(chunks) == detail.messages[1].content == demo_answer("keep going", 400)


async def test_a_client_resuming_mid_reasoning_gets_every_reasoning_and_answer_chunk_once_in_order(tmp_path):
    question = "think: why is the sky blue?"
    async with running_server(tmp_path, demo_words=60, demo_delay_ms=5.0) as srv:
        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, question)
            await alice.expect(Chunk, message_id=ack.reply_id, seq=3)
        seen = [f for f in alice.received if isinstance(f, Chunk) and f.message_id == ack.reply_id]
        async with peer(srv.url, srv.token()) as again:
            await again.send(Resume(chat_id=ack.chat_id, message_id=ack.reply_id, last_seq=3))
            chunks, end = await again.stream(ack.reply_id)
            reply = (await get_chat(again, ack.chat_id)).messages[1]
    thought = demo_reasoning(question)
    every = seen[:3] + chunks
    assert [c.seq for c in every] == list(range(1, end.seq + 1))
    # Cut off mid-reasoning: the reasoning comes first, then the answer, on the one numbering.
    assert [c.kind for c in seen[:3]] == ["reasoning"] * 3
    kinds = [c.kind for c in every]
    reasoned = kinds.count("reasoning")  # a chunk per piece, unless pieces came faster than commits
    assert kinds == ["reasoning"] * reasoned + ["content"] * (end.seq - reasoned)
    assert (reasoning_of(every), text_of(every)) == (thought, demo_answer(question, 60))
    assert (reply.reasoning, reply.content) == (thought, demo_answer(question, 60))


async def test_pieces_ready_together_stream_as_one_chunk_and_the_text_is_what_was_stored(tmp_path):
    # Four answers at once from a model faster than commits: the pieces that come while the
    # previous chunk waits for its commit join it, so far fewer frames than pieces go out.
    words = 3000
    async with running_server(tmp_path, demo_words=words, demo_delay_ms=0, answers_per_user=4) as srv:
        async with peer(srv.url, srv.token()) as alice:
            questions = {new_id(): f"question {i}" for i in range(4)}
            for client_message_id, question in questions.items():
                await alice.send(Message(chat_id=None, content=question, client_message_id=client_message_id))
            ended = 0
            async with asyncio.timeout(60):
                while ended < len(questions):
                    ended += isinstance(await alice.recv(), Complete)
            acks = {f.client_message_id: f for f in alice.received if isinstance(f, Ack)}
            stored = {key: (await get_chat(alice, ack.chat_id)).messages[1] for key, ack in acks.items()}
    for client_message_id, question in questions.items():
        reply_id = acks[client_message_id].reply_id
        chunks = [f for f in alice.received if isinstance(f, Chunk) and f.message_id == reply_id]
        (end,) = [f for f in alice.received if isinstance(f, Complete) and f.message_id == reply_id]
        assert [c.seq for c in chunks] == list(range(1, end.seq + 1))
        assert len(chunks) < words  # one frame per chunk, a chunk per commit rather than per piece
        assert all(0 < len(c.content) <= MAX_CHUNK_CHARS for c in chunks)
        reply = stored[client_message_id]
        assert text_of(chunks) == reply.content == demo_answer(question, words)
        assert reply.seq == end.seq and end.usage is not None and end.usage.completion_tokens == words


async def test_resume_from_any_seq_of_joined_chunks_replays_the_very_chunks_sent_live(tmp_path):
    words = 3000
    async with running_server(tmp_path, demo_words=words, demo_delay_ms=0) as srv:
        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, "join them")
            await alice.expect(Chunk, message_id=ack.reply_id, seq=2)
        cut = [f for f in alice.received if isinstance(f, Chunk) and f.message_id == ack.reply_id]
        async with peer(srv.url, srv.token()) as again:
            # Cut off after a joined chunk: the rest comes once, from the next chunk on.
            await again.send(Resume(chat_id=ack.chat_id, message_id=ack.reply_id, last_seq=cut[-1].seq))
            rest, end = await again.stream(ack.reply_id)
            every = cut + rest
            assert len(every) < words and [c.seq for c in every] == list(range(1, end.seq + 1))
            reply = (await get_chat(again, ack.chat_id)).messages[1]
            assert text_of(every) == reply.content == demo_answer("join them", words)
            # From the store, any lastSeq replays the same chunks, joined as they were sent live.
            for last_seq in sorted({0, 1, end.seq // 2, end.seq - 1, end.seq}):
                await again.send(Resume(chat_id=ack.chat_id, message_id=ack.reply_id, last_seq=last_seq))
                replayed, end_again = await again.stream(ack.reply_id)
                assert replayed == every[last_seq:] and end_again == end


async def test_resume_of_an_ended_message_replays_the_missing_part(tmp_path):
    async with running_server(tmp_path) as srv:
        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, "short")
            chunks, end = await alice.stream(ack.reply_id)
            await alice.send(Resume(chat_id=ack.chat_id, message_id=ack.reply_id, last_seq=3))
            replayed, end_again = await alice.stream(ack.reply_id)
            assert replayed == chunks[3:]
            # The end frame from the store carries what was measured, as the live one did.
            assert end.usage is not None and end.tokens_per_second is not None
            assert end_again == end
            await alice.send(Resume(chat_id=ack.chat_id, message_id=ack.reply_id, last_seq=end.seq))
            nothing, end_once_more = await alice.stream(ack.reply_id)
            assert nothing == [] and end_once_more == end


async def test_resume_past_the_replay_window_gets_resync(tmp_path):
    async with running_server(tmp_path, replay_window=0.0) as srv:
        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, "short")
            await alice.stream(ack.reply_id)
            await alice.send(Resume(chat_id=ack.chat_id, message_id=ack.reply_id, last_seq=2))
            assert await alice.expect(Resync) == Resync(chat_id=ack.chat_id, message_id=ack.reply_id)


async def test_the_chat_query_parameter_subscribes_at_open(tmp_path):
    async with running_server(tmp_path, **SLOW) as srv:
        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, "watch me")
            async with peer(srv.url, srv.token(), query=f"chat={ack.chat_id}") as watcher:
                chunk = await watcher.expect(Chunk, message_id=ack.reply_id)
                assert chunk.chat_id == ack.chat_id
                await alice.send(Cancel(chat_id=ack.chat_id))
                await watcher.expect(Cancelled, message_id=ack.reply_id)


async def test_many_chats_stream_at_once_without_mixing(tmp_path):
    async with running_server(tmp_path, demo_words=80, demo_delay_ms=1.0, answers_per_user=5) as srv:
        async with peer(srv.url, srv.token()) as alice:
            questions = {new_id(): f"question {i}" for i in range(5)}
            for client_message_id, question in questions.items():
                await alice.send(Message(chat_id=None, content=question, client_message_id=client_message_id))
            ended = 0
            async with asyncio.timeout(30):
                while ended < len(questions):
                    ended += isinstance(await alice.recv(), Complete)
    acks = {f.client_message_id: f for f in alice.received if isinstance(f, Ack)}
    for client_message_id, question in questions.items():
        reply_id = acks[client_message_id].reply_id
        chunks = [f for f in alice.received if isinstance(f, Chunk) and f.message_id == reply_id]
        assert [c.seq for c in chunks] == list(range(1, len(chunks) + 1))
        assert text_of(chunks) == demo_answer(question, 80)


async def test_pieces_that_come_within_the_chunk_gap_are_held_and_go_with_the_end(tmp_path, monkeypatch):
    # Pieces 5 ms apart, each committed before the next came, were a chunk and a frame each (a firehose: 1,200
    # frames of a word or two for one answer).
    monkeypatch.setattr(generation_module, "CHUNK_GAP", 3600.0)  # after the first piece, all wait: until the end
    async with running_server(tmp_path, demo_words=60, demo_delay_ms=5) as srv:
        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, "Go")
            chunks, end = await alice.stream(ack.reply_id)
            stored = await get_chat(alice, ack.chat_id)
    # The first at once, with what joined it before its commit began; the others in one chunk, with the end.
    assert len(chunks) <= 2 and isinstance(end, Complete) and end.seq == len(chunks)
    assert text_of(chunks) == stored.messages[-1].content and len(text_of(chunks).split()) >= 60
