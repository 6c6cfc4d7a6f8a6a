"""Reassemble one assistant message from its stream frames.

The server numbers the chunks of a message ``1, 2, 3, ...``. Over a flaky
network a client may see them twice (replayed after ``resume``), out of
order, or with holes. ``StreamAssembler`` turns whatever arrives into the
text of the longest gap-free prefix, which is exactly what the user may be
shown, and says what is missing so the caller can ask for it with
``resume``. Chunks of the model's reasoning (``kind: "reasoning"``) share
the numbering and are kept apart, in ``reasoning``.

Feeding is O(size of the frame): the cost of a chunk does not grow with the
length of the answer.
"""

from __future__ import annotations

from typing import Literal

from mfu_tui.protocol.frames import Cancelled, Chunk, Complete, StreamFrame

Outcome = Literal["complete", "cancelled"]


class StreamAssembler:
    """Contiguous text of one assistant message, built from its stream frames.

    Args:
        chat_id: The chat the message belongs to.
        message_id: The assistant message.
        text: Text already known (for example loaded with ``get_chat``).
        last_seq: The ``seq`` of the last chunk included in ``text``.
        reasoning: Reasoning already known, with ``text``.
    """

    def __init__(
        self, chat_id: str, message_id: str, *, text: str = "", last_seq: int = 0, reasoning: str = ""
    ) -> None:
        self.chat_id = chat_id
        self.message_id = message_id
        self._pieces: list[str] = [text] if text else []
        self._joined: str | None = text
        #: The reasoning of chunks ``1..last_seq``: short next to the answer, so joined on each read.
        self._reasoning: list[str] = [reasoning] if reasoning else []
        self._last_seq = last_seq
        #: Chunks that arrived ahead of a gap, by seq.
        self._ahead: dict[int, Chunk] = {}
        self._end_seq: int | None = None
        self._end: Complete | Cancelled | None = None

    @property
    def text(self) -> str:
        """The text of chunks ``1..last_seq``: everything that may be shown."""
        if self._joined is None:
            self._joined = "".join(self._pieces)
            self._pieces = [self._joined] if self._joined else []
        return self._joined

    @property
    def reasoning(self) -> str:
        """The reasoning among chunks ``1..last_seq``, apart from ``text``."""
        return "".join(self._reasoning)

    @property
    def last_seq(self) -> int:
        """The last ``seq`` of the gap-free prefix (0 when nothing arrived); send it in ``resume``."""
        return self._last_seq

    @property
    def missing_seq(self) -> int | None:
        """The first ``seq`` known to be missing, or ``None`` if nothing is known missing.

        A chunk is known missing when a later chunk, or the end of the
        message, has arrived before it.
        """
        if self._ahead or (self._end_seq is not None and self._last_seq < self._end_seq):
            return self._last_seq + 1
        return None

    @property
    def finished(self) -> bool:
        """True once the end frame arrived and every chunk up to it is in ``text``."""
        return self._end_seq is not None and self._last_seq >= self._end_seq

    @property
    def outcome(self) -> Outcome | None:
        """``"complete"`` or ``"cancelled"`` once ``finished``, else ``None``."""
        if not self.finished or self._end is None:
            return None
        return "complete" if isinstance(self._end, Complete) else "cancelled"

    @property
    def finish_reason(self) -> str | None:
        """The ``finishReason`` of ``complete`` (``"stop"``, ``"length"``...), once finished."""
        if self.finished and isinstance(self._end, Complete):
            return self._end.finish_reason
        return None

    def feed(self, frame: StreamFrame) -> str:
        """Take one frame; return the answer's text it newly made contiguous ("" if none).

        Duplicates, chunks past the end, and frames after the message has
        finished are ignored. Returned pieces concatenated equal ``text``.

        Raises:
            ValueError: the frame belongs to another message.
        """
        if frame.message_id != self.message_id or frame.chat_id != self.chat_id:
            raise ValueError(f"frame for message {frame.message_id!r} fed to the assembler of {self.message_id!r}")
        if isinstance(frame, Chunk):
            return self._feed_chunk(frame)
        if self._end is None:
            self._end = frame
            self._end_seq = frame.seq
            # A cancel can end the message before chunks that were in flight.
            for seq in [seq for seq in self._ahead if seq > frame.seq]:
                del self._ahead[seq]
        return ""

    def _feed_chunk(self, chunk: Chunk) -> str:
        seq = chunk.seq
        if seq <= self._last_seq or seq in self._ahead:
            return ""
        if self._end_seq is not None and seq > self._end_seq:
            return ""
        if seq != self._last_seq + 1:
            self._ahead[seq] = chunk
            return ""
        added: list[str] = []
        following: Chunk | None = chunk
        while following is not None:
            (self._reasoning if following.kind == "reasoning" else added).append(following.content)
            self._last_seq = following.seq
            following = self._ahead.pop(self._last_seq + 1, None)
        delta = "".join(added)
        if delta:
            self._pieces.append(delta)
            self._joined = None
        return delta
