"""``import_chat``: what a part may carry, and the bounds that keep it within one frame."""

import json

import pytest

from mfu_tui import protocol as p
from tests.protocol.examples import WHEN


def frame(**changes) -> str:
    wire = {
        "type": "import_chat",
        "requestId": "r1",
        "importKey": "chatgpt:conv-1",
        "title": "Monads",
        "createdAt": "2023-03-01T12:00:00Z",
        "updatedAt": "2023-03-01T12:00:00Z",
        "first": 0,
        "total": 2,
        "messages": [{"role": "user", "content": "What is a monad?", "createdAt": None, "continued": False}],
        **changes,
    }
    return json.dumps(wire)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"first": 2}, "'first' plus the messages sent is more than 'total'"),
        ({"messages": []}, "'messages'"),
        ({"messages": [{"role": "user", "content": "x", "continued": True}]}, "cannot be 'continued'"),
        ({"messages": [{"role": "system", "content": "x"}]}, r"'messages\[0\]\.role'"),
        ({"messages": [{"role": "user", "content": ""}]}, r"'messages\[0\]\.content'"),
        ({"title": ""}, "'title'"),
        ({"total": 0}, "'total'"),
    ],
)
def test_a_part_that_cannot_be_stored_is_a_bad_request_naming_the_problem(changes, problem):
    with pytest.raises(p.ProtocolError, match=problem) as refused:
        p.decode_client(frame(**changes))
    assert not isinstance(refused.value, p.FrameTooLarge)
    assert refused.value.ids.request_id == "r1"


def test_an_entry_of_the_longest_text_fits_in_a_frame_even_if_every_character_is_escaped():
    worst = "\x01" * p.IMPORT_PIECE_CHARS  # each is \u0001 on the wire: six bytes
    part = p.ImportChat(
        request_id="r" * p.MAX_ID_LENGTH,
        import_key="k" * p.MAX_ID_LENGTH,
        title="\x01" * 200,
        created_at=WHEN,
        updated_at=WHEN,
        first=0,
        total=1,
        messages=[p.ImportedMessage(role="assistant", content=worst, created_at=WHEN)],
    )
    assert len(p.encode(part)) <= p.MAX_FRAME_BYTES
    assert p.decode_client(p.encode(part)) == part
    with pytest.raises(p.ProtocolError, match=r"'messages\[0\]\.content' must be a string of length <= 8000"):
        p.decode_client(frame(messages=[{"role": "user", "content": "x" * (p.IMPORT_PIECE_CHARS + 1)}]))


def test_a_part_over_64_kib_is_too_large():
    many = [{"role": "user", "content": "y" * 8000}] * 9
    with pytest.raises(p.FrameTooLarge):
        p.decode_client(frame(messages=many, total=9))
