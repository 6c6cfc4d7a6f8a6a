"""Encoding and decoding frames, and the errors bad input gets."""

import json

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mfu_tui import protocol as p
from tests.protocol.examples import CHAT, CLIENT_FRAMES, SERVER_FRAMES, WHEN

CLIENT_TAGS = {
    "ping",
    "message",
    "cancel",
    "resume",
    "edit_message",
    "message_edited",
    "subscribe",
    "list_chats",
    "get_chat",
    "get_message_text",
    "rename_chat",
    "update_chat",
    "delete_chat",
    "list_models",
    "search",
    "import_chat",
    "attachment_part",
}
SERVER_TAGS = {
    "pong",
    "ack",
    "chat_created",
    "user_message",
    "chunk",
    "complete",
    "cancel",
    "error",
    "message_edited",
    "chat_updated",
    "result",
    "resync",
    "attachment_ack",
    "server_status",
}


def test_examples_cover_every_frame_type():
    assert {type(f).__struct_config__.tag for f in CLIENT_FRAMES} == CLIENT_TAGS
    assert {type(f).__struct_config__.tag for f in SERVER_FRAMES} == SERVER_TAGS


@pytest.mark.parametrize("frame", CLIENT_FRAMES, ids=repr)
def test_client_frames_round_trip(frame):
    assert p.decode_client(p.encode(frame)) == frame
    assert p.decode_client(p.encode(frame).decode()) == frame


@pytest.mark.parametrize("frame", SERVER_FRAMES, ids=repr)
def test_server_frames_round_trip(frame):
    assert p.decode_server(p.encode(frame)) == frame


def test_wire_names_are_camel_case_with_type_first():
    wire = json.loads(p.encode(p.Ack(client_message_id="c", chat_id="h", message_id="m", reply_id="r")))
    assert list(wire) == ["type", "clientMessageId", "chatId", "messageId", "replyId"]
    assert wire["type"] == "ack"


def test_null_chat_id_is_sent_not_omitted():
    wire = json.loads(p.encode(p.Message(chat_id=None, client_message_id="c", content="x")))
    assert wire == {"type": "message", "chatId": None, "clientMessageId": "c", "content": "x"}


def test_timestamps_are_rfc3339():
    wire = json.loads(p.encode(p.ChatUpdated(chat=CHAT)))
    assert wire["chat"]["updatedAt"] == "2026-11-26T09:30:00Z"


def test_every_field_of_the_brief_is_on_the_wire_even_at_its_default():
    wire = json.loads(p.encode(p.ChatUpdated(chat=CHAT)))
    assert wire == {
        "type": "chat_updated",
        "chat": {
            "id": "c1",
            "title": "Hello",
            "updatedAt": "2026-11-26T09:30:00Z",
            "modelId": "demo",
            "messageCount": 2,
            "pinned": False,
            "archived": False,
        },
        "deleted": False,
        "settings": None,
    }
    complete = json.loads(p.encode(p.Complete(chat_id="c", message_id="m", seq=0)))
    assert complete == {
        "type": "complete",
        "chatId": "c",
        "messageId": "m",
        "seq": 0,
        "finishReason": "stop",
        "usage": None,
        "firstTokenMs": None,
        "tokensPerSecond": None,
    }


def test_a_complete_frame_and_a_stored_message_from_before_the_figures_decode_with_none():
    old = p.decode_server('{"type": "complete", "chatId": "c", "messageId": "m", "seq": 3, "finishReason": "length"}')
    message = {"id": "m", "role": "assistant", "content": "hi", "createdAt": "2026-11-26T09:30:00Z"}
    chat = json.loads(p.encode(p.ChatUpdated(chat=CHAT)))["chat"]
    stored = p.decode_result({"chat": chat, "messages": [message]}, p.ChatDetail).messages[0]
    assert old == p.Complete(chat_id="c", message_id="m", seq=3, finish_reason="length")
    assert (old.usage, old.first_token_ms, old.tokens_per_second) == (None, None, None)
    assert (stored.usage, stored.first_token_ms, stored.tokens_per_second) == (None, None, None)


