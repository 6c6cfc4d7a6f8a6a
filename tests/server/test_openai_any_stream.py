"""Whatever a model server sends, every answer ends once, is stored ended, and nothing follows its end.

Random streams, built of the events the dialects send (``dialects.py``) and
of junk, cut anywhere, split into network chunks anywhere, ended cleanly or
by a dropped connection, go through the real server from the fake upstream.
Reasoning is written with the letter ``θ`` only, which the answers never
use: whatever the stream, no ``θ`` may reach the answer.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mfu_tui.protocol import Chunk, Complete, Error, Ping, Pong
from tests.server import dialects
from tests.server.fake_openai import FakeOpenAI, Script
from tests.server.peer import Peer, peer, reasoning_of, text_of
from tests.server.test_generation import get_chat, send_message
from tests.server.test_openai_provider import openai_settings
from tests.support.server import running_server

#: The letters of answers (no tag can be spelled with them), and of reasoning.
ANSWER_LETTERS = "ab <>/\n*`é"
THOUGHT = st.text("θ", max_size=6)
ANSWER = st.text(ANSWER_LETTERS, max_size=8)
ENDINGS = ("stop", "length", "content_filter", "tool_calls", "error", "")


def data(event: Any) -> bytes:
    return f"data: {json.dumps(event)}\n\n".encode()


def delta(**said: Any) -> dict[str, Any]:
    return {"id": "x", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": said}]}


def think_pieces(thought: str, answer: str, cuts: list[int]) -> list[bytes]:
    """``<think>thought</think>answer`` as content, cut into events at ``cuts``."""
    text = f"<think>{thought}</think>\n\n{answer}"
    edges = [0, *sorted({cut % (len(text) + 1) for cut in cuts}), len(text)]
    return [data(delta(content=text[start:end])) for start, end in zip(edges, edges[1:])]


EVENTS = st.one_of(
    ANSWER.map(lambda text: data(delta(content=text))),
    ANSWER.map(lambda text: data(delta(content=[{"type": "text", "text": text}]))),
    THOUGHT.map(lambda text: data(delta(content=[{"type": "thinking", "thinking": [{"type": "text", "text": text}]}]))),
    THOUGHT.map(lambda text: data(delta(reasoning_content=text))),
    THOUGHT.map(lambda text: data(delta(reasoning=text, content=None))),
    st.sampled_from(ENDINGS).map(
        lambda reason: data({"choices": [{"index": 0, "delta": {}, "finish_reason": reason or None}]})
    ),
    st.just(data({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}})),
    st.just(data({"error": {"message": "the model is on fire"}})),
    st.just(b'error: {"code":500,"message":"slot unavailable","type":"server_error"}\n\n'),
    st.sampled_from([b": ping\n\n", b"data: [DONE]\n\n", b"event: message\n", b"\r\n", b"data: {not json\n\n"]),
    st.sampled_from([b"data: 7\n\n", b'data: {"choices": "none"}\n\n', b'data: {"choices": [{"delta": 3}]}\n\n']),
    st.binary(max_size=12).filter(lambda junk: b"\xce" not in junk),
    # Whole recorded events of the dialects, reasoning and all (re-spelled in θ, reasoning's letter here).
    st.sampled_from(
        [
            event.replace(b"Let me think.", "θθθ".encode()) + b"\n\n"
            for body in (dialects.OPENAI, dialects.MISTRAL_PARTS, dialects.LLAMA_CPP_NO_DONE, dialects.TOGETHER)
            for event in body.split(b"\n\n")
            if event
        ]
    ),
)


@st.composite
def upstream_answers(draw: st.DrawFn) -> Script:
    """A random answer of a model server: events, perhaps a whole answer, cut and chunked anywhere."""
    events: list[bytes] = []
    if draw(st.booleans()):
        events += think_pieces(draw(THOUGHT), draw(ANSWER), draw(st.lists(st.integers(0, 40), max_size=4)))
    events += draw(st.lists(EVENTS, max_size=10))
    body = b"".join(events)
    if draw(st.booleans()):
        body = body.replace(b"\n", b"\r\n")
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]
    content_type = draw(st.sampled_from(["text/event-stream", "text/event-stream; charset=utf-8", "application/json"]))
    if content_type == "application/json" and draw(st.booleans()):
        body = dialects.NOT_STREAMED[: draw(st.integers(0, len(dialects.NOT_STREAMED)))]
    return Script(
        body=body,
        content_type=content_type,
        cuts=tuple(draw(st.lists(st.integers(0, len(body)), max_size=6))),
        then=draw(st.sampled_from(["done", "drop"])),
    )


@dataclass
class Upstream:
    """One server and its fake upstream, shared by every example of the test."""

    fake: FakeOpenAI
    alice: Peer


@pytest.fixture
async def upstream(tmp_path) -> AsyncIterator[Upstream]:
    async with FakeOpenAI() as fake:
        settings = openai_settings(fake) | {"messages_per_minute": 1e9}
        async with running_server(tmp_path, **settings) as srv, peer(srv.url, srv.token()) as alice:
            yield Upstream(fake, alice)


# Each example is a whole answer through the server (30 to 50 ms): the ci profile's 10,000 would take minutes.
@settings(
    max_examples=min(settings.default.max_examples, 1000),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(script=upstream_answers())
async def test_any_upstream_stream_ends_the_answer_once_and_nothing_follows_its_end(upstream, script):
    upstream.fake.script = script
    alice = upstream.alice
    ack = await send_message(alice, "anything")
    chunks, end = await alice.stream(ack.reply_id)
    # Anything sent after the end would come before the pong: frames go out in order.
    await alice.send(Ping(ts=1.0))
    after = []
    while not isinstance(frame := await alice.recv(), Pong):
        after.append(frame)
    reply = (await get_chat(alice, ack.chat_id)).messages[1]
    assert isinstance(end, Complete), end
    assert [frame for frame in after if isinstance(frame, (Chunk, Complete, Error))] == []
    assert [chunk.seq for chunk in chunks] == list(range(1, end.seq + 1))
    assert (reply.status, reply.seq, reply.content, reply.reasoning) == (
        "error" if end.finish_reason == "error" else "complete",
        end.seq,
        text_of(chunks),
        reasoning_of(chunks),
    )
    assert "θ" not in reply.content
    assert set(reply.reasoning) <= {"θ"}
    errors = [frame for frame in alice.received if isinstance(frame, Error) and frame.message_id == ack.reply_id]
    assert (end.finish_reason == "error") == bool(errors)
    assert all(error.code == "provider_error" for error in errors), errors
