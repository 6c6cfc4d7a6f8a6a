"""One message of the conversation: a user's words or an assistant's Markdown."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Static

from mfu_tui.protocol import AttachmentInfo, StoredMessage
from mfu_tui.tui.endings import ENDING_NOTES
from mfu_tui.tui.stream_split import SegmentCutter
from mfu_tui.tui.widgets.attachment_chips import AttachmentChips
from mfu_tui.tui.widgets.reasoning_section import ReasoningSection

if TYPE_CHECKING:
    from mfu_tui.tui.widgets.answer_body import AnswerBody

Role = Literal["user", "assistant"]

#: See ``MessageView.segment_chars``.
SEGMENT_CHARS = 2000

#: Characters of queued chunks the app gives one ``append`` at most. Each append costs a layout and a
#: repaint of the conversation whatever its size, and the finished parts it makes are drawn only if seen
#: (``AnswerBody``), so an app behind a fast stream catches up in a few large appends (``bench/render``,
#: 20,000 words of sections: 7 appends of up to 32,000 took 0.16-0.20 s of CPU, 14 of 8,000 0.18-0.27 s);
#: bounded, so that one append (this much text cut into parts) still takes milliseconds.
BATCH_CHARS = 16 * SEGMENT_CHARS

#: Fenced code blocks (``` or ~~~), for "copy the code block".
_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})[^\n]*\n(?P<code>.*?)^(?P=fence)[ \t]*$", re.MULTILINE | re.DOTALL)

#: What the line under an assistant message says for each status.
STATUS_NOTES: dict[str, str] = {
    "sending": "sending… (kept on disk until the server has it)",
    "waiting": "waits for the answer above to end, then goes (kept on disk until the server has it)",
    "streaming": "generating…",
    **ENDING_NOTES,
    "truncated": "shown in part: the rest of this long message is not loaded yet",
}


class MessageView(Vertical):
    """A message in the conversation pane.

    User messages are plain text (what was typed is shown as typed);
    assistant messages are Markdown with highlighted code blocks, in an
    ``AnswerBody``: one widget, drawn by Rich only where it is seen, whatever
    the answer's length. As it streams, the answer is cut into parts of
    about ``segment_chars`` (at a paragraph break, or inside a paragraph that
    never ends: see ``stream_split``), so the cost of a chunk does not grow
    with the answer. A text set at once (a reload) is cut the same way.

    A widget per Markdown block (Textual's ``Markdown``) cost 20 to 40 ms to
    mount for each message, most of the time to open a chat or to scroll
    into older messages, and a long answer changed its look as it passed
    from Textual's widgets to Rich's.
    """

    DEFAULT_CSS = """
    MessageView {
        height: auto;
        padding: 0 1;
        margin: 0 0 1 0;
        & > .role { color: $text-muted; text-style: bold; height: 1; }
        & > .body { height: auto; }
        & > .note { color: $warning; height: auto; display: none; }
        &.-user { border-left: wide $primary; background: $boost; }
        &.-assistant { border-left: wide $success 50%; }
        &.-cancelled > .note, &.-interrupted > .note, &.-error > .note,
        &.-streaming > .note, &.-length > .note, &.-sending > .note, &.-waiting > .note, &.-truncated > .note,
        &.-filtered > .note, &.-tool-call > .note, &.-unstored > .note { display: block; }
        &.-error > .note, &.-unstored > .note { color: $error; }
        &.-streaming > .note, &.-sending > .note, &.-waiting > .note { color: $text-muted; }
        &.-selected { background: $boost; border-left: wide $accent; }
    }
    """

    status: reactive[str] = reactive("complete")
    """``sending``, ``waiting`` (sent after the chat's answer running), ``complete``, ``streaming``,
    ``cancelled``, ``interrupted``, ``error``, ``unstored`` (the server's storage failed), ``length``,
    ``filtered``, ``tool-call`` or ``truncated``."""

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
        self.segment_chars = SEGMENT_CHARS
        """Characters of a part: a longer answer is cut into parts (see ``stream_split``)."""
        self._cutter = SegmentCutter()
        self._answer: AnswerBody | None = None
        """An assistant message's Markdown (``None`` for a user message)."""
        if role == "assistant":
            self._answer = self._new_answer(text)
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
            yield self._drawn_answer
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
        answer = self._drawn_answer
        *parts, tail = self._cutter.split(delta, self.segment_chars, answer.tail)
        answer.add(parts, tail)

    async def finish(self, status: str, text: str | None = None) -> None:
        """End the stream, with the full text if it is known better than the pieces seen (a reload).

        The answer stays as it is drawn: its tail is drawn whole at each
        append, and a code block opened at the very end and never written
        into is not drawn, streaming or not.

        Args:
            status: The final status (``complete``, ``cancelled``...).
            text: The full text, if known better than the pieces seen.
        """
        self.reasoning.running = False
        if text is not None and text != self.text:
            await self.set_text(text)
        self.status = status

    async def set_text(self, text: str) -> None:
        """Replace the whole text (a reload or an edit)."""
        self._pieces = [text]
        self._text = text
        if self.role == "user":
            if self.is_mounted:
                self.query_one(".body", Static).update(text)
            return
        old = self._drawn_answer
        self._answer = self._new_answer(text)
        if self.is_mounted:
            with self.app.batch_update():
                await self.mount(self._answer, before=old)
                await old.remove()

    @property
    def _drawn_answer(self) -> AnswerBody:
        """The widget that shows an assistant message's Markdown."""
        assert self._answer is not None  # an assistant message's, made in __init__
        return self._answer

    def _new_answer(self, text: str) -> AnswerBody:
        """A new widget for a whole text: cut into parts as its stream would be."""
        # Imported with the first assistant message, not with the app: see markdown_segments.
        from mfu_tui.tui.widgets.answer_body import AnswerBody

        self._cutter = SegmentCutter()
        *parts, tail = self._cutter.split(text, self.segment_chars)
        return AnswerBody(parts, tail)
