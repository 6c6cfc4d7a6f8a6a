"""The hub's hold and release around a replay: nothing a replay sent is sent again, nothing is lost."""

from __future__ import annotations

from dataclasses import dataclass, field

from mfu_tui.protocol import Chunk, Complete, decode_server, encode
from mfu_tui.server.handlers import _replayed
from mfu_tui.server.hub import LocalHub
from mfu_tui.server.wire import WireFrame, payload_of, text_frame


@dataclass(eq=False)
class Inbox:
    """A receiver that keeps what it is sent, as a connection's queue would."""

    user: str = "alice"
    frames: list[bytes] = field(default_factory=list)

    def deliver(self, frame: WireFrame) -> None:
        self.frames.append(payload_of(frame))

    def reply(self, data: bytes) -> None:
        self.frames.append(data)

    def seqs(self) -> list[int]:
        return [frame.seq for frame in map(decode_server, self.frames) if isinstance(frame, Chunk)]


def chunk(seq: int, message_id: str = "m1") -> bytes:
    return encode(Chunk(chat_id="c1", message_id=message_id, seq=seq, content=f"w{seq} "))


def test_a_replayed_chunk_whose_copy_comes_after_the_release_is_not_sent_twice():
    hub, inbox = LocalHub(), Inbox()
    hub.hold(inbox, "c1")
    hub.publish_chat("c1", chunk(5))  # published while the replay read the store: held
    for seq in (5, 6):  # the replay, from the store: 6 was stored, its copy not yet published
        inbox.reply(chunk(seq))
    held = hub.release(inbox, "c1", ("m1", 6))
    assert [_replayed(frame, "m1", 6) for frame in held] == [True]
    hub.publish_chat("c1", chunk(6))  # the late copy
    hub.publish_chat("c1", chunk(7, "m2"))  # another answer's chunk goes through
    hub.publish_chat("c1", chunk(7))
    hub.publish_chat("c1", encode(Complete(chat_id="c1", message_id="m1", seq=7)))
    assert inbox.seqs() == [5, 6, 7, 7]
    assert decode_server(inbox.frames[-1]) == Complete(chat_id="c1", message_id="m1", seq=7)


def test_frames_of_the_wire_read_back_as_their_json_whatever_their_length():
    for size in (0, 125, 126, 65535, 65536, 70000):
        payload = b"x" * size
        assert payload_of(text_frame(payload)) == payload
