"""One long message opened: the seconds until it is on screen, and how long the app is then busy.

A ``MessageView`` of an assistant message of ``--chars`` characters (short
paragraphs of words) is mounted in a scrolled view of a headless app of
``--size``, scrolled to its end and painted (``pilot.pause(0)``); then one
call is queued to the app and timed until it runs: what a key pressed just
then would wait. The floor is a ``Static`` of the same text in the same
view, the least a Textual app does to show it (Rich wraps it all). Runs of
the two alternate.

    python -m bench.long_message --chars 2000000,3000000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from bench.common import load_average, machine
from mfu_tui.tui.widgets.message_view import MessageView


def long_text(chars: int) -> str:
    """Paragraphs of about 320 characters, cut at ``chars``."""
    paragraphs = (f"Paragraph {n}: " + "word " * 60 + "\n\n" for n in range(chars // 320 + 1))
    return "".join(paragraphs)[:chars]


class Pane(App[None]):
    """A scrolled view, empty until the bench mounts into it."""

    def compose(self) -> ComposeResult:
        yield VerticalScroll()


async def shown(widget: Widget, size: tuple[int, int]) -> dict[str, float]:
    """Seconds and CPU seconds until ``widget`` is painted at the view's end; then a call's wait, in ms."""
    app = Pane()
    async with app.run_test(size=size) as pilot:
        view = app.query_one(VerticalScroll)
        start, start_cpu = time.perf_counter(), time.process_time()
        await view.mount(widget)
        view.scroll_end(animate=False)
        await pilot.pause(0)
        seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
        ran = asyncio.Event()
        queued = time.perf_counter()
        app.call_later(ran.set)
        await ran.wait()
        waited = time.perf_counter() - queued
        return {"seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3), "next_call_ms": round(1000 * waited, 1)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    size = tuple(int(n) for n in args.size.split("x"))
    results = []
    for chars in (int(n) for n in args.chars.split(",")):
        text = long_text(chars)
        for round_ in range(args.rounds):
            floor = await shown(Static(text, markup=False), size)  # type: ignore[arg-type]
            ours = await shown(MessageView("assistant", text, message_id="m"), size)  # type: ignore[arg-type]
            results.append({"chars": chars, "round": round_, "floor": floor, "ours": ours, "load_1min": load_average()})
    return {"machine": machine(), "runs": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chars", default="2000000", help="message lengths, comma-separated (default 2000000)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each (default 3)")
    parser.add_argument("--size", default="120x40", help="terminal size (default 120x40)")
    print(json.dumps(asyncio.run(run(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
