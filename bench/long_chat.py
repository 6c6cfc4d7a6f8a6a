"""Long chats: the app opens a chat of ``--messages`` messages; time to first screen and memory.

The real server runs as a subprocess; a raw WebSocket client fills one chat
with ``--messages`` messages (questions and their demo answers of
``--words`` words: Markdown with a list and a code block) and a small chat
of ``--small`` messages, the floor. The app (``ChatApp`` under
``App.run_test``, ``--size``) then opens each: the time runs from
``load_chat`` to the messages on screen (``app.settled()`` and one
``pilot.pause()``), and the memory is the bench process's RSS (the app and
its client; the server is another process) before and after. The app gives
widgets to a range of at most three windows of messages around what is on
screen (a window is 12 by default), so the long chat should cost little more
than the small one.

    python -m bench.long_chat --messages 1000

With ``--stored`` the long chat is written into the server's store before it
starts (``--messages`` of them in a moment, e.g. 10,000), and each chat is
then measured with ``home`` pressed: the time until its first message is on
screen, the time of a page step at the start (``pagedown``) and at the end
(``end``, then ``pageup``), of an ``up`` step selecting back from the end,
the most widgets mounted and the app's RSS, small and long side by side.

    python -m bench.long_chat --stored --messages 10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from bench.common import bench_parser, load_average, machine, rss_kib
from bench.render import BenchApp
from mfu_tui.client import ClientSettings
from mfu_tui.protocol import Complete, Message, decode_server, encode
from mfu_tui.tui import AppSettings
from tests.support.server import ServerProcess
from tests.tui.long_chats import long_text, store_long_chat

TIMEOUT = 600.0


async def fill_chat(url: str, token: str, messages: int) -> str:
    """A new chat of ``messages`` messages (half questions, half answers); its id."""
    headers = {"Authorization": f"Bearer {token}"}
    chat_id = None
    async with connect(url, additional_headers=headers, proxy=None, max_queue=None, max_size=None) as ws:
        for n in range(messages // 2):
            question = f"Question {n}: how does a websocket relay keep chunks in order?"
            await ws.send(
                encode(Message(chat_id=chat_id, content=question, client_message_id=str(uuid.uuid4()))).decode()
            )
            async with asyncio.timeout(TIMEOUT):
                async for data in ws:
                    frame = decode_server(data)
                    if isinstance(frame, Complete):
                        chat_id = frame.chat_id
                        break
    assert chat_id is not None
    return chat_id


async def open_chats(
    url: str, token: str, chats: dict[str, str], workdir: Path, size: tuple[int, int], window: int, jump: bool
) -> dict[str, Any]:
    app = BenchApp(
        AppSettings(
            url=url,
            token=token,
            plain=False,
            cursor_blink=False,
            client=ClientSettings(data_dir=workdir / "data"),
            export_dir=workdir,
            window=window,
        )
    )
    figures: dict[str, Any] = {}
    async with app.run_test(size=size) as pilot:
        async with asyncio.timeout(TIMEOUT):
            while app.client.state.status.name != "CONNECTED":
                await asyncio.sleep(0.01)
            await app.settled()
        await pilot.pause()
        for name, chat_id in chats.items():
            await app.conversation.clear()
            await pilot.pause()
            rss_before = rss_kib(os.getpid())
            started = time.perf_counter()
            app.load_chat(chat_id)
            async with asyncio.timeout(TIMEOUT):
                await app.settled()
            await pilot.pause()
            seconds = time.perf_counter() - started
            figures[name] = {
                "messages_in_chat": app.conversation.message_count,
                "message_widgets": len(app.conversation.views),
                "first_screen_seconds": round(seconds, 3),
                "app_rss_before_mib": round(rss_before / 1024, 1),
                "app_rss_open_mib": round(rss_kib(os.getpid()) / 1024, 1),
                "load_1min": load_average(),
            }
            if jump:
                figures[name] |= await press_home_and_scroll(app, pilot, name)
    return figures


async def _keys(app: BenchApp, pilot: Any, *keys: str) -> float:
    """Seconds from pressing ``keys`` to the app done with them (the range's windows mounted)."""
    started = time.perf_counter()
    await pilot.press(*keys)
    async with asyncio.timeout(TIMEOUT):
        await app.settled()
        # Each window mounted may start the next (the view still near a spacer): wait for them all.
        while running := [worker for worker in app.workers if worker.group == "range" and worker.is_running]:
            for worker in running:
                await worker.wait()
    await pilot.pause()
    return time.perf_counter() - started


async def press_home_and_scroll(app: BenchApp, pilot: Any, name: str, steps: int = 10) -> dict[str, Any]:
    """``home``, then page steps at the start and at the end: their times, widgets and memory."""
    conversation = app.conversation
    conversation.focus()
    home = await _keys(app, pilot, "home")
    first = conversation.views[0].text if conversation.views else ""
    widgets_most = len(conversation.views)
    down = []
    for _ in range(steps):
        down.append(await _keys(app, pilot, "pagedown"))
        widgets_most = max(widgets_most, len(conversation.views))
    await _keys(app, pilot, "end")
    up = []
    for _ in range(steps):
        up.append(await _keys(app, pilot, "pageup"))
        widgets_most = max(widgets_most, len(conversation.views))
    await _keys(app, pilot, "end")
    select = []
    for _ in range(3 * steps):
        select.append(await _keys(app, pilot, "up"))
        widgets_most = max(widgets_most, len(conversation.views))
    return {
        "home_seconds": round(home, 3),
        "home_shows_first_message": first == long_text(0) or name == "small",
        "page_step_at_start_ms": round(1000 * sum(down) / steps, 1),
        "page_step_at_end_ms": round(1000 * sum(up) / steps, 1),
        "up_step_from_the_end_ms": round(1000 * sum(select) / len(select), 1),
        "message_widgets_most": widgets_most,
        "app_rss_after_home_mib": round(rss_kib(os.getpid()) / 1024, 1),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(
            Path(tmp),
            "--demo-words",
            str(args.words),
            "--demo-delay-ms",
            "0",
            "--rate-limit",
            "1000000",
            "--log-level",
            "warning",
        )
        started = time.perf_counter()
        stored = await store_long_chat(server.db_path, args.messages, user="bench") if args.stored else None
        server.start()
        try:
            token = server.token("bench")
            chats = {
                "small": await fill_chat(server.url, token, args.small),
                "long": stored or await fill_chat(server.url, token, args.messages),
            }
            filled = time.perf_counter() - started
            size = tuple(int(n) for n in args.size.split("x"))
            figures = await open_chats(
                server.url,
                token,
                chats,
                Path(tmp),
                size,  # type: ignore[arg-type]
                args.window,
                args.stored,
            )
        finally:
            server.terminate()
            server.wait()
    long, small = figures["long"], figures["small"]
    return {
        "machine": machine(),
        "fill_seconds": round(filled, 1),
        **figures,
        "ratio_long_to_small": round(long["first_screen_seconds"] / small["first_screen_seconds"], 2),
        **(
            {
                "rss_ratio_long_to_small": round(long["app_rss_after_home_mib"] / small["app_rss_after_home_mib"], 2),
                "page_step_ratio_end_to_start": round(long["page_step_at_end_ms"] / long["page_step_at_start_ms"], 2),
            }
            if args.stored
            else {}
        ),
    }


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--messages", type=int, default=1000, help="messages in the long chat (default 1000)")
    parser.add_argument("--small", type=int, default=10, help="messages in the small chat, the floor (default 10)")
    parser.add_argument("--words", type=int, default=80, help="words of each answer (default 80)")
    parser.add_argument(
        "--window",
        type=int,
        default=AppSettings.window,
        help=f"messages given widgets at once (default {AppSettings.window}, the app's)",
    )
    parser.add_argument("--size", default="120x40", help="terminal size (default 120x40)")
    parser.add_argument(
        "--stored", action="store_true", help="store the long chat directly, then measure home and page steps"
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