def test_figures_out_of_range_are_refused():
    frame = '{"type": "complete", "chatId": "c", "messageId": "m", "seq": 1, "usage": {"promptTokens": -1}}'
    with pytest.raises(p.ProtocolError):
        p.decode_server(frame)
    with pytest.raises(p.ProtocolError):
        p.decode_server('{"type": "complete", "chatId": "c", "messageId": "m", "seq": 1, "tokensPerSecond": -2.5}')


def test_seed_messages_form_decodes_like_content():
    seed = {
        "type": "message",
        "chatId": "c1",
        "clientMessageId": "c2",
        "modelId": "demo",
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "answer"},
            {"role": "user", "content": "second"},
        ],
    }
    plain = {"type": "message", "chatId": "c1", "clientMessageId": "c2", "modelId": "demo", "content": "second"}
    assert p.decode_client(json.dumps(seed)) == p.decode_client(json.dumps(plain))
    assert p.decode_client(json.dumps(seed)).messages is None


def test_same_type_tag_means_different_frames_per_direction():
    wire = '{"type": "cancel", "chatId": "c1", "messageId": "m2", "seq": 4}'
    assert p.decode_client(wire) == p.Cancel(chat_id="c1", message_id="m2")
    assert p.decode_server(wire) == p.Cancelled(chat_id="c1", message_id="m2", seq=4)


def test_unknown_fields_are_ignored_for_forward_compatibility():
    assert p.decode_client('{"type": "ping", "ts": 1, "future": true}') == p.Ping(ts=1)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{", "not valid JSON: the text ends too early"),
        ("hello", "not valid JSON: cannot be read from byte 0"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not valid JSON: the text is not UTF-8"),
        (b'{"type": "subscribe", "chatId": "\xff"}', "not valid JSON: the text is not UTF-8"),
        ('{"type": "ping"} {}', "not valid JSON: more text after the frame, from byte 17"),
        ('{"type": "ping", "ts": NaN}', "not valid JSON: NaN is not a JSON number"),
        ("[" * 5000 + "]" * 5000, "not valid JSON: arrays or objects are nested too deeply"),
        ('{"type": "subscribe", "chatId": "ab', "not valid JSON: cannot be read from byte 32"),
        ('{"type": "subscribe", "chatId": "a\tb"}', "not valid JSON: cannot be read from byte 34"),
        ('{"type": "é", "x": 1 2}', "not valid JSON: cannot be read from byte 22"),
        ('{"type": "' + "x" * 100 + '"}', "unknown frame type '" + "x" * 35 + "...'"),
        ("[]", "a frame must be a JSON object, got array"),
        ('"ping"', "a frame must be a JSON object, got str"),
        ("null", "a frame must be a JSON object, got null"),
        ("{}", "frame has no 'type'"),
        ('{"type": 7}', "'type' must be a string"),
        ('{"type": "chunk"}', "unknown frame type 'chunk'"),
        (
            '{"type": "message", "chatId": 5, "clientMessageId": "c", "content": "x"}',
            "'chatId' must be a string or null, got int",
        ),
        ('{"type": "get_chat", "requestId": "r", "chatId": 5}', "'chatId' must be a string, got int"),
        ('{"type": "get_chat", "requestId": "r"}', "'chatId' is required"),
        ('{"type": "message", "chatId": null, "clientMessageId": "c", "content": "  "}', "'content' must not be empty"),
        ('{"type": "message", "chatId": null, "clientMessageId": "c"}', "'content' must not be empty"),
        (
            '{"type": "message", "chatId": null, "clientMessageId": "c", "messages": []}',
            "'messages' has no entry with role 'user'",
        ),
        (
            '{"type": "message", "chatId": null, "clientMessageId": "c", "messages": [{"role": "user"}]}',
            "'content' is required in 'messages[0]'",
        ),
        ('{"type": "resume", "chatId": "c", "messageId": "m", "lastSeq": -1}', "'lastSeq' must be an integer >= 0"),
        (
            '{"type": "resume", "chatId": "c", "messageId": "m", "lastSeq": 1.5}',
            "'lastSeq' must be an integer, got float",
        ),
        ('{"type": "list_chats", "requestId": "r", "limit": 1000}', "'limit' must be an integer <= 200"),
        ('{"type": "get_chat", "requestId": "", "chatId": "c"}', "'requestId' must be a string of length >= 1"),
        ('{"type": "ping", "ts": 1e999}', "'ts' is out of range"),
        ('{"type": "ping", "ts": ' + "9" * 5000 + "}", "'ts' is out of range"),
        ('{"type": "list_chats", "requestId": "r", "limit": ' + "9" * 5000 + "}", "'limit' is out of range"),
        (
            '{"type": "edit_message", "chatId": "c", "messageId": "m", "content": "x", "regenerate": "yes"}',
            "'regenerate' must be a boolean, got str",
        ),
        ('{"type": "search", "requestId": "r", "query": ""}', "'query' has no words to search for"),
        ('{"type": "search", "requestId": "r", "query": "\\" * - ( :"}', "'query' has no words to search for"),
        (
            '{"type": "search", "requestId": "r", "query": "' + "a" * 501 + '"}',
            "'query' must be a string of length <= 500",
        ),
        ('{"type": "search", "requestId": "r"}', "'query' is required"),
    ],
)
def test_malformed_client_frames_say_what_is_wrong(data, message):
    with pytest.raises(p.ProtocolError) as raised:
        p.decode_client(data)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            '{"type": "chunk", "chatId": "c", "messageId": "m", "seq": 0, "content": "x"}',
            "'seq' must be an integer >= 1",
        ),
        (
            '{"type": "chat_updated", "chat": {"id": "a", "title": "t", "updatedAt": "soon"}}',
            "'chat.updatedAt' must be a date-time string (RFC 3339)",
        ),
        ('{"type": "chat_updated", "chat": {"id": "a", "title": "t"}}', "'updatedAt' is required in 'chat'"),
        ('{"type": "ping"}', "unknown frame type 'ping'"),
    ],
)
def test_malformed_server_frames_say_what_is_wrong(data, message):
    with pytest.raises(p.ProtocolError) as raised:
        p.decode_server(data)
    assert str(raised.value) == message


