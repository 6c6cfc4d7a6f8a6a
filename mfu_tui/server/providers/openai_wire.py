"""What OpenAI-compatible servers send back, read the same way whatever their dialect.

One ``AnswerReader`` per answer turns what arrives into the provider's
items: text pieces, ``Reasoning``, ``Usage`` and ``Finish``. The servers
agree on the shape of a chat completion and differ in the details, all of
which are read here:

- ``delta.content`` is a string (most), ``null`` (llama.cpp's first event) or
  a list of parts (Mistral's reasoning models: ``{"type": "text", "text"}``
  parts are the answer, ``{"type": "thinking", "thinking": [...]}`` parts its
  reasoning);
- reasoning comes apart in ``delta.reasoning_content`` (vLLM, DeepSeek) or
  ``delta.reasoning`` (OpenRouter, newer Ollama), or inline at the start of the
  content between ``<think>`` and ``</think>`` (Ollama and LM Studio builds
  that do not split it out, vLLM without a reasoning parser, Qwen3, R1 distills);
- the token counts come in the last event with empty ``choices`` (OpenAI,
  vLLM) or beside the ``finish_reason`` (llama.cpp, Mistral, Together);
- an error mid-stream is a ``data: {"error": ...}`` event (OpenAI, OpenRouter)
  or an ``error: {...}`` line of its own (llama.cpp);
- the end is ``data: [DONE]``, or just the end of the body after the event
  with the ``finish_reason`` (older llama.cpp, some gateways);
- a server that ignores ``stream: true`` answers one ``chat.completion``
  object, its text in ``choices[0].message``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import msgspec

from mfu_tui.protocol import Usage
from mfu_tui.server.providers.base import Finish, ProviderError, Reasoning, StreamItem
from mfu_tui.server.providers.openai_errors import stream_error_sentence

#: The tags around reasoning written into the content.
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


#: What an answer is read into.
Item = StreamItem


class Done:
    """The ``data: [DONE]`` line."""


DONE = Done()


class _TextDelta(msgspec.Struct):
    content: str
    # Given a value, these make the event one for ``AnswerReader.event``'s general reading.
    reasoning_content: None = None
    reasoning: None = None


class _TextChoice(msgspec.Struct):
    delta: _TextDelta
    index: Literal[0] = 0
    finish_reason: None = None


class TextEvent(msgspec.Struct):
    """The event nearly all of an answer is made of: one choice, its delta a piece of text, and nothing else.

    An event is decoded straight into this type first: that costs a fifth of
    reading it as JSON and walking the result (docs/benchmarks.md). An event
    of any other shape fails to decode (fields it may not have are typed
    ``None``; others, ``id`` or ``model``, are not read) and is read in general.
    """

    choices: Annotated[list[_TextChoice], msgspec.Meta(min_length=1, max_length=1)]
    usage: None = None
    error: None = None

    @property
    def text(self) -> str:
        """The piece of text."""
        return self.choices[0].delta.content


_TEXT_EVENT = msgspec.json.Decoder(TextEvent)


def parse_line(line: str) -> Any:
    """The event of one ``data:`` line (a ``TextEvent``, or its JSON), ``DONE``, or None for lines that carry nothing.

    Raises:
        ProviderError: the line is llama.cpp's ``error: {...}``, or a ``data:`` line that is not JSON.
    """
    if line.startswith("error:"):
        try:
            said = json.loads(line[6:])
        except ValueError:
            said = line[6:].strip()
        raise ProviderError(stream_error_sentence(said), "model_error")
    if not line.startswith("data:"):
        return None  # comments (": keep-alive"), "event:", "id:" and blank lines
    payload = line[5:].strip()
    if payload == "[DONE]":
        return DONE
    try:
        return _TEXT_EVENT.decode(payload)
    except msgspec.DecodeError:  # another shape (or not JSON: json says so)
        pass
    try:
        return json.loads(payload)
    except ValueError:
        raise ProviderError("the model server sent an unreadable event", "unreadable") from None


class AnswerReader:
    """One answer's events, streamed or whole, as items in the order they make sense.

    Text held back while it may still turn out to be a ``<think>`` tag is let
    out before the ``Finish`` and by ``end``, so nothing is lost or reordered.
    """

    def __init__(self) -> None:
        self._think = ThinkSplitter()
        #: True once the model said why it stopped: the answer is whole, whatever follows.
        self.finished = False

    def event(self, data: Any) -> list[Item]:
        """The items of one streamed event (or of a whole non-streamed answer).

        Raises:
            ProviderError: the event is an error.
        """
        if isinstance(data, TextEvent):
            return self._think.feed(data.text)
        if not isinstance(data, dict):
            return []
        if data.get("error"):
            raise ProviderError(stream_error_sentence(data), "model_error")
        items: list[Item] = []
        finish: str | None = None
        choices = data.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            # Only the first choice is ours: n is never asked for.
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            said = choice.get("delta") or choice.get("message") or {}
            if isinstance(said, dict):
                items += self._said(said)
            if isinstance(choice.get("finish_reason"), str) and choice["finish_reason"]:
                finish = choice["finish_reason"]
        usage = data.get("usage")
        if isinstance(usage, dict):
            items.append(
                Usage(
                    prompt_tokens=_count(usage.get("prompt_tokens")),
                    completion_tokens=_count(usage.get("completion_tokens")),
                )
            )
        if finish is not None:
            items += self.end()
            items.append(Finish(finish))
            self.finished = True
        return items

    def end(self) -> list[Item]:
        """What is still held back, once nothing more will come."""
        return self._think.end()

    def _said(self, said: dict[str, Any]) -> list[Item]:
        items: list[Item] = []
        for key in ("reasoning_content", "reasoning"):
            if isinstance(said.get(key), str) and said[key]:
                items.append(Reasoning(said[key]))
        content = said.get("content")
        if isinstance(content, str):
            items += self._think.feed(content)
        elif isinstance(content, list):
            for part in content:
                items += self._part(part)
        return items

    def _part(self, part: Any) -> list[Item]:
        """One content part: a ``text`` part is answer, a ``thinking`` part reasoning, others nothing to show."""
        if not isinstance(part, dict):
            return []
        kind = part.get("type", "text")
        if kind == "text" and isinstance(part.get("text"), str):
            return self._think.feed(part["text"])
        if kind == "thinking":
            thought = part.get("thinking")
            inner = thought if isinstance(thought, list) else [{"type": "text", "text": thought}]
            text = "".join(p["text"] for p in inner if isinstance(p, dict) and isinstance(p.get("text"), str))
            return [Reasoning(text)] if text else []
        return []


class ThinkSplitter:
    """Splits ``<think>...</think>`` at the start of an answer's content from the answer, as it streams.

    The tags may arrive cut anywhere (``<thi`` then ``nk>``): text that may
    still be part of one is held back until the next piece says. Only a
    ``<think>`` opening the content counts; later ones are the answer's own
    words (a model explaining the tag, say).
    """

    def __init__(self) -> None:
        #: "start" (not yet known whether it thinks), "thinking", "after" (the blanks after
        #: ``</think>``, which are no part of the answer), or "answer".
        self._state = "start"
        self._held = ""

    def feed(self, text: str) -> list[Item]:
        """The items ``text`` makes, given what came before."""
        if self._state == "after":
            text = text.lstrip()
            self._state = "answer" if text else "after"
        if self._state in ("answer", "after"):
            return [text] if text else []
        self._held += text
        if self._state == "start":
            opening = self._held.lstrip()
            if THINK_OPEN.startswith(opening):
                return []  # empty, blanks, or a tag still arriving
            if not opening.startswith(THINK_OPEN):
                held, self._state, self._held = self._held, "answer", ""
                return [held]
            self._state, self._held = "thinking", opening[len(THINK_OPEN) :]
        thought, close, rest = self._held.partition(THINK_CLOSE)
        if close:
            items: list[Item] = [Reasoning(thought)] if thought else []
            self._state, self._held = "after", ""
            return items + self.feed(rest)
        # Keep back what may be the start of the closing tag.
        keep = next((n for n in range(len(THINK_CLOSE) - 1, 0, -1) if thought.endswith(THINK_CLOSE[:n])), 0)
        self._held = thought[len(thought) - keep :]
        done = thought[: len(thought) - keep]
        return [Reasoning(done)] if done else []

    def end(self) -> list[Item]:
        """What is held back, as answer; nothing while thinking.

        While thinking, only what may start ``</think>`` is held back: the
        stream ended inside the closing tag, which is no part of the reasoning.
        """
        held, self._held = self._held, ""
        if not held or self._state == "thinking":
            return []
        self._state = "answer"
        return [held]


def _count(value: Any) -> int | None:
    """A token count as reported, or None for anything that is not one (a server's odd JSON is not ours to trust)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
