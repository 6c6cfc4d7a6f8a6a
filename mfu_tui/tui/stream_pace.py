"""``StreamPace``: an answer's chunks shown at most ``STREAM_FRAME`` apart, so a fast stream costs few frames.

Each append of chunks costs the app a layout and a repaint of the
conversation, 10 to 40 ms, whatever the number of chunks it adds. Shown as
they came, the chunks of a model writing 50 words a second took half a
core of this machine from the app (the demo provider at 20 ms a word,
2026-12-06). Chunks that come less than ``STREAM_FRAME`` after the last
ones shown wait, in their ``AnswerChunks``, which the chunks coming
meanwhile join (it stays unsealed), and are shown together when the time
is up, or first, before anything else about a chat is shown (an answer's
end, an edit, a new answer), so the order of what is shown never changes.
The first chunks after a pause are shown at once, and a batch held full
(``BATCH_CHARS``) is shown as soon as the next chunk comes: the pace bounds
the frames, never the stream's speed.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.timer import Timer

    from mfu_tui.tui.client_events import ClientEvents

#: Seconds between two appends of streamed chunks: 20 a second, which reads as smooth, at a fraction of the
#: frames (Textual draws up to 60 a second).
STREAM_FRAME = 0.05


class StreamPace:
    """Shows ``AnswerChunks`` now, or holds them until ``STREAM_FRAME`` has passed since the last shown.

    Args:
        show: Shows chunks (``ChatApp._about_a_chat``).
        set_timer: Calls back after a delay (``App.set_timer``: in the timer's own task, not among the app's
            messages; the order holds since ``release`` takes the held chunks before its first ``await``).
    """

    def __init__(
        self,
        show: Callable[[ClientEvents.AnswerChunks], Awaitable[None]],
        set_timer: Callable[[float, Callable[[], Awaitable[None]]], Timer],
    ) -> None:
        self._show = show
        self._set_timer = set_timer
        self._held: ClientEvents.AnswerChunks | None = None
        """The chunks waiting to be shown, still taking the chunks that come."""
        self._timer: Timer | None = None
        """The wait for the held chunks' time."""
        self._shown_at = float("-inf")
        """When chunks were last shown (``time.monotonic``)."""

    async def chunks(self, event: ClientEvents.AnswerChunks) -> None:
        """Show ``event`` now if the last chunks were shown long enough ago, else hold it until then."""
        await self.release()  # chunks held before these go first
        wait = self._shown_at + STREAM_FRAME - time.monotonic()
        if wait <= 0:
            await self._show_now(event)
            return
        self._held = event
        self._timer = self._set_timer(wait, self.release)

    async def release(self) -> None:
        """Show the chunks held, if any: their time is up, or something else about a chat is to be shown."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self._held is not None:
            event, self._held = self._held, None
            await self._show_now(event)

    async def _show_now(self, event: ClientEvents.AnswerChunks) -> None:
        event.seal()  # chunks that come from now on are the next batch: this one stays at most BATCH_CHARS
        self._shown_at = time.monotonic()
        await self._show(event)
