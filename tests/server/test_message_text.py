"""``get_message_text``: the rest of a message too long for one frame, in parts, for its owner only."""

from __future__ import annotations

from mfu_tui.protocol import (
    MAX_SERVER_FRAME_BYTES,
    MESSAGE_TEXT_PART_CHARS,
    SENT_MESSAGE_CHARS,
    ChatDetail,
    Error,
    GetChat,
    GetMessageText,
    MessageText,
    decode_result,
)
from tests.server.peer import peer
from tests.server.test_chats import request
from tests.support.long_messages import answer_body, store_answer_body
from tests.support.server import running_server


async def test_the_rest_of_a_cut_message_comes_in_parts_for_its_owner_only(tmp_path):
    text = answer_body()
    chat_id, answer_id = await store_answer_body(tmp_path / "server.sqlite3", text)
    async with running_server(tmp_path) as srv:
        async with (
            peer(srv.url, srv.token("alice"), max_size=MAX_SERVER_FRAME_BYTES) as alice,
            peer(srv.url, srv.token("mallory")) as mallory,
        ):
            page = decode_result((await request(alice, GetChat, chat_id=chat_id)).data, ChatDetail)
            (cut,) = [message for message in page.messages if message.id == answer_id]
            assert cut.truncated and cut.content == text[:SENT_MESSAGE_CHARS]
            whole, parts, offset = cut.content, [], SENT_MESSAGE_CHARS
            for _ in range(4):  # two parts and the empty end; a bound, not a wait
                result = await request(alice, GetMessageText, chat_id=chat_id, message_id=answer_id, offset=offset)
                part = decode_result(result.data, MessageText)
                parts.append((part.offset, len(part.text), part.total_chars))
                whole, offset = whole + part.text, part.next_offset
                if not part.text:
                    break
            # Each part starts where the one before ended, and together they are the stored text, once.
            rest = len(text) - SENT_MESSAGE_CHARS - MESSAGE_TEXT_PART_CHARS
            assert parts == [
                (SENT_MESSAGE_CHARS, MESSAGE_TEXT_PART_CHARS, len(text)),
                (SENT_MESSAGE_CHARS + MESSAGE_TEXT_PART_CHARS, rest, len(text)),
                (len(text), 0, len(text)),
            ]
            assert whole == text
            past = await request(alice, GetMessageText, chat_id=chat_id, message_id=answer_id, offset=len(text) + 1)
            assert isinstance(past, Error) and (past.code, past.message_id) == ("bad_request", answer_id)
            assert past.message == f"'offset' {len(text) + 1} is past the end of the message ({len(text)} characters)"
            negative = await request(alice, GetMessageText, chat_id=chat_id, message_id=answer_id, offset=-1)
            assert isinstance(negative, Error) and negative.code == "bad_request"
            # Another user gets what a message that does not exist gets, and nothing of the text.
            foreign = await request(mallory, GetMessageText, chat_id=chat_id, message_id=answer_id, offset=0)
            unknown = await request(mallory, GetMessageText, chat_id=chat_id, message_id="no-such-message")
            assert isinstance(foreign, Error) and isinstance(unknown, Error)
            assert (
                (foreign.code, foreign.message) == (unknown.code, unknown.message) == ("not_found", "message not found")
            )
            assert not [frame for frame in mallory.received if not isinstance(frame, Error)]
