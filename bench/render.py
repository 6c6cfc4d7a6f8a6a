"""Streaming render: the app, headless, shows a long answer from the real server at full speed.

The server runs as a subprocess (``python -m mfu_tui serve``) with
``--demo-delay-ms 0``: the demo provider's answer (``--words`` words: a
heading, a list, a code block, then one long paragraph), or with
``--source markdown`` the answer of ``bench.upstream`` relayed through
``--provider openai`` (sections of paragraphs, lists and code blocks: what
a model writes), or with ``--source code`` / ``--source prose`` one fenced
code block / plain paragraphs of ``--code-kb`` KB (a long code block
against as much prose). The same question is then streamed to:

bare
    a bare websockets client that only decodes the frames: the floor;
ours
    the app (``ChatApp`` under ``App.run_test``), whose message view cuts
    the answer into bounded parts drawn by Rich where they are seen;
naive
    the same app with ``MessageView.append`` replaced by a re-render of the
    whole Markdown on each chunk (Textual's ``Markdown.update(all text so far)``), on
    the smaller ``--naive-words`` answer since it grows quadratically (ours
    runs that size too, for a like-for-like ratio).

Figures per run: seconds from the first chunk received to the final text
rendered (the ``complete`` frame applied, the final widgets mounted,
``app.settled()``, then ``pilot.pause(0)``, which paints the screen; not
``pilot.pause()``, which also waits for the process to be idle for 20 ms
or more, a wait that counted the key presses still being sent and work the
app leaves for idle time, such as measuring parts no one has seen) and its ratio to bare
(target <= 1.2), and the bare client's seconds from the question to the
first chunk (``bare_first_chunk_seconds``: the server's, before either
window starts); app CPU per chunk over the first and the last tenth of the
chunks (target: flat); key-press latency while streaming (a key ``x`` sent
and a backspace in turn, to the focused composer every ``--key-every-ms``, until its
``TextArea.Changed`` is handled); and the app process's CPU seconds over
the same span (``app_cpu_seconds``: it includes the key presses' handling,
and moves less with the machine's load than the wall-clock ratio); and the
CPU seconds the app spends once idle measuring the parts that streamed past
unseen (``idle_cpu_seconds``: not in the figures above, since the text on
screen is final before it; it includes the idle waits' own polling).

    python -m bench.render                          # demo answer, 20,000 words
    python -m bench.render --source markdown --words 20000
    python -m bench.render --source code,prose --code-kb 400 --naive-words 0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import re
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from textual import events
from textual.widgets import Markdown, TextArea
from websockets.asyncio.client import connect

from bench.common import bench_parser, load_average, machine
from bench.servers import ANSWER_SERVE_FLAGS, relayed_upstream, started
from mfu_tui.client import ClientSettings
from mfu_tui.protocol import Chunk, Complete, Message, decode_server, encode
from mfu_tui.tui import AppSettings, ChatApp
from mfu_tui.tui import app as app_module
from mfu_tui.tui.widgets.answer_body import AnswerBody
from mfu_tui.tui.widgets.message_view import MessageView
from tests.support.figures import percentiles
from tests.support.server import ServerProcess

TIMEOUT = 1800.0
#: The pieces of both answers: a word and the whitespace around it.
_WORDS = re.compile(r"\s*\S+\s*")


# --- bare client ---------------------------------------------------------------


async def bare(url: str, token: str, question: str) -> dict[str, Any]:
    """A bare websockets client: seconds from the first chunk to ``complete``, and from the question to the first."""
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}, proxy=None, max_queue=None) as ws:
        await ws.send(encode(Message(chat_id=None, content=question, client_message_id=str(uuid.uuid4()))).decode())
        asked, first, chunks = time.perf_counter(), 0.0, 0
        async with asyncio.timeout(TIMEOUT):
            async for data in ws:
                frame = decode_server(data)
                if isinstance(frame, Chunk):
                    chunks += 1
                    first = first or time.perf_counter()
                elif isinstance(frame, Complete):
                    return {"seconds": time.perf_counter() - first, "chunks": chunks, "first_chunk": first - asked}
    raise RuntimeError("closed before complete")


# --- the app -------------------------------------------------------------------


class BenchApp(ChatApp):
    """The app, plus a hook that resolves a future when the composer's text changes."""

    # Textual resolves a relative CSS_PATH next to the subclass's module: point at the app's file.
    CSS_PATH = str(Path(app_module.__file__).parent / str(ChatApp.CSS_PATH))
    on_changed: Callable[[], object] | None = None

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if self.on_changed is not None:
            self.on_changed()
            self.on_changed = None


