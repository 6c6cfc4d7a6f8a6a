"""A fake OpenAI-compatible model server for the benches, run as its own process.

``python -m bench.upstream --mode stamped --rate 30 --pieces 300`` streams
each completion as ``--pieces`` pieces, ``--rate`` a second, each piece's
text being the ``time.monotonic_ns()`` at which it was written to the socket
(CLOCK_MONOTONIC is the same clock in every process of the machine): a
client reading the chunks relayed by ``mfu-chat serve --provider openai``
computes upstream -> server -> client latency from them.

``--mode markdown --words N`` streams a long Markdown answer (headings,
paragraphs, lists, fenced code blocks) one word at a time, as fast as the
socket takes it: the render bench's answer; with ``--pace W``, W words a
second, as a model writes (the reading bench's answer). ``--mode code --words N``
(one fenced code block of about N characters) and ``--mode prose --words N``
(paragraphs of about N characters) compare a long code block with as much
prose.

It speaks the real wire format (``text/event-stream`` in chunked encoding,
``data: {...}`` events, ``data: [DONE]``) and prints
``upstream: listening on http://127.0.0.1:PORT`` once ready.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import itertools
import json
import re
import time

from bench.common import run_tool

_PIECES = re.compile(r"\s*\S+\s*")

_SENTENCES = (
    "the server stores each chunk before it sends it so a client that reconnects resumes where it stopped "
    "markdown arrives in pieces and the terminal shows them as they come without waiting for the end"
)
_WORDS = _SENTENCES.split()

_CODE = '''```python
def relay(chunks, socket):
    """Forward each chunk in order."""
    for seq, chunk in enumerate(chunks, start=1):
        socket.send({"seq": seq, "content": chunk})
    return seq
```'''


def long_markdown(words: int) -> str:
    """A Markdown answer of about ``words`` words: sections of paragraphs, a list and a code block."""
    parts: list[str] = []
    count = section = 0
    while count < words:
        section += 1
        parts.append(f"## Part {section}")
        for paragraph in range(3):
            text = " ".join(_WORDS[(section * 7 + paragraph * 3 + i) % len(_WORDS)] for i in range(60))
            parts.append(f"{text[0].upper()}{text[1:]}, with `inline code` and **bold** words.")
            count += 66
        parts.append("\n".join(f"- item {n} of part {section}: {_WORDS[n]} {_WORDS[n + 1]}" for n in range(4)))
        parts.append(_CODE)
        count += 4 * 7 + 30
    return "\n\n".join(parts) + "\n"


def long_code(chars: int) -> str:
    """One fenced code block of about ``chars`` characters of Python lines, after a sentence."""
    lines = ["Here is the code:", "", "```python"]
    count = n = 0
    while count < chars:
        line = f"value_{n} = compute(value_{n - 1}, {n}) + {n % 7}  # step {n}"
        lines.append(line)
        count += len(line) + 1
        n += 1
    return "\n".join([*lines, "```", ""])


def long_prose(chars: int) -> str:
    """Paragraphs of plain words, about ``chars`` characters: as much text as ``long_code``, without code."""
    paragraphs: list[str] = []
    count = 0
    while count < chars:
        n = len(paragraphs)
        text = " ".join(_WORDS[(n * 7 + i) % len(_WORDS)] for i in range(60))
        paragraphs.append(f"{text[0].upper()}{text[1:]}.")
        count += len(paragraphs[-1]) + 2
    return "\n\n".join(paragraphs) + "\n"


#: The long answers by mode, from their size (words for markdown, characters for code and prose).
ANSWERS = {"markdown": long_markdown, "code": long_code, "prose": long_prose}


#: Seconds between two rounds of stamped pieces (``Stamper``).
TICK = 0.001


class Stamper:
    """Writes the stamped pieces of every answer streaming, in rounds: one wake-up for all that are due.

    A sleep per piece and per answer (thousands a second under load) made
    the upstream cost about as much per chunk as the load's client side;
    each piece is still stamped as it is written, so the latencies stay
    exact, and it is at most ``TICK`` late.
    """

    def __init__(self, interval: float, pieces: int) -> None:
        self.interval = interval
        self.pieces = pieces
        self._due: list[tuple[float, int, int, asyncio.StreamWriter, asyncio.Future[None]]] = []
        """Each answer by when its next piece is due: the time, its number, the pieces written, the socket, its end."""
        self._numbers = itertools.count()
        self._running: asyncio.Task[None] | None = None

    async def stream(self, writer: asyncio.StreamWriter) -> None:
        """Write an answer's pieces to ``writer``, one every ``interval``; return after the last."""
        end = asyncio.get_running_loop().create_future()
        heapq.heappush(self._due, (time.monotonic(), next(self._numbers), 0, writer, end))
        if self._running is None:
            self._running = asyncio.create_task(self._run())
        await end

    async def _run(self) -> None:
        due = self._due
        while due:
            now = time.monotonic()
            while due and due[0][0] <= now:
                at, number, written, writer, end = heapq.heappop(due)
                _stamped_event(writer, time.monotonic_ns())
                if written + 1 < self.pieces and not writer.is_closing():
                    heapq.heappush(due, (at + self.interval, number, written + 1, writer, end))
                elif not end.done():
                    end.set_result(None)
            await asyncio.sleep(TICK)
        self._running = None


