"""Stream delivery: each chunk once, in ``seq`` order, with no gap, across reconnects.

Pure: the tracker says which frames to hand to the UI and which ``resume``
to send; the worker does the sending. It wraps one protocol
``StreamAssembler`` per assistant message in flight.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from mfu_tui.protocol import (
    Cancelled,
    Chunk,
    Complete,
    Resume,
    StreamAssembler,
    StreamFrame,
)

#: How many finished messages are remembered, to drop their late replays.
FINISHED_MEMORY = 1024


@dataclass
class _Stream:
    assembler: StreamAssembler
    #: Chunks that arrived ahead of a gap, handed over once the gap is filled.
    ahead: dict[int, Chunk] = field(default_factory=dict)
    end: Complete | Cancelled | None = None
    #: ``last_seq`` of the ``resume`` asked for on this connection, if any. Its replay
    #: brings every chunk after that, in order, then follows live: one is enough, until
    #: the end comes (it may name chunks that were stored and never sent).
    resumed_from: int | None = None


@dataclass(slots=True)
class Delivery:
    """What one frame led to."""

    #: Chunks for the UI, in order.
    chunks: list[Chunk] = field(default_factory=list)
    #: The message's end, for the UI after ``chunks``, when it just finished.
    end: Complete | Cancelled | None = None
    #: A ``resume`` to send, when a gap was found.
    resume: Resume | None = None

    @property
    def frames(self) -> list[StreamFrame]:
        """Every frame for the UI, in order: ``chunks``, then ``end``."""
        return [*self.chunks, self.end] if self.end is not None else list(self.chunks)


class StreamTracker:
    """The assistant messages in flight on this client, one assembler each."""

    def __init__(self) -> None:
        self._streams: dict[str, _Stream] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        #: Messages being reloaded after ``resync``: their frames are dropped meanwhile.
        self._reloading: set[str] = set()

    def expect(self, chat_id: str, message_id: str) -> bool:
        """Track a message before its first chunk (its ``ack`` named it), so a reconnect resumes it.

        Returns False if the message already finished (its ``ack`` came late).
        """
        if message_id in self._finished:
            return False
        if message_id not in self._streams:
            self._streams[message_id] = _Stream(StreamAssembler(chat_id, message_id))
        return True

    def in_flight(self) -> list[tuple[str, str]]:
        """``(chat_id, message_id)`` of every unfinished message."""
        return [(s.assembler.chat_id, m) for m, s in self._streams.items() if m not in self._reloading]

    def feed(self, frame: StreamFrame) -> Delivery:
        """Take one ``chunk``, ``complete`` or ``cancel`` frame."""
        message_id = frame.message_id
        if message_id in self._finished or message_id in self._reloading:
            return Delivery()
        stream = self._streams.get(message_id)
        if stream is None:
            stream = self._streams[message_id] = _Stream(StreamAssembler(frame.chat_id, message_id))
        assembler = stream.assembler
        before = assembler.last_seq
        assembler.feed(frame)
        delivery = Delivery()
        if isinstance(frame, Chunk):
            if assembler.last_seq > before:
                delivery.chunks.append(frame)
                for seq in range(before + 2, assembler.last_seq + 1):
                    delivery.chunks.append(stream.ahead.pop(seq))
            elif frame.seq > before + 1 and (stream.end is None or frame.seq <= stream.end.seq):
                stream.ahead.setdefault(frame.seq, frame)
        elif stream.end is None:
            stream.end = frame
            stream.ahead = {seq: chunk for seq, chunk in stream.ahead.items() if seq <= frame.seq}
            # An end may name chunks that no replay brought and none will: stored by a node that
            # then lost its lease, or died, before sending them. Ask for them, even after a resume.
            stream.resumed_from = None
        if assembler.finished and stream.end is not None:
            delivery.end = stream.end
            self._finish(message_id)
        elif assembler.missing_seq is not None and stream.resumed_from is None:
            stream.resumed_from = assembler.last_seq
            delivery.resume = self._resume(stream)
        return delivery

    def resumes(self) -> list[Resume]:
        """``resume`` frames for every unfinished message, to send after a reconnect."""
        frames = []
        for message_id, stream in self._streams.items():
            if message_id not in self._reloading:
                stream.resumed_from = stream.assembler.last_seq
                frames.append(self._resume(stream))
        return frames

    def resumes_for(self, message_id: str) -> list[Resume]:
        """The ``resume`` for one message if it is unfinished (after the ack of a resent message)."""
        stream = self._streams.get(message_id)
        if stream is None or message_id in self._reloading:
            return []
        stream.resumed_from = stream.assembler.last_seq
        return [self._resume(stream)]

    def start_reload(self, message_id: str) -> bool:
        """A ``resync`` came: drop this message's frames until ``reloaded``.

        Returns False if there is nothing to reload: the message is not followed (it
        finished, or was never seen), or its reload runs already (two resumes were answered).
        """
        if message_id not in self._streams or message_id in self._reloading:
            return False
        self._reloading.add(message_id)
        return True

    def reloaded(
        self, chat_id: str, message_id: str, *, content: str, seq: int, streaming: bool, reasoning: str = ""
    ) -> Resume | None:
        """The stored message (answer and reasoning) was loaded; returns the ``resume`` to follow it if streaming."""
        self._reloading.discard(message_id)
        self._streams.pop(message_id, None)
        if not streaming:
            self._finish(message_id)
            return None
        stream = _Stream(StreamAssembler(chat_id, message_id, text=content, last_seq=seq, reasoning=reasoning))
        stream.resumed_from = seq
        self._streams[message_id] = stream
        return self._resume(stream)

    def gone(self, message_id: str) -> bool:
        """The server no longer has this message (its chat was deleted): stop following it.

        Returns True if it was being followed.
        """
        followed = message_id in self._streams
        self._reloading.discard(message_id)
        self._finish(message_id)
        return followed

    def reload_failed(self, message_id: str) -> None:
        """The reload failed: keep the message so that the next reconnect resumes it again."""
        self._reloading.discard(message_id)

    def _finish(self, message_id: str) -> None:
        self._streams.pop(message_id, None)
        self._finished[message_id] = None
        while len(self._finished) > FINISHED_MEMORY:
            self._finished.popitem(last=False)

    @staticmethod
    def _resume(stream: _Stream) -> Resume:
        assembler = stream.assembler
        return Resume(chat_id=assembler.chat_id, message_id=assembler.message_id, last_seq=assembler.last_seq)
