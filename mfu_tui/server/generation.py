"""Streaming assistant replies: one generation per chat, persisted before sent.

A ``Generation`` pulls text pieces from the provider, of the answer and of
its reasoning alike, makes them chunks numbered in one sequence (``seq`` 1,
2, ...), queues each to the store and sends it to the chat's
subscribers only from the store's commit callback, so no frame ever leaves
before its chunk is durable. Commits settle in queue order, so frames go out
in ``seq`` order. Every stream ends with exactly one ``complete`` or
``cancel`` frame carrying the last stored ``seq``.

A piece that comes while the previous chunk is still queued for a commit
(under load, or from a provider faster than a commit) is added to that chunk
(``Store.extend_chunk``) instead of making another: it would have been
stored and sent with it anyway, so it is sent no later, and the stream costs
one row and one frame per commit instead of one per piece. The first piece,
and any piece of an idle server, goes alone as before. A chunk holds one kind
of text only, and at most ``MAX_CHUNK_CHARS``.

A piece that comes less than ``CHUNK_GAP`` after the last chunk was queued
does not start a chunk at once: it is held, the pieces coming meanwhile join
it, and it is queued when the time is up (or when it is full, or the answer
ends). The first piece, and a model at a reader's pace, never wait; a fast
model's answer goes out in a frame per ``CHUNK_GAP`` or per full chunk (a
20,000-word answer at full speed was 1,200 frames of a word or two, each a
commit, a frame to encode and one for the client to decode and show).

A piece that would start a chunk because the last one is full waits for the
last one's commit first, so the model's stream is read at most two chunks
ahead of what is stored and sent. A model at its pace never fills a chunk
within a commit, so it never waits; one faster than the store (a firehose)
is read in step with the commits. Read ahead, it held its answer in memory
and kept the event loop busy reading it while the commits fell behind (the
store's writer, then a thread, waited tens of milliseconds a commit for the
interpreter's lock), so the whole answer went out at once at its end; while
the relay waits, the writer commits.

A disconnect does not touch a generation: it publishes to whoever is
subscribed at the time. Only ``cancel`` (or the server stopping) ends it
early, by cancelling its task, which closes the provider's iterator and so
the upstream request.

Each answer is measured as it streams (``AnswerFigures``): the time from the
request upstream to the first piece of text, and, when the provider reports
usage, the completion tokens over the seconds from the first piece to the
last. Without a report the token figures stay unknown rather than guessed
from the pieces (a piece may be several tokens, or part of one).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Literal

from mfu_tui.protocol import (
    Cancelled,
    ChatSettings,
    ChatSummary,
    ChatUpdated,
    Chunk,
    ChunkKind,
    Complete,
    Error,
    ErrorCode,
    encode,
)
from mfu_tui.server import logs
from mfu_tui.server.hub import Hub, Receiver
from mfu_tui.server.metrics import RELAY_SAMPLE, ServerMetrics
from mfu_tui.server.model_input import ModelTurn
from mfu_tui.server.providers import Finish, Provider, ProviderError, Reasoning, Usage
from mfu_tui.server.providers.catalog import ModelCatalog
from mfu_tui.server.store import AnswerFigures, Fenced, Status, Store
from mfu_tui.server.store.outage import is_outage

log = logging.getLogger(__name__)

#: Most characters of pieces joined into one chunk: a burst reaches the client in steps
#: about the size a terminal app shows at once (ours appends at most 2,000 characters
#: at a time, so each append stays short and keys are not kept waiting).
MAX_CHUNK_CHARS = 2000

#: Seconds after a chunk is queued before the next may be: pieces coming sooner wait and join it. Below
#: the gap between two pieces of a model of 200 tokens a second, so those go at once, and a half of the
#: relay's latency goal (p99 under 10 ms); enough for a firehose's chunks to fill (2,000 characters in
#: 2-3 ms: 61 frames for 20,000 words, as with 15 ms).
CHUNK_GAP = 0.005

#: Items of a model's stream read before a generation lets the event loop run. Items already
#: in the read buffer come without a wait, so a model that sends faster than they are read
#: (a burst, a fast local model) held the loop until the buffer was empty: up to 0.19 s in
#: which no other connection was served (nor its pings answered) and no stored chunk was
#: sent (docs/benchmarks.md, "A fast model and everyone else").
ITEMS_PER_TURN = 64

#: Why a generation was stopped early: a ``cancel`` frame, the server stopping, a store failure,
#: or this node's lease on the answer possibly lost (``Store.holds_lease``, ``Fenced``).
StopReason = Literal["cancelled", "shutdown", "failed", "fenced"]

#: ``finishReason`` of an answer the store failed to keep: not the model's failure, and worded as such.
STORE_FAILED = "store_failed"

#: Seconds before storing an answer's end is tried again while the database is out of reach, then
#: doubled up to the second figure: the end is what frees its chat for the next message. The
#: database's return (``OutageLog``) cuts the wait short: the end is stored within a commit of it.
END_RETRY_FIRST, END_RETRY_MOST = 0.25, 5.0


def store_problem(error: BaseException | None) -> tuple[ErrorCode, str]:
    """The ``error`` frame that ends an answer the store failed to keep: ``unavailable`` if the database
    is out of reach for now (asking again once it is back may work), else ``internal``."""
    if error is not None and is_outage(error):
        return ErrorCode.UNAVAILABLE, "the server could not store the answer: its database is out of reach for now"
    return ErrorCode.INTERNAL, "the server could not store the answer"


class Generation:
    """One assistant reply being streamed into a chat."""

    def __init__(
        self,
        *,
        user: str,
        chat_id: str,
        message_id: str,
        model_id: str | None,
        history: list[ModelTurn],
        settings: ChatSettings,
        store: Store,
        hub: Hub,
        provider: Provider,
        catalog: ModelCatalog,
        on_end: Callable[[Generation], None],
        max_chars: int,
        metrics: ServerMetrics,
    ) -> None:
        self.user = user
        self.chat_id = chat_id
        self.message_id = message_id
        self.model_id = model_id
        #: The model answering: ``model_id``, else the default of the provider's list once it is known.
        self._model_used = model_id
        self._history = history
        self._settings = settings
        self._store = store
        self._hub = hub
        self._provider = provider
        self._catalog = catalog
        self._on_end = on_end
        self._metrics = metrics
        #: Characters (of the answer and its reasoning) after which it ends with ``finish_reason: "length"``.
        self._room = max_chars
        #: Kind and text of chunks 1..n, by position (seq - 1). Two lists of strings, not a
        #: pair per chunk: the collector's full passes walk each pair an answer keeps, and at
        #: 200 streams they were half of what it walked (docs/benchmarks.md).
        self._kinds: list[ChunkKind] = []
        self._texts: list[str] = []
        #: Characters in the last chunk (what ``MAX_CHUNK_CHARS`` bounds).
        self._last_chars = 0
        #: Kind and pieces of the next chunk, held until ``CHUNK_GAP`` after the last was queued.
        self._held: tuple[ChunkKind, list[str]] | None = None
        #: Characters held.
        self._held_chars = 0
        #: Queues the held chunk once its time is up.
        self._held_timer: asyncio.TimerHandle | None = None
        #: ``time.monotonic()`` when the last chunk was queued.
        self._queued_at = float("-inf")
        #: The last seq whose chunk is committed and published.
        self.published_seq = 0
        #: Items (pieces of text, usage, the finish) read from the model's stream so far.
        self.items_read = 0
        #: The last seq of the unbroken run of committed chunks, published or not (held back when fenced).
        self._committed_seq = 0
        #: The commit of the last chunk queued: once it settles, every chunk's has (the store commits in order).
        self._last_commit: asyncio.Future[None] | None = None
        self._stop_reason: StopReason | None = None
        #: Why the store refused a chunk (None: it did not, or the future was cancelled).
        self._store_error: BaseException | None = None
        #: Storing the end again while the database is out of reach (``_store_end_later``).
        self._late_end: asyncio.Task[ChatSummary | None] | None = None
        #: Set once this node may have lost the answer to another node: no chunk is published after.
        self._fenced = False
        #: True while the provider is being read: the only time a stop may cancel the task
        #: (afterwards the task is storing the end, which must not be interrupted).
        self._streaming = False
        #: The tokens the provider reported, if it did.
        self._usage: Usage | None = None
        #: ``time.monotonic()`` of the request upstream, of the first piece of text, and of the last.
        self._asked_at = 0.0
        self._first_at: float | None = None
        self._last_at = 0.0
        self.task: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            self._run(), name=f"generation {message_id}"
        )

    def replay(self, receiver: Receiver, last_seq: int) -> None:
        """Send ``receiver`` the published chunks after ``last_seq``.

        Synchronous on purpose: called right after subscribing ``receiver``
        to the chat, so every later chunk reaches it live and none is missed
        in between.
        """
        for seq in range(last_seq + 1, self.published_seq + 1):
            receiver.reply(self._chunk_frame(seq))

    async def stop(self, reason: StopReason) -> None:
        """Stop generating (closing the upstream request) and wait for the end frame to go out."""
        self._interrupt(reason)
        if reason == "shutdown" and self._late_end is not None:
            # The end is already sent; the reply stays streaming in the database, and the next
            # start (or another node, once the lease runs out) ends it as interrupted.
            self._late_end.cancel()
        await asyncio.wait({self.task})

    def _interrupt(self, reason: StopReason) -> None:
        if self._streaming and self._stop_reason is None:
            self._stop_reason = reason
            self.task.cancel()

    async def _run(self) -> None:
        status: Status = "complete"
        finish = "stop"
        problem: tuple[ErrorCode, str] | None = None
        self._streaming = True
        try:
            history = self._history
            if self._settings.system_prompt:
                history = [ModelTurn(role="system", content=self._settings.system_prompt), *history]
            self._asked_at = time.monotonic()
            self._model_used = await self._catalog.model_for(self.model_id)
            stream = self._provider.stream(self._model_used, history, self._settings.params)
            async with contextlib.aclosing(stream):
                async for item in stream:
                    self.items_read += 1
                    if self.items_read % ITEMS_PER_TURN == 0:
                        await asyncio.sleep(0)  # see ITEMS_PER_TURN
                    if isinstance(item, Finish):
                        finish = item.reason
                    elif isinstance(item, Usage):
                        self._usage = item
                    else:
                        kind: ChunkKind = "reasoning" if isinstance(item, Reasoning) else "content"
                        text = item.text if isinstance(item, Reasoning) else item
                        if not text:
                            continue
                        full = self._full_chunk_queued(kind, text)
                        if full is not None:
                            # Not its result: a failed commit stops the generation from ``_publish``.
                            await asyncio.wait({full})
                        if self._take(kind, text):
                            finish = "length"
                            break  # leaving the block closes the upstream request
        except asyncio.CancelledError:
            if self._stop_reason is None:
                raise
            self.task.uncancel()  # this coroutine is self.task
            if self._stop_reason == "cancelled":
                status, finish = "cancelled", "cancelled"
            elif self._stop_reason == "shutdown":
                status, finish = "error", "interrupted"
        except ProviderError as error:
            self._metrics.upstream_errors.labels(error.kind).inc()
            status, finish, problem = "error", "error", (ErrorCode.PROVIDER_ERROR, str(error))
        except Exception:
            log.exception("generation %s failed", self.message_id)
            status, finish, problem = "error", "error", (ErrorCode.INTERNAL, "the server failed to generate")
        finally:
            self._streaming = False
        try:
            await self._end(status, finish, problem)
        finally:
            self._on_end(self)

    def _take(self, kind: ChunkKind, text: str) -> bool:
        """Store and send a piece of text from the provider; True once the answer has no room left."""
        self._last_at = time.monotonic()
        if self._first_at is None:
            self._first_at = self._last_at
            self._metrics.first_token_seconds.observe(self._first_at - self._asked_at)
        # A bound on what one answer (with its reasoning) can make us store and send (and
        # what get_chat must carry): past it the answer ends as if the model did.
        text = text[: self._room]
        self._room -= len(text)
        self._append(kind, text)
        return self._room == 0

    def _full_chunk_queued(self, kind: ChunkKind, text: str) -> asyncio.Future[None] | None:
        """The commit of the last chunk if ``text`` would start a chunk because that one (or the one held) is
        full, and it is not yet stored."""
        last = self._last_commit
        if last is None or last.done():
            return None
        if self._held is not None:
            full = self._held[0] == kind and self._held_chars + len(text) > MAX_CHUNK_CHARS
        else:
            full = self._kinds[-1] == kind and self._last_chars + len(text) > MAX_CHUNK_CHARS
        return last if full else None

    def _append(self, kind: ChunkKind, text: str) -> None:
        """Add ``text`` to the last chunk if it is still queued for a commit (and of its kind), else to the chunk
        held, else make a chunk: queued at once if ``CHUNK_GAP`` has passed since the last was (or it is full),
        else held."""
        seq = len(self._texts)
        if (
            self._held is None
            and seq
            and self._kinds[-1] == kind
            and self._last_chars + len(text) <= MAX_CHUNK_CHARS
            and self._store.extend_chunk(self.message_id, seq, text, reasoning=kind == "reasoning")
        ):
            self._texts[-1] += text  # a copy of at most MAX_CHUNK_CHARS
            self._last_chars += len(text)
            return
        if self._held is not None:
            if self._held[0] == kind and self._held_chars + len(text) <= MAX_CHUNK_CHARS:
                self._held[1].append(text)
                self._held_chars += len(text)
                if self._held_chars >= MAX_CHUNK_CHARS:
                    self._queue_held()  # full: nothing more would join it
                return
            self._queue_held()  # too full for this piece, or of the other kind: it goes now; this piece after it
        wait = self._queued_at + CHUNK_GAP - time.monotonic()
        if wait <= 0 or len(text) >= MAX_CHUNK_CHARS:
            self._queue(kind, [text])
            return
        self._held, self._held_chars = (kind, [text]), len(text)
        self._held_timer = asyncio.get_running_loop().call_later(wait, self._queue_held)

    def _queue_held(self) -> None:
        """Queue the chunk held, if any: its time is up, it is full, or the answer ends."""
        if self._held_timer is not None:
            self._held_timer.cancel()
            self._held_timer = None
        if self._held is not None:
            (kind, pieces), self._held = self._held, None
            self._queue(kind, pieces)

    def _queue(self, kind: ChunkKind, pieces: list[str]) -> None:
        """Make a chunk of ``pieces`` and queue it for a commit, after which it is published."""
        text = "".join(pieces)
        reasoning = kind == "reasoning"
        self._kinds.append(kind)
        self._texts.append(text)
        self._last_chars = len(text)
        self._queued_at = time.monotonic()
        seq = len(self._texts)
        queued_at = self._queued_at if seq % RELAY_SAMPLE == 1 else None  # timed: a sample of the chunks
        committed = self._store.append_chunk(self.message_id, seq, text, reasoning=reasoning)
        committed.add_done_callback(lambda future: self._publish(seq, future, queued_at))
        self._last_commit = committed

    def _publish(self, seq: int, committed: asyncio.Future[None], queued_at: float | None) -> None:
        """Runs once a chunk is committed: only now may its frame leave, and only while this node's lease holds."""
        refused = committed.cancelled() or committed.exception() is not None
        if not refused and seq == self._committed_seq + 1:
            self._committed_seq = seq
        fenced = not committed.cancelled() and isinstance(committed.exception(), Fenced)
        if fenced or self._fenced or not self._store.holds_lease():
            # Another node may have ended the answer meanwhile (this node stalled past
            # its lease): no chunk of it may follow that end to anyone.
            self._lose_lease(seq)
            return
        if refused:
            if self._stop_reason != "failed":
                self._store_error = error = None if committed.cancelled() else committed.exception()
                self._metrics.store_errors.labels("append_chunk").inc()
                if error is None or not self._store.outages.failed("answers stopped", error):
                    log.error("chunk %d of %s was not stored; stopping the generation", seq, self.message_id)
            self._interrupt("failed")
            return
        self.published_seq = seq
        self._hub.publish_chat(self.chat_id, self._chunk_frame(seq))
        self._metrics.chunks_sent += 1
        if queued_at is not None:
            self._metrics.relay_seconds.observe(time.monotonic() - queued_at)

    def _lose_lease(self, seq: int) -> None:
        """Stop publishing (from chunk ``seq`` on) and generating: the answer may be another node's to end now."""
        if not self._fenced:
            log.warning(
                "this node's lease on %s may have run out; stopping it without sending chunk %d", self.message_id, seq
            )
            self._fenced = True
        self._interrupt("fenced")

    def _figures(self) -> AnswerFigures:
        """What was measured of the answer so far."""
        if self._first_at is None:
            return AnswerFigures(usage=self._usage)
        first_token_ms = round((self._first_at - self._asked_at) * 1000)
        completion = self._usage.completion_tokens if self._usage is not None else None
        generating = self._last_at - self._first_at
        # One piece (or pieces in the same instant) has no rate to speak of.
        rate = completion / generating if completion is not None and generating > 0 else None
        return AnswerFigures(usage=self._usage, first_token_ms=first_token_ms, tokens_per_second=rate)

    def _chunk_frame(self, seq: int) -> bytes:
        kind, content = self._kinds[seq - 1], self._texts[seq - 1]
        return encode(Chunk(chat_id=self.chat_id, message_id=self.message_id, seq=seq, content=content, kind=kind))

    def _text(self, kind: ChunkKind, chunks: int) -> str:
        """The text of the first ``chunks`` chunks of one kind."""
        return "".join(text for of, text in zip(self._kinds[:chunks], self._texts[:chunks]) if of == kind)

    async def _end(self, status: Status, finish: str, problem: tuple[ErrorCode, str] | None) -> None:
        """Store the final text, then send the end frames (chunks were all published by then)."""
        failed = self._stop_reason == "failed" and not self._fenced
        if failed or self._fenced:
            self._held = None  # the store refuses, or may: the end names only what it took
        self._queue_held()  # the text read goes with the end, at once
        if failed:
            status, finish, problem = "error", STORE_FAILED, store_problem(self._store_error)
        elif self._fenced:
            # Ended here only if no other node ended it first: the store refuses
            # this end, as it refused the chunks, if its lease was lost for real.
            status, finish, problem = "error", "interrupted", None
            # The end names only chunks the store took: a chunk held back may also
            # have been refused (the database went away as the lease ran out).
            if self._last_commit is not None:
                await asyncio.wait({self._last_commit})
        # Every chunk was queued before this write and the store commits in
        # order: once it settles, all of them are stored (and, unless fenced, published).
        stored = self.published_seq if failed else self._committed_seq if self._fenced else len(self._texts)
        figures = self._figures()
        end_error: Exception | None = None
        try:
            chat = await self._store.finish_message(
                self.message_id,
                self._text("content", stored),
                status,
                finish,
                stored,
                figures,
                reasoning=self._text("reasoning", stored),
            )
        except LookupError:
            # Its chat was deleted meanwhile, or another node ended it when this
            # node's lease ran out: whoever follows it has been told already.
            log.info("answer %s was gone when it ended (chat deleted, or ended by another node)", self.message_id)
            self._record(finish, stored, figures)
            return
        except Exception as error:
            self._metrics.store_errors.labels("finish_message").inc()
            end_error = error
            if not self._store.outages.failed("answer ends not stored for now", error):
                log.exception("could not store the end of %s", self.message_id)
            chat = None
            if problem is None or problem[0] is not ErrorCode.PROVIDER_ERROR:
                status, finish, problem = "error", STORE_FAILED, store_problem(error)
        # Fenced, the chunks held back are stored: the end's seq sends followers to the store for them.
        seq = stored if self._fenced else self.published_seq
        self._record(finish, seq, figures)
        if problem is not None:
            code, text = problem
            self._hub.publish_chat(
                self.chat_id,
                encode(Error(code=code.value, message=text, chat_id=self.chat_id, message_id=self.message_id)),
            )
        end: Cancelled | Complete
        if status == "cancelled":
            end = Cancelled(chat_id=self.chat_id, message_id=self.message_id, seq=seq)
        else:
            end = Complete(
                chat_id=self.chat_id,
                message_id=self.message_id,
                seq=seq,
                finish_reason=finish,
                usage=figures.usage,
                first_token_ms=figures.first_token_ms,
                tokens_per_second=figures.tokens_per_second,
            )
        self._hub.publish_chat(self.chat_id, encode(end))
        if end_error is not None and is_outage(end_error):
            chat = await self._store_end_later(seq, figures)
        if chat is not None:
            self._hub.publish_user(self.user, encode(ChatUpdated(chat=chat)))

    async def _store_end_later(self, seq: int, figures: AnswerFigures) -> ChatSummary | None:
        """Store the end the database could not take (as ``STORE_FAILED``, with its ``seq`` chunks) once it is back.

        Until then the reply is ``streaming`` in the database, which keeps its
        chat busy on every node, and this node renews its lease: nothing else
        would ever end it. The chat's claim here is held meanwhile too, so a
        message to it is refused as ``conflict`` (which clients send again)
        rather than racing this write. None if it was not stored: the node
        stops (``stop``), the chat was deleted, another node ended it, or a bug.
        """
        text, reasoning = self._text("content", seq), self._text("reasoning", seq)
        delay = END_RETRY_FIRST
        back = asyncio.Event()

        def changed(out: bool) -> None:
            if not out:
                back.set()

        async def store() -> ChatSummary | None:
            nonlocal delay
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await back.wait()
                back.clear()
                delay = min(delay * 2, END_RETRY_MOST)
                try:
                    chat = await self._store.finish_message(
                        self.message_id, text, "error", STORE_FAILED, seq, figures, reasoning=reasoning
                    )
                except LookupError:
                    return None
                except Exception as error:
                    if is_outage(error):
                        continue
                    log.exception("could not store the end of %s", self.message_id)
                    return None
                log.info("the end of %s is stored, the database is back", self.message_id)
                return chat

        loop = asyncio.get_running_loop()
        unlisten = self._store.outages.listen(changed, loop)
        self._late_end = loop.create_task(store(), name=f"end of {self.message_id}")
        try:
            return await self._late_end
        except asyncio.CancelledError:
            if self.task.cancelling():  # this task was cancelled, not only the retry
                raise
            return None
        finally:
            unlisten()

    def _record(self, finish: str, chunks: int, figures: AnswerFigures) -> None:
        """Count the answer, and log its one line (ids and figures only: never its text)."""
        seconds = time.monotonic() - self._asked_at
        self._metrics.answers.labels(finish).inc()
        self._metrics.answer_seconds.observe(seconds)
        usage = figures.usage
        logs.event(
            log,
            "answer_end",
            "answer ended",
            user=self.user,
            chat_id=self.chat_id,
            message_id=self.message_id,
            provider=self._provider.name,
            model=self._model_used,  # None: no model named, and the provider could not say its default
            chunks=chunks,
            finish_reason=finish,
            seconds=round(seconds, 3),
            first_token_ms=figures.first_token_ms,
            prompt_tokens=usage.prompt_tokens if usage is not None else None,
            completion_tokens=usage.completion_tokens if usage is not None else None,
        )


