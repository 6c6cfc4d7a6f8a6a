"""The open chat as plain records: which messages are loaded, how tall each is, which get widgets.

A chat of 10,000 messages cannot have 10,000 widgets (each holds most of a
MiB and every one mounted slows the next). The conversation keeps every
message it has loaded here, by its index in the chat, and mounts widgets only
for a bounded range around what is on screen; the rest is stood for by their
heights: measured once seen, estimated from the text until then. Nothing here
knows Textual, so it is tested as plain code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mfu_tui.protocol import StoredMessage

#: Lines a message takes besides its text: the role line and the margin below.
FRAME_LINES = 2
#: Columns a message's text loses to its border and padding.
FRAME_COLUMNS = 4


def estimate_height(text: str, width: int) -> int:
    """The lines a message of ``text`` likely takes at ``width`` columns (before it is drawn once)."""
    columns = max(1, width - FRAME_COLUMNS)
    lines = sum(max(1, -(-len(line) // columns)) for line in text.split("\n"))
    return lines + FRAME_LINES


@dataclass
class ChatWindow:
    """The loaded messages of one chat, by index (0: the chat's first), and their heights."""

    total: int = 0
    """How many messages the chat has, loaded or not."""
    records: dict[int, StoredMessage] = field(default_factory=dict)
    """The loaded messages, by index."""
    heights: dict[tuple[str, int], int] = field(default_factory=dict)
    """Measured heights, by (message id, width)."""

    def place(self, offset: int, messages: list[StoredMessage], total: int) -> None:
        """Keep a page of ``messages`` whose first is at index ``offset``, in a chat of ``total``."""
        self.total = max(total, offset + len(messages))
        for index, message in enumerate(messages, start=offset):
            self.records[index] = message

    def append(self, message: StoredMessage) -> int:
        """A new message at the bottom; its index."""
        index = self.total
        self.place(index, [message], index + 1)
        return index

    def missing(self, wanted: range) -> int | None:
        """The first index in ``wanted`` that is not loaded, if any."""
        return next((index for index in wanted if index not in self.records), None)

    def height(self, index: int, width: int) -> int:
        """The height of message ``index``: measured if it was drawn at this width, else estimated."""
        message = self.records.get(index)
        if message is None:
            return FRAME_LINES + 1
        measured = self.heights.get((message.id, width))
        return measured if measured is not None else estimate_height(message.content, width)

    def measured(self, index: int, width: int, height: int) -> None:
        """Remember the height message ``index`` took when drawn at ``width``."""
        if (message := self.records.get(index)) is not None:
            self.heights[message.id, width] = height

    def span_height(self, span: range, width: int) -> int:
        """The height of the messages in ``span``, one after the other."""
        return sum(self.height(index, width) for index in span)

    def around(self, index: int, size: int) -> range:
        """``size`` indices (fewer if the chat is shorter) with ``index`` near their middle, inside the chat."""
        size = min(size, self.total)
        start = min(max(0, index - size // 2), self.total - size)
        return range(start, start + size)

    def index_of(self, message_id: str) -> int | None:
        """The index of a loaded message."""
        return next((index for index, message in self.records.items() if message.id == message_id), None)