def test_oversize_frames_are_refused_as_too_large_with_their_ids():
    big = '{"type": "get_chat", "requestId": "r1", "chatId": "c1", "pad": "' + "x" * p.MAX_FRAME_BYTES + '"}'
    with pytest.raises(p.FrameTooLarge, match="^frame is larger than 65536 bytes$") as raised:
        p.decode_client(big)
    assert raised.value.ids == p.FrameIds(request_id="r1", chat_id="c1")
    huge = b" " * (p.MAX_MESSAGE_FRAME_BYTES + 1)
    with pytest.raises(p.FrameTooLarge, match="^frame is larger than 1048576 bytes$"):
        p.decode_client(huge)


def seed_message(history_bytes: int, new_text: str = "and now?") -> str:
    """The seed's ``message``: the whole history resent, no ``clientMessageId``, ``chatId: ""``."""
    old = {"role": "assistant", "content": "y" * history_bytes}
    return json.dumps(
        {"type": "message", "chatId": "", "messages": [old, {"role": "user", "content": new_text}], "modelId": "demo"}
    )


def test_the_seeds_message_form_decodes_as_a_new_message():
    frame = p.decode_client(seed_message(10))
    assert frame == p.Message(chat_id=None, client_message_id=None, content="and now?", model_id="demo")


