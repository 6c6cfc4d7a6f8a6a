"""``ClientEvents`` and ``Ending``: the client's frames as the app's typed Messages, in order, with no app."""

from __future__ import annotations

import pytest
from textual.message import Message

from mfu_tui.client import MessageReloaded
from mfu_tui.protocol import Ack, Cancelled, Chunk, Complete, Pong, Resync
from mfu_tui.tui.client_events import ClientEvents
from mfu_tui.tui.endings import Ending, stored_status
from mfu_tui.tui.widgets.message_view import BATCH_CHARS


def posting() -> tuple[ClientEvents, list[Message]]:
    posted: list[Message] = []

    def post(message: Message) -> bool:
        posted.append(message)
        return True

    return ClientEvents(post), posted


def chunk(seq: int, content: str = "x", *, message_id: str = "a1", chat_id: str = "c1") -> Chunk:
    return Chunk(chat_id=chat_id, message_id=message_id, seq=seq, content=content)


def test_chunks_that_wait_join_one_batch_until_the_app_takes_it() -> None:
    events, posted = posting()
    for seq in (1, 2, 3):
        events.frame(chunk(seq))
    [batch] = posted
    assert isinstance(batch, ClientEvents.AnswerChunks)
    assert [c.seq for c in batch.chunks] == [1, 2, 3] and events.posted == 1
    batch.seal()  # the app shows these: the next chunk is the next batch
    events.frame(chunk(4))
    assert len(posted) == 2
    assert [c.seq for c in batch.chunks] == [1, 2, 3]
    assert isinstance(posted[1], ClientEvents.AnswerChunks) and [c.seq for c in posted[1].chunks] == [4]


def test_no_chunk_joins_a_batch_across_another_event_nor_another_answer() -> None:
    events, posted = posting()
    events.frame(chunk(1))
    events.frame(Ack(client_message_id="m2", chat_id="c1", message_id="u2", reply_id="a2"))
    events.frame(chunk(2))  # after the ack: not reordered before it
    events.frame(chunk(1, message_id="a2"))
    events.frame(chunk(1, message_id="a1", chat_id="c2"))
    kinds = [type(message).__name__ for message in posted]
    assert kinds == ["AnswerChunks", "MessageStored", "AnswerChunks", "AnswerChunks", "AnswerChunks"]
    assert [len(m.chunks) for m in posted if isinstance(m, ClientEvents.AnswerChunks)] == [1, 1, 1, 1]


def test_a_batch_holds_at_most_batch_chars() -> None:
    events, posted = posting()
    piece = "y" * (BATCH_CHARS // 4)
    for seq in range(1, 10):
        events.frame(chunk(seq, piece))
    sizes = [sum(len(c.content) for c in m.chunks) for m in posted if isinstance(m, ClientEvents.AnswerChunks)]
    assert sizes == [BATCH_CHARS, BATCH_CHARS, len(piece)]


def test_a_loaded_chat_posted_by_the_app_closes_the_batch_before_it() -> None:
    from datetime import UTC, datetime

    from mfu_tui.protocol import ChatDetail, ChatSummary

    events, posted = posting()
    events.frame(chunk(1))
    detail = ChatDetail(chat=ChatSummary(id="c1", title="t", updated_at=datetime(2026, 1, 1, tzinfo=UTC)), messages=[])
    events.post(ClientEvents.ChatLoaded("c1", detail))
    events.frame(chunk(2))
    assert [type(m).__name__ for m in posted] == ["AnswerChunks", "ChatLoaded", "AnswerChunks"]


def test_frames_the_app_does_not_show_are_not_posted() -> None:
    events, posted = posting()
    events.frame(Pong(ts=1.0))
    events.frame(Resync(chat_id="c1", message_id="a1"))
    assert posted == [] and events.posted == 0


def test_an_end_says_how_the_answer_ended_as_a_type() -> None:
    events, posted = posting()
    events.frame(Complete(chat_id="c1", message_id="a1", seq=3, finish_reason="length"))
    events.frame(Cancelled(chat_id="c1", message_id="a2", seq=1))
    events.frame(Complete(chat_id="c1", message_id="a3", seq=1, finish_reason="something new"))
    endings = [m.ending for m in posted if isinstance(m, ClientEvents.AnswerEnded)]
    assert endings == [Ending.LENGTH, Ending.CANCELLED, Ending.COMPLETE]


def test_a_reloaded_answer_says_whether_it_still_streams() -> None:
    events, posted = posting()
    events.frame(MessageReloaded("c1", "a1", "so far", "streaming"))
    events.frame(MessageReloaded("c1", "a2", "all", "error", finish_reason="interrupted"))
    assert [m.ending for m in posted if isinstance(m, ClientEvents.Reloaded)] == [None, Ending.INTERRUPTED]


@pytest.mark.parametrize(
    ("status", "finish_reason", "shown"),
    [
        ("complete", "stop", "complete"),
        ("complete", "content_filter", "filtered"),
        ("complete", "tool_calls", "tool-call"),
        ("error", "interrupted", "interrupted"),  # the server stopped: not the model failing
        ("error", None, "error"),
        ("cancelled", None, "cancelled"),
        ("streaming", None, "streaming"),
    ],
)
def test_a_stored_message_shows_how_it_ended(status: str, finish_reason: str | None, shown: str) -> None:
    assert stored_status(status, finish_reason) == shown  # type: ignore[arg-type]
