"""An offline provider: a deterministic Markdown answer, word by word.

It needs no network and no model, so the app can be tried, tested and
benchmarked anywhere. The answer quotes the question under a heading, then a
list and a fenced code block, then filler words; the same question always
gets the same answer. Files sent with the question are named, with their
sizes, under the quote, so attachments can be tried offline too. It reports
usage as a model server does, counting words as tokens, so the offline path
shows the same figures as a real one. A question starting with ``think:`` is
answered after some reasoning (``demo_reasoning``), streamed first, so the
reasoning path can be tried offline too.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncGenerator

from mfu_tui.protocol import AttachmentInfo, ChatParams, ModelInfo, Usage
from mfu_tui.server.model_input import ModelTurn
from mfu_tui.server.providers.base import Finish, Provider, Reasoning, StreamItem

MODEL_ID = "demo"

#: A question starting with this is answered after reasoning about it.
THINK_PREFIX = "think:"

_VOCABULARY = (
    "streaming tokens arrive in order over a websocket and the server stores each chunk before it "
    "sends it so a reconnecting client can resume exactly where it stopped without gaps or duplicates"
).split()

#: Words, each with the whitespace that follows it: the pieces of the stream.
_PIECES = re.compile(r"\s*\S+\s*")


def demo_answer(question: str, words: int, attached: list[AttachmentInfo] | None = None) -> str:
    """The full demo answer to ``question`` and the files ``attached`` to it, cut to ``words`` words."""
    question = " ".join(question.split()) or "(nothing)"
    files = ", ".join(f"{file.name} ({file.media_type}, {file.size} bytes)" for file in attached or [])
    files_line = f"Attached: {files}\n\n" if files else ""
    quoted = question if len(question) <= 300 else question[:299] + "…"
    digest = hashlib.sha256(question.encode()).digest()
    filler = " ".join(_VOCABULARY[(digest[i % len(digest)] + i) % len(_VOCABULARY)] for i in range(max(words, 0)))
    text = (
        "## Demo answer\n\n"
        f"> {quoted}\n\n"
        f"{files_line}"
        "This is the offline demo provider. Three points:\n\n"
        "- it needs no network\n"
        "- it streams word by word\n"
        "- the same question gets the same answer\n\n"
        "```python\n"
        f"print({len(question)})  # characters in the question\n"
        "```\n\n"
        f"{filler}\n"
    )
    pieces = _PIECES.findall(text)
    return "".join(pieces[:words])


def demo_reasoning(question: str) -> str:
    """What the demo "thinks" before answering ``question`` (empty unless it starts with ``THINK_PREFIX``)."""
    if not question.lstrip().lower().startswith(THINK_PREFIX):
        return ""
    asked = " ".join(question.split())
    return (
        f"The question is {len(asked)} characters long. "
        "I should answer with a heading, a quote, a list and a code block, as always.\n\n"
        "Nothing here needs a network, so the answer can start right away."
    )


class DemoProvider(Provider):
    """``demo_answer`` streamed one word every ``delay_ms`` milliseconds."""

    name = "demo"

    def __init__(self, words: int = 120, delay_ms: float = 30.0) -> None:
        self.words = words
        self.delay = delay_ms / 1000.0

    async def models(self) -> list[ModelInfo]:
        return [ModelInfo(id=MODEL_ID, name="Demo (offline)", provider=self.name, default=True)]

    async def stream(
        self, model_id: str, history: list[ModelTurn], params: ChatParams
    ) -> AsyncGenerator[StreamItem, None]:
        # The same question, the same answer: the system prompt and the parameters change nothing here.
        asked = next((turn for turn in reversed(history) if turn.role == "user"), None)
        question = asked.content if asked else ""
        attached = [file.info() for file in asked.attachments] if asked else []
        for thought in _PIECES.findall(demo_reasoning(question)):
            await asyncio.sleep(self.delay)
            yield Reasoning(thought)
        pieces = _PIECES.findall(demo_answer(question, self.words, attached))
        for piece in pieces:
            # sleep(0) still yields: a zero-delay demo must not starve the event loop.
            await asyncio.sleep(self.delay)
            yield piece
        # Its own counts, as a model server reports its tokens: a word is a token here.
        prompt = sum(len(turn.content.split()) for turn in history)
        yield Usage(prompt_tokens=prompt, completion_tokens=len(pieces))
        yield Finish("stop")