def test_a_message_may_carry_a_long_history_but_not_a_long_new_text():
    assert p.decode_client(seed_message(p.MAX_MESSAGE_FRAME_BYTES - 200)).content == "and now?"
    with pytest.raises(p.FrameTooLarge, match="^frame is larger than 1048576 bytes$"):
        p.decode_client(seed_message(p.MAX_MESSAGE_FRAME_BYTES))
    with pytest.raises(p.FrameTooLarge, match="^'content' is larger than 65536 bytes$"):
        p.decode_client(seed_message(10, new_text="é" * (p.MAX_CONTENT_BYTES // 2 + 1)))


def test_the_seed_pages_edit_notice_decodes_with_its_numeric_id():
    wire = '{"type": "message_edited", "chatId": "c1", "messageId": 1764866400123, "content": "fixed"}'
    assert p.decode_client(wire) == p.PageEdit(chat_id="c1", message_id=1764866400123, content="fixed")


def test_a_frame_of_an_unknown_type_is_told_apart_from_a_malformed_one():
    with pytest.raises(p.UnknownFrameType, match="^unknown frame type 'from_the_future'$"):
        p.decode_server('{"type": "from_the_future", "chatId": "c1"}')
    for malformed in ('{"type": 7}', "{}", "[]", '{"type": "chunk", "chatId": 5}'):
        with pytest.raises(p.ProtocolError) as raised:
            p.decode_server(malformed)
        assert not isinstance(raised.value, p.UnknownFrameType), malformed


def test_a_refused_frame_names_the_ids_it_carried():
    with pytest.raises(p.ProtocolError) as raised:
        p.decode_client('{"type": "message", "chatId": 5, "clientMessageId": "m1", "content": "x"}')
    assert raised.value.ids == p.FrameIds(client_message_id="m1")
    with pytest.raises(p.ProtocolError) as raised:
        p.decode_client('{"type": "rename_chat", "requestId": "r9", "chatId": "c1", "title": ""}')
    assert raised.value.ids == p.FrameIds(request_id="r9", chat_id="c1")
    with pytest.raises(p.ProtocolError) as raised:
        p.decode_client('{"type": "nope", "requestId": "' + "r" * 200 + '"')
    assert raised.value.ids == p.FrameIds()


def test_non_text_input_is_a_protocol_error():
    with pytest.raises(p.ProtocolError, match="must be text, got int"):
        p.decode_client(42)  # type: ignore[arg-type]


def test_protocol_error_is_a_value_error_without_internal_context():
    with pytest.raises(p.ProtocolError) as raised:
        p.decode_client("{")
    assert isinstance(raised.value, ValueError)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_decode_result_gives_typed_records():
    page = p.decode_result({"chats": [msgspec.to_builtins(CHAT)], "nextCursor": "x"}, p.ChatPage)
    assert page == p.ChatPage(chats=[CHAT], next_cursor="x")
    detail = p.decode_result(
        {
            "chat": msgspec.to_builtins(CHAT),
            "messages": [{"id": "m1", "role": "user", "content": "Hi", "createdAt": "2026-11-26T09:30:00Z"}],
        },
        p.ChatDetail,
    )
    assert detail.messages[0] == p.StoredMessage(id="m1", role="user", content="Hi", created_at=WHEN)


def test_search_words_are_plain_words_whatever_the_query():
    assert p.search_words('"Monad" AND fun*ctor -x NEAR(') == ["monad", "and", "fun", "ctor", "x", "near"]
    assert p.search_words("snake_case été 3.14") == ["snake", "case", "été", "3", "14"]
    assert p.search_words('" * - ( : ^') == []
    text = "Monads, a monad-ish MONADIC thing; nomad"
    assert [text[a:b] for a, b in p.matching_spans(text, ["thing", "monad"])] == ["Monads", "monad", "MONADIC", "thing"]
    assert [text[a:b] for a, b in p.matching_spans(text, ["monad", "thing"])] == ["monad", "thing"]


def test_decode_result_names_the_bad_field():
    with pytest.raises(p.ProtocolError, match=r"^'data.chats\[0\].id' must be a string, got int$"):
        p.decode_result({"chats": [{"id": 1}]}, p.ChatPage)
    with pytest.raises(p.ProtocolError, match=r"^'data' must be an object, got array$"):
        p.decode_result([], p.ChatPage)
    message = {"id": "m1", "role": "bot", "content": "Hi", "createdAt": "2026-11-26T09:30:00Z"}
    with pytest.raises(p.ProtocolError, match=r"^'data.role' must be one of 'assistant', 'user'$"):
        p.decode_result(message, p.StoredMessage)
    with pytest.raises(p.ProtocolError, match=r"^'data.createdAt' must be a date-time string \(RFC 3339\)$"):
        p.decode_result({**message, "role": "user", "createdAt": "soon"}, p.StoredMessage)


# --- Nothing but ProtocolError, whatever the input ------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=12,
)
field_names = st.sampled_from(
    [
        "chatId",
        "messageId",
        "clientMessageId",
        "content",
        "modelId",
        "messages",
        "lastSeq",
        "seq",
        "requestId",
        "limit",
        "before",
        "title",
        "regenerate",
        "ts",
        "chat",
        "data",
        "code",
        "message",
        "editedAt",
        "finishReason",
        "deleted",
        "replyId",
        "role",
    ]
)
frame_like = st.builds(
    lambda tag, fields: {"type": tag, **fields},
    st.sampled_from(sorted(CLIENT_TAGS | SERVER_TAGS)) | st.text(max_size=8) | json_values,
    st.dictionaries(field_names, json_values, max_size=6),
)


def _only_protocol_errors(decode, data):
    try:
        decode(data)
    except p.ProtocolError as error:
        assert str(error), "a ProtocolError must say what is wrong"
        assert "msgspec" not in str(error) and "Traceback" not in str(error)
        # Our own words, never msgspec's (``Expected `str`, got `int` - at `$.chatId```),
        # and always a reason: the explanation's walk must find every rule msgspec enforces.
        assert "Expected `" not in str(error) and " - at `$" not in str(error)
        assert "does not follow the protocol" not in str(error)


@given(st.binary(max_size=256))
def test_random_bytes_raise_only_protocol_error(data):
    _only_protocol_errors(p.decode_client, data)
    _only_protocol_errors(p.decode_server, data)


@given(frame_like)
def test_frame_shaped_json_raises_only_protocol_error(value):
    data = json.dumps(value)
    _only_protocol_errors(p.decode_client, data)
    _only_protocol_errors(p.decode_server, data)


@given(st.sampled_from(CLIENT_FRAMES + SERVER_FRAMES), st.data())
def test_corrupted_real_frames_raise_only_protocol_error(frame, data):
    wire = bytearray(p.encode(frame))
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(wire) - 1))
        wire[index] = data.draw(st.integers(0, 255))
    _only_protocol_errors(p.decode_client, bytes(wire))
    _only_protocol_errors(p.decode_server, bytes(wire))