class Upstream:
    """The HTTP side: ``/v1/models`` and streamed ``/v1/chat/completions``."""

    def __init__(self, mode: str, rate: float, pieces: int, words: int, pace: float = 0.0) -> None:
        self.mode = mode
        self.stamper = Stamper(1.0 / rate if rate > 0 else 0.0, pieces)
        self.answer = _PIECES.findall(ANSWERS[mode](words)) if mode in ANSWERS else []
        #: Seconds between two words of a long answer (0: as fast as the socket takes them).
        self.word_interval = 1.0 / pace if pace > 0 else 0.0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while request_line := await reader.readline():
                method, path, _ = request_line.decode().split(" ", 2)
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                if path.endswith("/models"):
                    body = json.dumps({"object": "list", "data": [{"id": "bench"}]}).encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        + f"Content-Length: {len(body)}\r\n\r\n".encode()
                        + body
                    )
                elif method == "POST":
                    await self.complete(writer)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def complete(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        if self.mode in ANSWERS:
            for piece in self.answer:
                _event(writer, piece)
                await writer.drain()
                if self.word_interval:
                    await asyncio.sleep(self.word_interval)
        else:
            await self.stamper.stream(writer)
        _event(writer, None)
        writer.write(b"0\r\n\r\n")


#: A stamped piece's event (its content, digits and a space, needs no escaping), to fill with ``%``.
_STAMPED = b'data: {"choices": [{"index": 0, "delta": {"content": "%d "}, "finish_reason": null}]}\n\n'


def _stamped_event(writer: asyncio.StreamWriter, stamp: int) -> None:
    """``_event(writer, f"{stamp} ")``, without building and encoding JSON for each piece."""
    data = _STAMPED % stamp
    writer.write(b"%x\r\n%s\r\n" % (len(data), data))


def _event(writer: asyncio.StreamWriter, content: str | None) -> None:
    """One server-sent event: a piece, or the finish and ``[DONE]`` when ``content`` is None."""
    if content is None:
        finish = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        text = f"data: {json.dumps(finish)}\n\ndata: [DONE]\n\n"
    else:
        delta = {"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}]}
        text = f"data: {json.dumps(delta)}\n\n"
    data = text.encode()
    writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["stamped", *ANSWERS], default="stamped")
    parser.add_argument("--rate", type=float, default=30.0, help="stamped pieces a second (default 30)")
    parser.add_argument("--pieces", type=int, default=300, help="stamped pieces per answer (default 300)")
    parser.add_argument(
        "--words",
        type=int,
        default=20000,
        help="markdown: words; code, prose: characters (default 20000)",
    )
    parser.add_argument(
        "--pace", type=float, default=0.0, help="markdown, code, prose: words a second (default 0: at once)"
    )
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    upstream = Upstream(args.mode, args.rate, args.pieces, args.words, args.pace)
    server = await asyncio.start_server(upstream.serve, "127.0.0.1", args.port, backlog=4096)
    print(f"upstream: listening on http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    run_tool(main())
