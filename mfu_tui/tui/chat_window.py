"""The open chat as plain records: which messages are loaded, how tall each is, which get widgets.

A chat of 10,000 messages cannot have 10,000 widgets (each holds most of a
MiB and every one mounted slows the next). The conversation keeps every
message it has loaded here, by its index in the chat, and mounts widgets only
for a bounded range around what is on screen; the rest is stood for by their
heights: measured once seen, estimated from the text until then. The heights
are kept in a Fenwick tree, so the lines above any message, and the message
at any line, cost O(log n) however long the chat. Nothing here knows
Textual, so it is tested as plain code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from mfu_tui.protocol import AttachmentInfo, StoredMessage
from mfu_tui.tui.endings import stored_status

#: Lines a message takes besides its text: the role line and the margin below.
FRAME_LINES = 2
#: Columns a message's text loses to its border and padding.
FRAME_COLUMNS = 4
#: The height a message not loaded yet stands for (one line of text).
UNLOADED_LINES = 1 + FRAME_LINES


def estimate_height(text: str, width: int) -> int:
    """The lines a message of ``text`` likely takes at ``width`` columns (before it is drawn once)."""
    columns = max(1, width - FRAME_COLUMNS)
    lines = sum(max(1, -(-len(line) // columns)) for line in text.split("\n"))
    return lines + FRAME_LINES


def _shown_status(message: StoredMessage) -> str:
    """The status to show for a stored message (how it ended says more than its status)."""
    return "truncated" if message.truncated else stored_status(message.status, message.finish_reason)


@dataclass
class Entry:
    """One message of the open chat as the conversation shows it, mounted or not."""

    role: str
    """``user`` or ``assistant``."""
    text: str
    """The text known so far (a streaming answer's grows here while it has no widget)."""
    message_id: str | None
    """The stored id; ``None`` for a message sent from here until the server acks it."""
    status: str
    """The status shown (see ``MessageView.status``)."""
    seq: int = 0
    """For an answer: the ``seq`` of the last chunk in ``text``."""
    attachments: list[AttachmentInfo] = field(default_factory=list)
    """The files sent with a user message."""
    client_message_id: str | None = None
    """For a user message sent from here, its ``clientMessageId``."""
    record: StoredMessage | None = None
    """The message as the server stored it, when it came in a page."""
    reasoning: str = ""
    """For an answer: what the model reasoned before it, shown apart (see ``ReasoningSection``)."""
    reasoning_expanded: bool = False
    """Whether its reasoning is shown whole, kept while it has no widget."""

    @classmethod
    def of(cls, message: StoredMessage) -> Entry:
        """The entry of a stored message."""
        return cls(
            message.role,
            message.content,
            message.id,
            _shown_status(message),
            message.seq,
            list(message.attachments),
            message.client_message_id,
            message,
            message.reasoning,
        )


class _Heights:
    """Heights by index, with sums of any prefix and the index at any line in O(log n) (a Fenwick tree)."""

    def __init__(self, heights: list[int]) -> None:
        self.values = heights
        self._tree = [0] * (len(heights) + 1)
        for index, height in enumerate(heights, start=1):
            self._tree[index] += height
            parent = index + (index & -index)
            if parent <= len(heights):
                self._tree[parent] += self._tree[index]

    def __len__(self) -> int:
        return len(self.values)

    def set(self, index: int, height: int) -> None:
        delta, self.values[index] = height - self.values[index], height
        position = index + 1
        while position <= len(self.values):
            self._tree[position] += delta
            position += position & -position

    def prefix(self, stop: int) -> int:
        """The sum of the heights before index ``stop``."""
        total, position = 0, min(stop, len(self.values))
        while position > 0:
            total += self._tree[position]
            position -= position & -position
        return total

    def index_at(self, line: int) -> int:
        """The index whose span holds ``line`` (the last one past the end)."""
        position, step = 0, 1 << len(self.values).bit_length()
        while step:
            if position + step <= len(self.values) and self._tree[position + step] <= line:
                position += step
                line -= self._tree[position]
            step >>= 1
        return min(position, len(self.values) - 1)


@dataclass
class ChatWindow:
    """The loaded messages of one chat, by index (0: the chat's first), and their heights at ``width``."""

    total: int = 0
    """How many messages the chat has, loaded or not."""
    width: int = 80
    """The columns the messages are laid out in (heights are for this width)."""
    entries: dict[int, Entry] = field(default_factory=dict)
    """The loaded messages, by index."""
    _measured: dict[int, int] = field(default_factory=dict)
    _ids: dict[str, int] = field(default_factory=dict)
    _heights: _Heights = field(default_factory=lambda: _Heights([]))

    def __post_init__(self) -> None:
        self._rebuild()

    def _rebuild(self, capacity: int = 0) -> None:
        heights = [self._height_of(index) for index in range(self.total)]
        heights += [0] * (max(capacity, self.total) - self.total)
        self._heights = _Heights(heights)

    def _height_of(self, index: int) -> int:
        if index >= self.total:
            return 0
        entry = self.entries.get(index)
        if entry is None:
            return UNLOADED_LINES
        measured = self._measured.get(index)
        return measured if measured is not None else estimate_height(entry.text, self.width)

    def _grow(self, total: int) -> None:
        """The chat has ``total`` messages now (more than before)."""
        if total <= self.total:
            return
        old, self.total = self.total, total
        if total > len(self._heights):
            self._rebuild(capacity=2 * total)
        else:
            for index in range(old, total):
                self._heights.set(index, UNLOADED_LINES)

    def _reheight(self, index: int) -> None:
        self._heights.set(index, self._height_of(index))

    # --- what is loaded -------------------------------------------------------

    def place(self, offset: int, messages: list[StoredMessage], total: int) -> None:
        """Keep a page of ``messages`` whose first is at index ``offset``, in a chat of ``total``."""
        self._grow(max(total, offset + len(messages)))
        for index, message in enumerate(messages, start=offset):
            if index in self.entries:
                continue  # the one shown may be newer than the page (a streaming answer's chunks)
            self.entries[index] = Entry.of(message)
            self._ids[message.id] = index
            self._reheight(index)

    def append(self, entry: Entry) -> int:
        """A new message at the bottom; its index."""
        index = self.total
        self._grow(index + 1)
        self.entries[index] = entry
        if entry.message_id is not None:
            self._ids[entry.message_id] = index
        self._reheight(index)
        return index

    def truncate(self, total: int) -> None:
        """Forget the messages from index ``total`` on (an edit with regenerate dropped them)."""
        for index in range(total, self.total):
            entry = self.entries.pop(index, None)
            self._measured.pop(index, None)
            if entry is not None and entry.message_id is not None:
                self._ids.pop(entry.message_id, None)
        self.total = min(self.total, total)
        self._rebuild()

    def missing(self, wanted: range) -> int | None:
        """The first index in ``wanted`` that is not loaded, if any."""
        return next((index for index in wanted if index not in self.entries), None)

    def index_of(self, message_id: str) -> int | None:
        """The index of a loaded message."""
        return self._ids.get(message_id)

    def made_whole(self, index: int, text: str) -> Entry:
        """Message ``index``, which came cut, has its whole ``text`` now: no longer shown as cut. Its entry."""
        entry = self.entries[index]
        if entry.record is not None:
            entry.record = msgspec.structs.replace(entry.record, content=text, truncated=False)
            entry.status = _shown_status(entry.record)
        entry.text = text
        self.changed(index)
        return entry

    def stored_as(self, index: int, message_id: str) -> None:
        """Message ``index`` (sent from here) is stored now with ``message_id``."""
        self.entries[index].message_id = message_id
        self._ids[message_id] = index

    # --- heights ------------------------------------------------------------------

    def resize(self, width: int) -> None:
        """Lay the messages out at ``width`` columns: measured heights are forgotten, the rest estimated again."""
        if width != self.width:
            self.width = width
            self._measured.clear()
            self._rebuild()

    def changed(self, index: int) -> None:
        """Message ``index``'s text changed: its height is estimated again until measured."""
        self._measured.pop(index, None)
        self._reheight(index)

    def measured(self, index: int, height: int) -> None:
        """Remember the height message ``index`` took when drawn at ``width``."""
        if index in self.entries:
            self._measured[index] = height
            self._reheight(index)

    def height(self, index: int) -> int:
        """The height of message ``index``: measured if it was drawn, else estimated."""
        return self._heights.values[index] if 0 <= index < self.total else 0

    def span_height(self, span: range) -> int:
        """The height of the messages in ``span``, one after the other."""
        if not span:
            return 0
        return self._heights.prefix(span.stop) - self._heights.prefix(span.start)

    def index_at(self, line: int) -> int:
        """The message at ``line`` of the whole chat laid out (the last one past the end)."""
        if self.total == 0:
            return 0
        return min(self._heights.index_at(max(0, line)), self.total - 1)

    def around(self, index: int, size: int) -> range:
        """``size`` indices (fewer if the chat is shorter) with ``index`` near their middle, inside the chat."""
        size = min(size, self.total)
        start = min(max(0, index - size // 2), self.total - size)
        return range(start, start + size)