def test_server_frames_may_exceed_the_client_limit():
    """A long chat in ``get_chat`` is larger than any frame a client may send."""
    big = p.Result(request_id="r", data={"text": "x" * (2 * p.MAX_FRAME_BYTES)})
    assert p.decode_server(p.encode(big)) == big
    with pytest.raises(p.ProtocolError, match=f"larger than {p.MAX_SERVER_FRAME_BYTES} bytes"):
        p.decode_server(b" " * (p.MAX_SERVER_FRAME_BYTES + 1))


@pytest.mark.parametrize("data", [" GVsbG8=", "aGVsbG8", "aG-k", "aGk=\n"])
def test_an_attachment_part_whose_data_is_not_base64_is_refused_in_words(data):
    frame = {
        "type": "attachment_part",
        "clientMessageId": "c4",
        "clientAttachmentId": "a1",
        "name": "notes.txt",
        "mediaType": "text/plain",
        "size": 5,
        "offset": 0,
        "data": data,
    }
    with pytest.raises(p.ProtocolError) as refused:
        p.decode_client(json.dumps(frame))
    assert str(refused.value) == "'data' must be base64 (standard alphabet, padded with '=', no spaces)"


def test_a_server_status_names_its_storage_state_and_nothing_else():
    frame = p.decode_server('{"type": "server_status", "storage": "unavailable", "message": "down"}')
    assert frame == p.ServerStatus(storage="unavailable", message="down")
    with pytest.raises(p.ProtocolError, match=r"^'storage' must be one of 'ok', 'unavailable'$"):
        p.decode_server('{"type": "server_status", "storage": "maybe", "message": "?"}')
    with pytest.raises(p.ProtocolError, match=r"'message'"):
        p.decode_server('{"type": "server_status", "storage": "ok"}')
