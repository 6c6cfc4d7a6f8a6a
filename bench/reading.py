"""Reading speed: the app's CPU while an answer streams at a model's pace, against a bare Textual app.

The server runs as a subprocess (``python -m mfu_tui serve --provider
openai``) and relays ``bench.upstream --mode SOURCE --pace W``: sectioned
Markdown (headings, paragraphs, lists, code blocks), or with ``--source
code`` one code block and ``--source prose`` paragraphs of plain words,
``--pace`` words (pieces) a second, as a model writes. In turn,
``--rounds`` times, the same question is streamed to:

bare
    a Textual app of one ``Log`` widget that a bare websockets client writes
    the chunks' text to, at most every ``PACE`` seconds as the app shows
    them (the chunks that come sooner join the next write): the least a
    Textual app does to show a stream as often (plain text, no Markdown):
    the floor;
ours
    the app (``ChatApp`` under ``App.run_test``).

Figures per round: the process's CPU from the first chunk to the answer
shown whole, as a percentage of one core over the same span, for each, and
their ratio. What a user feels as fan noise and battery on a laptop, and
what a shared login node pays per user; CPU time moves less with the
machine's load than wall-clock times.

    python -m bench.reading                       # 300 words at 50 words a second, 3 rounds
    python -m bench.reading --pace 100 --words 600
    python -m bench.reading --source code --words 1500   # code: --words counts characters
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult
from textual.widgets import Log
from websockets.asyncio.client import connect

from bench.common import bench_parser, load_average, machine
from bench.render import _send_key, new_app, until_ready
from bench.servers import relayed_upstream
from mfu_tui.protocol import Chunk, Complete, Message, decode_server, encode
from mfu_tui.tui.stream_pace import STREAM_FRAME

TIMEOUT = 600.0

#: Seconds between two writes of the floor: the app's (``StreamPace``).
PACE = STREAM_FRAME


class BareApp(App[None]):
    """The floor: one ``Log`` the stream is written to."""

    def compose(self) -> ComposeResult:
        yield Log()


def _share(start: tuple[float, float], end: tuple[float, float]) -> float:
    """CPU over wall time between two (perf_counter, process_time) marks, in percent of one core."""
    return round((end[1] - start[1]) / (end[0] - start[0]) * 100, 1)


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


async def bare(url: str, token: str, size: tuple[int, int]) -> float:
    """The floor's CPU share while the answer streams."""
    app = BareApp()
    async with app.run_test(size=size) as pilot:
        log = app.query_one(Log)
        waiting: list[str] = []  # chunks come since the last write
        flush: asyncio.TimerHandle | None = None
        written = 0.0  # when the last write was

        def write() -> None:
            nonlocal flush, written
            log.write("".join(waiting))
            waiting.clear()
            flush, written = None, time.monotonic()

        headers = {"Authorization": f"Bearer {token}"}
        async with connect(url, additional_headers=headers, proxy=None, max_queue=None) as ws:
            await ws.send(encode(Message(chat_id=None, content="read", client_message_id=str(uuid.uuid4()))).decode())
            start = None
            async with asyncio.timeout(TIMEOUT):
                async for data in ws:
                    frame = decode_server(data)
                    if isinstance(frame, Chunk):
                        start = start or _now()
                        waiting.append(frame.content)
                        wait = written + PACE - time.monotonic()
                        if wait <= 0:
                            write()
                        elif flush is None:
                            flush = asyncio.get_running_loop().call_later(wait, write)
                    elif isinstance(frame, Complete):
                        if flush is not None:
                            flush.cancel()
                            write()
                        await pilot.pause(0)  # the screen painted
                        assert start is not None
                        return _share(start, _now())
    raise RuntimeError("closed before complete")


async def ours(url: str, token: str, size: tuple[int, int], workdir: Path) -> float:
    """The app's CPU share while the answer streams."""
    app = new_app(url, token, workdir)
    async with app.run_test(size=size) as pilot:
        await until_ready(app)
        marks: list[tuple[float, float]] = []
        complete = asyncio.get_running_loop().create_future()

        def on_frame(frame: Any) -> None:
            if isinstance(frame, Chunk) and not marks:
                marks.append(_now())
            elif isinstance(frame, Complete) and not complete.done():
                complete.set_result(None)

        unsubscribe = app.client.on_message(on_frame)
        app.composer.focus()
        app.composer.text = "read"
        _send_key(app, "enter", None)
        async with asyncio.timeout(TIMEOUT):
            await complete
            await app.settled()
            await pilot.pause(0)  # the screen painted
        unsubscribe()
        return _share(marks[0], _now())


async def run(args: argparse.Namespace) -> dict[str, Any]:
    size = (int(args.size.split("x")[0]), int(args.size.split("x")[1]))
    with (
        tempfile.TemporaryDirectory() as tmp,
        relayed_upstream(
            Path(tmp), "--mode", args.source, "--words", str(args.words), "--pace", str(args.pace)
        ) as server,
    ):
        token = server.token("bench")
        rounds = []
        for _ in range(args.rounds):
            load = load_average()
            floor = await bare(server.url, token, size)
            app = await ours(server.url, token, size, Path(tmp))
            rounds.append({"bare_percent": floor, "app_percent": app, "ratio": round(app / floor, 2), "load": load})
    return {
        "machine": machine(),
        "source": args.source,
        "words": args.words,
        "words_per_second": args.pace,
        "size": args.size,
        "rounds": rounds,
        "median_ratio": statistics.median(r["ratio"] for r in rounds),
    }


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument(
        "--source", choices=["markdown", "code", "prose"], default="markdown", help="the answer (default markdown)"
    )
    parser.add_argument(
        "--words", type=int, default=300, help="words of the answer; code, prose: characters (default 300)"
    )
    parser.add_argument("--pace", type=float, default=50.0, help="words a second (default 50)")
    parser.add_argument("--rounds", type=int, default=3, help="bare and ours in turn, this many times (default 3)")
    parser.add_argument("--size", default="120x40", help="terminal size (default 120x40)")
    print(json.dumps(asyncio.run(run(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