class Generations:
    """The running generations, at most one per chat, and the claims on chats about to run one.

    Each user may also have at most ``answers_per_user`` generations running
    (or about to start) at once on this node: each holds one of the user's
    slots, taken with ``take_slot`` before it is stored and given back when it ends.
    """

    def __init__(
        self,
        store: Store,
        hub: Hub,
        provider: Provider,
        catalog: ModelCatalog,
        *,
        max_answer_chars: int,
        answers_per_user: int,
        metrics: ServerMetrics,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._hub = hub
        self._provider = provider
        self._catalog = catalog
        self._max_answer_chars = max_answer_chars
        self.answers_per_user = answers_per_user
        #: Slots taken per user: generations running, and those about to start.
        self._slots: collections.Counter[str] = collections.Counter()
        #: chat id -> (owner, generation or None while only claimed)
        self._chats: dict[str, tuple[str, Generation | None]] = {}
        #: Claimed chats whose generation was cancelled before it started: it stops as it starts.
        self._cancelled_early: set[str] = set()
        #: Stops asked for by ``cancel_requested``, kept until done (the loop keeps only weak references).
        self._stopping: set[asyncio.Task[None]] = set()

    def claim(self, chat_id: str, user: str) -> Literal["claimed", "busy", "foreign"]:
        """Reserve ``chat_id`` for a generation ``user`` is about to start.

        Synchronous, so that two ``message`` frames for one chat can never
        both pass. ``foreign`` means another user's generation runs there:
        the caller must answer as if the chat did not exist.
        """
        current = self._chats.get(chat_id)
        if current is not None:
            return "busy" if current[0] == user else "foreign"
        self._chats[chat_id] = (user, None)
        return "claimed"

    def release(self, chat_id: str) -> None:
        """Give up a claim that did not lead to a generation."""
        current = self._chats.get(chat_id)
        if current is not None and current[1] is None:
            self._forget(chat_id)

    def take_slot(self, user: str) -> bool:
        """Reserve one of ``user``'s answer slots for a generation about to start; False if all are taken.

        Synchronous, so that simultaneous messages on several connections
        cannot all pass. ``start`` keeps the slot until the generation ends;
        a caller that does not start one gives it back with ``free_slot``.
        """
        if self._slots[user] >= self.answers_per_user:
            return False
        self._slots[user] += 1
        return True

    def free_slot(self, user: str) -> None:
        """Give back a slot taken with ``take_slot`` (or held by a generation that ended)."""
        self._slots[user] -= 1
        if not self._slots[user]:
            del self._slots[user]

    def start(
        self,
        user: str,
        chat_id: str,
        message_id: str,
        model_id: str | None,
        history: list[ModelTurn],
        settings: ChatSettings,
    ) -> Generation:
        """Start generating ``message_id`` in ``chat_id`` (claimed by the caller, or brand new), made with ``settings``.

        The caller took one of ``user``'s slots (``take_slot``); the generation gives it back as it ends.
        """
        generation = Generation(
            user=user,
            chat_id=chat_id,
            message_id=message_id,
            model_id=model_id,
            history=history,
            settings=settings,
            store=self._store,
            hub=self._hub,
            provider=self._provider,
            catalog=self._catalog,
            on_end=self._ended,
            max_chars=self._max_answer_chars,
            metrics=self._metrics,
        )
        self._chats[chat_id] = (user, generation)
        if chat_id in self._cancelled_early:
            self._cancelled_early.discard(chat_id)
            self._stop_soon(generation)
        return generation

    def live(self, chat_id: str, user: str) -> Generation | None:
        """The generation running in ``user``'s chat ``chat_id``, if any."""
        current = self._chats.get(chat_id)
        if current is None or current[0] != user:
            return None
        return current[1]

    def running(self) -> list[Generation]:
        """Every running generation."""
        return [generation for _, generation in self._chats.values() if generation is not None]

    def cancel_requested(self, user: str, chat_id: str, message_id: str | None) -> None:
        """A ``cancel`` for a generation that may run here, or be about to (else nothing happens).

        For a chat claimed but not started yet, the generation stops as it starts.
        """
        current = self._chats.get(chat_id)
        if current is None or current[0] != user:
            return
        generation = current[1]
        if generation is None:
            self._cancelled_early.add(chat_id)
        elif message_id in (None, generation.message_id):
            self._stop_soon(generation)

    def _stop_soon(self, generation: Generation) -> None:
        # A task of its own, created after the generation's: that one has begun streaming when this runs.
        task = asyncio.get_running_loop().create_task(generation.stop("cancelled"))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def finish(self, timeout: float) -> int:
        """Let the running generations end by themselves for up to ``timeout`` seconds; how many still run."""
        tasks = {generation.task for generation in self.running()}
        if tasks and timeout > 0:
            await asyncio.wait(tasks, timeout=timeout)
        return len(self.running())

    async def stop_all(self) -> None:
        """Stop every generation (their replies are marked interrupted) and wait for their ends."""
        await asyncio.gather(*(generation.stop("shutdown") for generation in self.running()))

    def _ended(self, generation: Generation) -> None:
        self.free_slot(generation.user)
        current = self._chats.get(generation.chat_id)
        if current is not None and current[1] is generation:
            self._forget(generation.chat_id)

    def _forget(self, chat_id: str) -> None:
        del self._chats[chat_id]
        self._cancelled_early.discard(chat_id)