def new_app(url: str, token: str, workdir: Path) -> BenchApp:
    """The app on ``url``, with a data directory of its own under ``workdir``."""
    return BenchApp(
        AppSettings(
            url=url,
            token=token,
            plain=False,
            cursor_blink=False,
            client=ClientSettings(data_dir=workdir / f"data-{uuid.uuid4()}"),
            export_dir=workdir,
        )
    )


async def until_ready(app: ChatApp) -> None:
    """Until the app is connected and shows what the server has."""
    async with asyncio.timeout(TIMEOUT):
        while app.client.state.status.name != "CONNECTED":
            await asyncio.sleep(0.01)
        await app.settled()


async def _naive_append(self: MessageView, delta: str, seq: int, thought: str = "") -> None:
    """The naive baseline: re-render the whole Markdown on each chunk (the bench's answers have no reasoning).

    The app joins the chunks it finds queued into one append; each chunk of
    these answers is one word, so the naive view splits them again.
    """
    if seq <= self.last_seq:
        return
    self.last_seq = seq
    self.status = "streaming"
    if not self.query(Markdown):  # Textual's Markdown widget in place of the app's answer widget
        body = self.query_one(AnswerBody)
        await self.mount(Markdown(classes="body"), before=body)
        await body.remove()
    markdown = self.query_one(Markdown)
    for word in _WORDS.findall(delta):
        self._pieces.append(word)
        self._text = None
        await markdown.update(self.text)


def _cost_per_chunk(points: list[tuple[float, int]]) -> tuple[float, float]:
    """CPU seconds per chunk over the first and the last tenth of the chunks.

    ``points`` are (process time, seq shown) from the first chunk received
    (seq 0) to the last append. The app applies queued chunks in batches, so
    a window runs from the first chunk to the first append that reaches a
    tenth of them, and from the last append before the last tenth to the end.
    """
    total = points[-1][1]
    first = next(k for k, (_, seq) in enumerate(points) if seq >= total / 10)
    last = max(k for k, (_, seq) in enumerate(points) if seq <= total * 0.9)
    return (
        (points[first][0] - points[0][0]) / points[first][1],
        (points[-1][0] - points[last][0]) / (total - points[last][1]),
    )


async def app_run(
    url: str, token: str, question: str, workdir: Path, naive: bool, key_every: float, size: tuple[int, int]
) -> dict[str, Any]:
    original = MessageView.append
    applied: list[tuple[float, int]] = []  # (process time, seq shown): at the first chunk, then after each append

    async def timed_append(self: MessageView, delta: str, seq: int, thought: str = "") -> None:
        await (_naive_append if naive else original)(self, delta, seq, thought)
        applied.append((time.process_time(), seq))

    MessageView.append = timed_append  # type: ignore[method-assign]
    app = new_app(url, token, workdir)
    try:
        async with app.run_test(size=size) as pilot:
            await until_ready(app)
            marks: dict[str, float] = {}
            frames = [0]  # chunk frames the app received: the server cuts each answer anew
            complete = asyncio.get_running_loop().create_future()

            def on_frame(frame: Any) -> None:
                if isinstance(frame, Chunk):
                    frames[0] += 1
                if isinstance(frame, Chunk) and "first" not in marks:
                    marks["first"] = time.perf_counter()
                    applied.append((time.process_time(), 0))
                elif isinstance(frame, Complete) and not complete.done():
                    complete.set_result(None)

            unsubscribe = app.client.on_message(on_frame)
            app.composer.focus()
            app.composer.text = question
            _send_key(app, "enter", None)  # not pilot.press: it waits for the app to be idle, i.e. the whole stream
            key_ms: list[float] = []
            stop_keys = threading.Event()
            keys = threading.Thread(
                target=_press_keys, args=(app, asyncio.get_running_loop(), key_every, key_ms, stop_keys)
            )
            keys.start()
            async with asyncio.timeout(TIMEOUT):
                await complete
                await app.settled()
                await pilot.pause(0)  # the screen painted (see the docstring)
            end = time.perf_counter()
            end_cpu_total = time.process_time()
            stop_keys.set()
            await asyncio.to_thread(keys.join)
            # What the app leaves for when it is idle: the heights of the parts that streamed past unseen.
            later_cpu = time.process_time()
            async with asyncio.timeout(TIMEOUT):
                while any(parts.estimated for parts in app.query(AnswerBody)):
                    await pilot.pause()
            later_cpu = time.process_time() - later_cpu
            unsubscribe()
            views = app.conversation.views
            text = views[-1].text if views else ""
    finally:
        MessageView.append = original  # type: ignore[method-assign]
    start_cpu, end_cpu = _cost_per_chunk(applied)
    return {
        "seconds": end - marks["first"],
        "app_cpu_seconds": round(end_cpu_total - applied[0][0], 3),
        "idle_cpu_seconds": round(later_cpu, 3),
        "appends": len(applied) - 1,
        "app_chunks": frames[0],
        "text_words": len(text.split()),
        "cpu_ms_per_chunk_first_tenth": round(start_cpu * 1000, 3),
        "cpu_ms_per_chunk_last_tenth": round(end_cpu * 1000, 3),
        "key_press_ms": percentiles(key_ms, 1),
    }


