"""Every JSON example in docs/protocol.md decodes, and every frame type has one."""

import json
import re
from pathlib import Path

import pytest

from mfu_tui import protocol as p
from tests.protocol.test_codec import CLIENT_TAGS, SERVER_TAGS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
CLIENT_PART = DOC.split("### Client to server", 1)[1].split("### Server to client", 1)[0]
SERVER_PART = DOC.split("### Server to client", 1)[1].split("### Result data", 1)[0]
STREAMS_PART = DOC.split("\n## Streams\n", 1)[1].split("\n## Guarantees\n", 1)[0]


def examples(part: str) -> list[str]:
    return re.findall(r"```json\n(.+?)\n```", part)


@pytest.mark.parametrize("example", examples(CLIENT_PART))
def test_client_examples_decode_and_round_trip(example):
    frame = p.decode_client(example)
    assert p.decode_client(p.encode(frame)) == frame


@pytest.mark.parametrize("example", examples(SERVER_PART))
def test_server_examples_decode_and_round_trip(example):
    frame = p.decode_server(example)
    assert p.decode_server(p.encode(frame)) == frame
    # Server frames carry every field, so the example shows the whole frame.
    assert json.loads(p.encode(frame)) == json.loads(example)


def test_every_frame_type_has_an_example():
    assert {json.loads(e)["type"] for e in examples(CLIENT_PART)} == CLIENT_TAGS
    assert {json.loads(e)["type"] for e in examples(SERVER_PART)} == SERVER_TAGS


def test_the_search_result_example_is_search_results_with_highlights_on_its_words():
    found = [p.decode_server(e) for e in examples(SERVER_PART) if '"hits"' in e]
    assert len(found) == 1 and isinstance(found[0], p.Result)
    hit = p.decode_result(found[0].data, p.SearchResults).hits[0]
    assert [hit.snippet[start:end] for start, end in hit.highlights] == ["monad", "functions"]


def test_the_get_chat_example_is_a_chat_detail_whose_answer_has_its_figures():
    found = [p.decode_server(e) for e in examples(SERVER_PART) if '"messages"' in e and '"tokensPerSecond": 41.5' in e]
    assert len(found) == 1 and isinstance(found[0], p.Result)
    question, answer = p.decode_result(found[0].data, p.ChatDetail).messages
    assert (question.usage, question.first_token_ms, question.tokens_per_second) == (None, None, None)
    assert answer.usage == p.Usage(prompt_tokens=4, completion_tokens=42)
    assert (answer.first_token_ms, answer.tokens_per_second) == (250, 41.5)


def test_the_complete_examples_carry_the_figures_or_null():
    ends = [p.decode_server(e) for e in examples(SERVER_PART) if '"type": "complete"' in e]
    assert [(end.usage, end.first_token_ms, end.tokens_per_second) for end in ends] == [
        (p.Usage(prompt_tokens=120, completion_tokens=42), 250, 41.5),
        (None, None, None),
    ]


def test_every_close_code_is_in_the_doc_table():
    for code in p.CLOSE_CODES:
        assert f"| {code} |" in DOC


def test_every_error_code_is_in_the_doc_table():
    for code in p.ErrorCode:
        assert f"| `{code.value}` |" in DOC


def test_the_paged_get_chat_example_places_its_page_by_offset():
    asked = [p.decode_client(e) for e in examples(CLIENT_PART) if '"type": "get_chat"' in e and '"offset"' in e]
    assert len(asked) == 1 and isinstance(asked[0], p.GetChat) and asked[0].offset == 9950
    found = [p.decode_server(e) for e in examples(SERVER_PART) if '"messages"' in e and '"offset": 9950' in e]
    assert len(found) == 1 and isinstance(found[0], p.Result)
    detail = p.decode_result(found[0].data, p.ChatDetail)
    assert detail.offset == asked[0].offset and detail.chat.message_count == 10000
    assert detail.next_cursor == detail.messages[0].id


def test_the_chunk_of_several_pieces_is_an_ordinary_chunk_that_follows_the_first():
    (example,) = examples(STREAMS_PART)
    joined = p.decode_server(example)
    (first,) = [p.decode_server(e) for e in examples(SERVER_PART) if '"type": "chunk"' in e and '"kind"' not in e]
    assert isinstance(joined, p.Chunk) and isinstance(first, p.Chunk)
    # Nothing new on the wire: the fields of any chunk, and the next seq of the same answer.
    assert json.loads(p.encode(joined)) == json.loads(example)
    assert (joined.message_id, joined.seq, joined.kind) == (first.message_id, first.seq + 1, "content")
    assert len(joined.content.split()) > 1  # several of the model's pieces


def test_a_get_chat_chooses_its_page_one_way_only():
    with pytest.raises(p.ProtocolError):
        p.decode_client('{"type": "get_chat", "requestId": "r1", "chatId": "c1", "offset": 3, "before": "m1"}')


def test_the_chunk_examples_are_one_of_the_answer_and_one_of_its_reasoning_and_get_chat_keeps_them_apart():
    chunks = [p.decode_server(e) for e in examples(SERVER_PART) if '"type": "chunk"' in e]
    assert [chunk.kind for chunk in chunks] == ["content", "reasoning"]
    assert b'"kind"' not in p.encode(chunks[0])  # an answer's chunk is sent as before reasoning existed
    found = [p.decode_server(e) for e in examples(SERVER_PART) if '"messages"' in e and '"reasoning"' in e]
    assert len(found) == 1 and isinstance(found[0], p.Result)
    question, answer = p.decode_result(found[0].data, p.ChatDetail).messages
    assert (question.reasoning, answer.reasoning) == ("", chunks[1].content)
    assert chunks[1].content not in answer.content
