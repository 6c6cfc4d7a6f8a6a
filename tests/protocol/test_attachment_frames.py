"""The frames of attachments: a part at its largest fits one frame, and bad parts are refused in words."""

import json

import pytest

from mfu_tui import protocol as p

LONGEST_ID = "\u0001" * p.MAX_ID_LENGTH  # escaped as \u0001: 6 bytes a character


def part(**fields):
    frame = {
        "type": "attachment_part",
        "clientMessageId": "c1",
        "clientAttachmentId": "a1",
        "name": "notes.txt",
        "mediaType": "text/plain",
        "size": 5,
        "offset": 0,
        "data": "aGVsbG8=",
    }
    return json.dumps(frame | fields)


def test_the_largest_part_with_the_longest_ids_and_name_is_under_the_frame_limit():
    frame = p.AttachmentPart(
        client_message_id=LONGEST_ID,
        client_attachment_id=LONGEST_ID,
        name="\u0001" * p.MAX_ATTACHMENT_NAME,
        media_type="image/webp",
        size=2**62,
        offset=2**61,
        data=b"\xff" * p.ATTACHMENT_PART_BYTES,
    )
    encoded = p.encode(frame)
    assert len(encoded) < p.MAX_FRAME_BYTES
    assert p.decode_client(encoded) == frame


def test_a_part_decodes_its_base64_data():
    frame = p.decode_client(part())
    assert isinstance(frame, p.AttachmentPart) and frame.data == b"hello"


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"mediaType": "image/bmp"}, "'mediaType' 'image/bmp' cannot be sent to a model"),
        ({"offset": 3}, "'offset' plus the bytes of 'data' is more than 'size'"),
        ({"data": ""}, "'data' must not be empty"),
        ({"name": ""}, "name"),
    ],
)
def test_a_bad_part_is_refused_in_words_and_names_its_message(fields, words):
    with pytest.raises(p.ProtocolError, match=words) as refused:
        p.decode_client(part(**fields))
    assert refused.value.ids.client_message_id == "c1"


def test_a_part_larger_than_a_part_may_be_is_refused():
    data = "A" * ((p.ATTACHMENT_PART_BYTES + 3) // 3 * 4 + 4)
    with pytest.raises(p.ProtocolError, match="more than 46080 bytes"):
        p.decode_client(part(data=data, size=p.ATTACHMENT_PART_BYTES * 2))


def test_a_message_with_files_may_have_no_text_but_not_name_a_file_twice():
    frame = p.decode_client('{"type": "message", "chatId": "c1", "clientMessageId": "m", "attachments": ["a1"]}')
    assert isinstance(frame, p.Message) and frame.attachments == ["a1"] and frame.content == ""
    with pytest.raises(p.ProtocolError, match="names a file twice"):
        p.decode_client('{"type": "message", "chatId": "c1", "content": "x", "attachments": ["a1", "a1"]}')
    with pytest.raises(p.ProtocolError, match="'content' must not be empty"):
        p.decode_client('{"type": "message", "chatId": "c1", "content": " ", "attachments": []}')