def _press_keys(
    app: BenchApp, loop: asyncio.AbstractEventLoop, every: float, latencies: list[float], stop: threading.Event
) -> None:
    """From a thread, as a terminal's input does: a key every ``every`` seconds until ``stop``.

    Each key is timed from the moment the thread hands it to the event loop
    to its ``TextArea.Changed`` handled, so time the loop spends blocked
    (a long render) counts, as it would for a user typing.
    """
    # x then backspace, so the composer does not fill up (a long line costs the TextArea more to draw).
    for key, character in itertools.cycle([("x", "x"), ("backspace", None)]):
        if stop.is_set():
            break
        handled = threading.Event()
        sent = time.perf_counter()
        app.on_changed = lambda sent=sent, handled=handled: (
            latencies.append((time.perf_counter() - sent) * 1000),
            handled.set(),
        )
        loop.call_soon_threadsafe(_send_key, app, key, character)
        if not handled.wait(60):
            break
        stop.wait(every)


def _send_key(app: ChatApp, key: str, character: str | None) -> None:
    """What a terminal key press does: a ``Key`` event from the driver (as ``Pilot.press``, without its wait)."""
    event = events.Key(key, character)
    event.set_sender(app)
    assert app._driver is not None
    app._driver.send_message(event)


# --- the conductor ---------------------------------------------------------------


@contextlib.contextmanager
def answering_server(workdir: Path, source: str, words: int) -> Iterator[ServerProcess]:
    """The server, answering with the demo provider's answer or ``bench.upstream``'s of mode ``source``."""
    if source != "demo":
        with relayed_upstream(workdir, "--mode", source, "--words", str(words)) as server:
            yield server
        return
    demo = ServerProcess(workdir, "--demo-words", str(words), "--demo-delay-ms", "0", *ANSWER_SERVE_FLAGS)
    with started(demo) as server:
        yield server


async def measure(source: str, words: int, workdir: Path, args: argparse.Namespace, naive: bool) -> dict[str, Any]:
    with answering_server(workdir / f"{source}-{words}-{naive}", source, words) as server:
        token = server.token("bench")
        size = tuple(int(n) for n in args.size.split("x"))
        load = load_average()
        floor = min(
            [await bare(server.url, token, "bench render") for _ in range(args.repeat)], key=lambda r: r["seconds"]
        )
        runs = [
            await app_run(server.url, token, "bench render", workdir, naive, args.key_every_ms / 1000, size)  # type: ignore[arg-type]
            for _ in range(args.repeat)
        ]
        best = min(runs, key=lambda r: r["seconds"])
    return {
        "approach": "naive" if naive else "ours",
        "source": source,
        "words": words,
        "chunks": floor["chunks"],
        "bare_seconds": round(floor["seconds"], 3),
        "bare_first_chunk_seconds": round(floor["first_chunk"], 3),
        "app_seconds": round(best["seconds"], 3),
        "ratio": round(best["seconds"] / floor["seconds"], 2),
        **{k: v for k, v in best.items() if k != "seconds"},
        "load_1min": load,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        Path.mkdir(workdir / "x", exist_ok=True)
        for source in args.source.split(","):
            long = args.code_kb * 1000 if source in ("code", "prose") else args.words
            for words, naive in ((long, False), (args.naive_words, False), (args.naive_words, True)):
                if words and (source, words, naive) not in [
                    (r["source"], r["words"], r["approach"] == "naive") for r in results
                ]:
                    (workdir / f"{source}-{words}-{naive}").mkdir()
                    results.append(await measure(source, words, workdir, args, naive))
                    print(json.dumps(results[-1]), file=sys.stderr, flush=True)  # a long run keeps what it has
    return {"machine": machine(), "runs": results}


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument(
        "--source", default="demo", help="demo, markdown, code or prose, or several: demo,markdown (default demo)"
    )
    parser.add_argument(
        "--code-kb", type=int, default=400, help="size of the code and prose answers in KB (default 400)"
    )
    parser.add_argument("--words", type=int, default=20000, help="words of the long answer (default 20000)")
    parser.add_argument(
        "--naive-words", type=int, default=500, help="answer size for the naive baseline (default 500; 0: skip)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the best is kept (default 1)")
    parser.add_argument("--key-every-ms", type=float, default=50.0, help="pause between two key presses (default 50)")
    parser.add_argument("--size", default="120x40", help="terminal size (default 120x40)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
