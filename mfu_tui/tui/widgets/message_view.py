"""One message of the conversation: a user's words or an assistant's Markdown."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal, cast

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Static

from mfu_tui.protocol import AttachmentInfo, StoredMessage
from mfu_tui.tui.stream_split import Part, SegmentCutter
from mfu_tui.tui.widgets.attachment_chips import AttachmentChips
from mfu_tui.tui.widgets.reasoning_section import ReasoningSection

if TYPE_CHECKING:
    from textual.widgets.markdown import MarkdownStream

    from mfu_tui.tui.widgets.frozen_parts import FrozenParts
    from mfu_tui.tui.widgets.markdown_segments import SegmentMarkdown

Role = Literal["user", "assistant"]

#: See ``MessageView.segment_chars``.
SEGMENT_CHARS = 2000

#: Characters of queued chunks the app gives one ``append`` at most. Each append costs a layout and a
#: repaint of the conversation whatever its size, and the finished parts it makes are drawn only if seen
#: (``FrozenParts``), so an app behind a fast stream catches up in a few large appends (``bench/render``,
#: 20,000 words of sections: 7 appends of up to 32,000 took 0.16-0.20 s of CPU, 14 of 8,000 0.18-0.27 s);
#: bounded, so that one append (this much text cut into parts) still takes milliseconds.
BATCH_CHARS = 16 * SEGMENT_CHARS

#: Fenced code blocks (``` or ~~~), for "copy the code block".
_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})[^\n]*\n(?P<code>.*?)^(?P=fence)[ \t]*$", re.MULTILINE | re.DOTALL)

#: A fence line, opening or closing a code block.
_FENCE_LINE = re.compile(r"^ {0,3}(`{3,}|~{3,})", re.MULTILINE)


def _without_empty_open_fence(source: str) -> str:
    """``source`` without a code block it opened at its very end and never wrote into.

    An answer stopped just after its fence would show an empty code block:
    lines of nothing before ``cancelled``. Only what is drawn changes; the
    text (copy, export) stays as stored.
    """
    fences = list(_FENCE_LINE.finditer(source))
    if len(fences) % 2 and not source[fences[-1].end() :].partition("\n")[2].strip():
        return source[: fences[-1].start()].rstrip() + "\n"
    return source


#: What the line under an assistant message says for each status.
STATUS_NOTES = {
    "sending": "sending… (kept on disk until the server has it)",
    "streaming": "generating…",
    "cancelled": "cancelled",
    "interrupted": "interrupted: the server stopped before the end",
    "error": "failed: the model did not answer",
    "unstored": "failed: the server could not store the answer",
    "length": "cut off: the answer reached the length limit",
    "filtered": "stopped by the model server's content filter",
    "tool-call": "ended asking to call a tool, which this app does not offer",
    "truncated": "shown in part: the rest of this long message is not loaded yet",
}


class MessageView(Vertical):
    """A message in the conversation pane.

    User messages are plain text (what was typed is shown as typed);
    assistant messages are Markdown with highlighted code blocks. While an
    answer streams, pieces go through Textual's ``MarkdownStream``, which
    batches them, into a Markdown widget; every ``segment_chars`` characters
    (at a paragraph break, or inside a paragraph that never ends: see
    ``stream_split``) that part is frozen into the message's ``FrozenParts``
    (one widget for all of them, which draws only what is seen) and the
    Markdown widget starts again, so the cost of a chunk does not grow with
    the answer. At the end the stream stops and the last part is
    rendered once more, whole. A long text set at once (a reload) is cut
    the same way.
    """

    DEFAULT_CSS = """
    MessageView {
        height: auto;
        padding: 0 1;
        margin: 0 0 1 0;
        & > .role { color: $text-muted; text-style: bold; height: 1; }
        & > .body { height: auto; }
        & > .note { color: $warning; height: 1; display: none; }
        & > Markdown { margin: 0; padding: 0; background: transparent; }
        & > Markdown > .-first { margin-top: 0; }
        &.-user { border-left: wide $primary; background: $boost; }
        &.-assistant { border-left: wide $success 50%; }
        &.-cancelled > .note, &.-interrupted > .note, &.-error > .note,
        &.-streaming > .note, &.-length > .note, &.-sending > .note, &.-truncated > .note,
        &.-filtered > .note, &.-tool-call > .note, &.-unstored > .note { display: block; }
        &.-error > .note, &.-unstored > .note { color: $error; }
        &.-streaming > .note, &.-sending > .note { color: $text-muted; }
        &.-selected { background: $boost; border-left: wide $accent; }
    }
    """

    status: reactive[str] = reactive("complete")
    """``complete``, ``streaming``, ``cancelled``, ``interrupted``, ``error``, ``unstored`` (the server's
    storage failed), ``length``, ``filtered``, ``tool-call`` or ``truncated``."""

    def __init__(
        self,
        role: Role,
        text: str = "",
        *,
        message_id: str | None = None,
        status: str = "complete",
        last_seq: int = 0,
        label: str | None = None,
        attachments: list[AttachmentInfo] | None = None,
        reasoning: str = "",
        reasoning_expanded: bool = False,
    ) -> None:
        """
        Args:
            role: ``user`` or ``assistant``.
            text: The text known so far.
            message_id: The stored message id; ``None`` until the server acks a user message.
            status: The initial status.
            last_seq: For assistant messages, the ``seq`` of the last chunk in ``text``.
            label: The heading line (default: "You" or "Assistant").
            attachments: The files sent with a user message, shown as chips under the heading.
            reasoning: For assistant messages, what the model reasoned before the answer.
            reasoning_expanded: Whether that reasoning is shown whole rather than as one line.
        """
        super().__init__(classes=f"-{role}")
        self.role: Role = role
        self.message_id = message_id
        self.last_seq = last_seq
        """The ``seq`` of the last chunk shown; older chunks are dropped."""
        self.client_message_id: str | None = None
        """For a user message sent from here, its ``clientMessageId``."""
        self.record: StoredMessage | None = None
        """The message as the server stored it, when known (a loaded page; the details asked for)."""
        self._label = label or ("You" if role == "user" else "Assistant")
        self.attachments = attachments or []
        """The files sent with it."""
        self._pieces: list[str] = [text] if text else []
        self._text: str | None = text
        self._stream: MarkdownStream | None = None
        self.segment_chars = SEGMENT_CHARS
        """Characters a Markdown widget takes before the stream moves on to a new one."""
        # Assistant text is shown by one Markdown widget, after finished parts
        # of a long answer (see ``stream_split``).
        self._cutter = SegmentCutter()
        self._opens: str | None = None
        """The fence line of a code block cut before the last segment, opened again at its start."""
        self._segments: list[FrozenParts | SegmentMarkdown] = self._segments_of(text) if role == "assistant" else []
        self.reasoning = ReasoningSection(reasoning, running=status == "streaming", expanded=reasoning_expanded)
        """What the model reasoned before the answer, above it (empty for user messages: not shown)."""
        self.set_reactive(MessageView.status, status)
        self.add_class(f"-{status}")

    def compose(self) -> ComposeResult:
        yield Static(self._label, classes="role", markup=False)
        if self.attachments:
            yield AttachmentChips(self.attachments)
        if self.role == "user":
            yield Static(self.text, classes="body", markup=False)
        else:
            yield self.reasoning
            yield from self._segments
        yield Static(self._note(), classes="note", markup=False)

    @property
    def text(self) -> str:
        """The whole text shown so far."""
        if self._text is None:
            self._text = "".join(self._pieces)
            self._pieces = [self._text]
        return self._text

    def code_blocks(self) -> list[str]:
        """The fenced code blocks of the text, in order, without their fences."""
        return [match.group("code") for match in _FENCE.finditer(self.text)]

    def watch_status(self, old: str, new: str) -> None:
        self.remove_class(f"-{old}", update=False)
        self.add_class(f"-{new}", update=False)
        if self.is_mounted:
            note = self.query_one(".note", Static)
            # Only the note's rules depend on the status (see DEFAULT_CSS): restyling the whole message, as
            # a class change does, would restyle every segment of a long answer, twice, as it ends.
            self.app.stylesheet.update_nodes([self, note])
            note.update(self._note())

    def _note(self) -> str:
        if self.role == "user" and self.status == "error":
            return "not sent: the server refused it (the text is back in the message box)"
        return STATUS_NOTES.get(self.status, "")

    async def append(self, delta: str, seq: int, thought: str = "") -> None:
        """Add a streamed piece (an assistant message's chunk ``seq``, or several joined) and its reasoning."""
        if seq <= self.last_seq:
            return
        self.last_seq = seq
        if thought:
            self.reasoning.add(thought)
            self.status = "streaming"
        if not delta:
            return
        self._pieces.append(delta)
        self._text = None
        self.status = "streaming"
        parts, rest, opens = self._cut(delta)
        if not parts:
            await self._write(delta)
            return
        await self._freeze(parts, rest, opens)

    async def _write(self, piece: str) -> None:
        """Stream ``piece`` into the last segment."""
        if not piece:
            return
        if self._stream is None:
            self._stream = self._live.get_stream(self._live)
        await self._stream.write(piece)

    def _cut(self, delta: str) -> tuple[list[Part], str, str | None]:
        """The parts ``delta`` finishes, what is left for the live segment, and the code block open there.

        ``delta`` is read in pieces of ``segment_chars``, as ``SegmentCutter.split``
        reads a whole text, so a large batch of chunks gives parts of about that size.
        The first part goes on from what the live segment holds, which is not in it yet
        (``_freeze`` adds it: the stream may still hold pieces written to it).
        """
        size = self.segment_chars
        parts: list[Part] = []
        pending, opens = "", self._opens
        # The last piece is a whole one, so that little is left for the live segment after a batch.
        for start in range((len(delta) % size or size) - size, len(delta), size):
            piece = delta[max(0, start) : start + size]
            cut = self._cutter.cut(piece, size)
            if cut is None:
                pending += piece
            else:
                parts.append(Part(pending + piece[: cut.at], opens, cut.fence))
                pending, opens = piece[cut.at :], cut.fence
        return parts, pending, opens

    async def _freeze(self, parts: list[Part], rest: str, opens: str | None) -> None:
        """Add finished ``parts``; the live segment starts again with ``rest`` (in the code block ``opens``).

        The text of the parts goes straight into them: building Textual
        blocks for it, only to freeze them, would be most of the cost of a
        chunk. A code block cut is closed in the part before and opened
        again in the next.
        """
        if self._stream is not None:
            await self._stream.stop()  # every piece written is in the widget once it returns
            self._stream = None
        live = self._live
        first = parts[0]
        parts[0] = Part(self.live_text + first.text, first.opens, first.closes)
        with self.app.batch_update():
            if len(self._segments) > 1:
                self._frozen.add(parts)
            else:
                from mfu_tui.tui.widgets.frozen_parts import FrozenParts  # not with the app: see markdown_segments

                self._segments.insert(0, FrozenParts(parts))
                await self.mount(self._segments[0], before=live)
            await live.update(Part(rest, opens).markdown)
        self._opens = opens

    @property
    def live_text(self) -> str:
        """The part of the text in the last segment (without a code block's fence opened again at its start)."""
        source = self._live.source
        return source.removeprefix(f"{self._opens}\n") if self._opens else source

    async def finish(self, status: str, text: str | None = None) -> None:
        """End the stream and render its last part once more, now that it is whole.

        The finished parts of a long answer stay as they are: mounting the
        whole answer again would block the app for seconds. The frozen
        segments' sources, then ``live_text``, are the text.

        Args:
            status: The final status (``complete``, ``cancelled``...).
            text: The full text, if known better than the pieces seen (a reload).
        """
        self.reasoning.running = False
        if text is not None and text != self.text:
            await self.set_text(text)
        elif self.is_mounted and self.role == "assistant":
            if self._stream is not None:
                await self._stream.stop()
                self._stream = None
            last = self._live
            await last.update(_without_empty_open_fence(last.source))
        self.status = status

    async def set_text(self, text: str) -> None:
        """Replace the whole text (a reload or an edit)."""
        self._pieces = [text]
        self._text = text
        if self.role == "user":
            if self.is_mounted:
                self.query_one(".body", Static).update(text)
            return
        if not self.is_mounted:
            self._segments = self._segments_of(text)
            return
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        old = self._segments
        self._segments = self._segments_of(text)
        with self.app.batch_update():
            await self.mount_all(self._segments, before=old[0])
            await self.remove_children(old)

    @property
    def _live(self) -> SegmentMarkdown:
        """The last segment of an assistant message: the Markdown widget the stream writes into."""
        return cast("SegmentMarkdown", self._segments[-1])  # always one: see _segments_of, _freeze

    @property
    def _frozen(self) -> FrozenParts:
        """The finished parts of a long assistant message, if it has some (``_segments_of``, ``_freeze``)."""
        return cast("FrozenParts", self._segments[0])

    def _segments_of(self, text: str) -> list[FrozenParts | SegmentMarkdown]:
        """New widgets for a whole text: its finished parts, if any, then a Markdown widget for the rest."""
        # Imported with the first assistant message, not with the app: see markdown_segments.
        from mfu_tui.tui.widgets.frozen_parts import FrozenParts
        from mfu_tui.tui.widgets.markdown_segments import new_segment

        self._cutter = SegmentCutter()
        *done, rest = self._cutter.split(text, self.segment_chars)
        self._opens = rest.opens
        return [FrozenParts(done), new_segment(rest.markdown)] if done else [new_segment(rest.markdown)]
