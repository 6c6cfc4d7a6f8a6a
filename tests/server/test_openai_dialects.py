"""Every OpenAI-compatible dialect through the real server: answers, endings, and refusals in plain words.

The fake upstream replays each server's own bytes (``tests/server/dialects.py``).
"""

from __future__ import annotations

import asyncio

import pytest

from mfu_tui.protocol import Complete, Error, ListModels, Usage
from tests.server import dialects
from tests.server.fake_openai import FakeOpenAI, Reply, Script
from tests.server.peer import Peer, peer, reasoning_of, text_of
from tests.server.test_generation import get_chat, send_message
from tests.server.test_openai_provider import models_of, openai_settings
from tests.support.server import running_server


async def ask(alice: Peer, question: str = "say hello") -> tuple[str, Complete, Error | None, str]:
    """Send a message: the text streamed, the end frame, the error frame if any, and the text stored."""
    answer, _ = await ask_apart(alice, question)
    return answer


async def ask_apart(
    alice: Peer, question: str = "say hello"
) -> tuple[tuple[str, Complete, Error | None, str], tuple[str, str]]:
    """``ask``, and the reasoning streamed and stored apart from the answer."""
    ack = await send_message(alice, question)
    chunks, end = await alice.stream(ack.reply_id)
    assert isinstance(end, Complete)
    errors = [f for f in alice.received if isinstance(f, Error) and f.message_id == ack.reply_id]
    detail = await get_chat(alice, ack.chat_id)
    reply = detail.messages[1]
    assert reply.status != "streaming" and reply.seq == end.seq
    return (text_of(chunks), end, errors[0] if errors else None, reply.content), (reasoning_of(chunks), reply.reasoning)


@pytest.mark.parametrize(
    ("body", "usage"),
    [
        (dialects.OPENAI, Usage(prompt_tokens=9, completion_tokens=2)),
        (dialects.OLLAMA_THINKING, None),
        (dialects.VLLM_REASONING, Usage(prompt_tokens=10, completion_tokens=5)),
        (dialects.LM_STUDIO_THINKING, None),
        (dialects.OPENROUTER_REASONING, Usage(prompt_tokens=9, completion_tokens=40)),
        (dialects.TOGETHER, Usage(prompt_tokens=9, completion_tokens=2)),
        (dialects.MISTRAL_PARTS, Usage(prompt_tokens=9, completion_tokens=40)),
        (dialects.LLAMA_CPP_NO_DONE, Usage(prompt_tokens=9, completion_tokens=2)),
    ],
    ids=["openai", "ollama-think", "vllm-reasoning", "lmstudio-think", "openrouter", "together", "mistral", "llamacpp"],
)
async def test_each_dialect_gives_the_answer_alone_complete_with_its_usage(tmp_path, body, usage):
    async with FakeOpenAI() as fake, running_server(tmp_path, **openai_settings(fake)) as srv:
        fake.script = dialects.answer(body)
        async with peer(srv.url, srv.token()) as alice:
            (streamed, end, error, stored), thought_apart = await ask_apart(alice)
    # Reasoning, in whichever form, is neither streamed nor stored as the answer, but apart from it.
    assert (streamed, stored, error) == ("Hello!", "Hello!", None)
    thought = "" if body in (dialects.OPENAI, dialects.TOGETHER, dialects.LLAMA_CPP_NO_DONE) else "Let me think."
    assert [text.strip() for text in thought_apart] == [thought, thought]
    assert (end.finish_reason, end.usage) == ("stop", usage)


async def test_a_stream_without_done_that_ended_after_its_finish_is_complete_even_if_the_connection_drops(tmp_path):
    async with FakeOpenAI() as fake, running_server(tmp_path, **openai_settings(fake)) as srv:
        async with peer(srv.url, srv.token()) as alice:
            fake.script = dialects.answer(dialects.LLAMA_CPP_NO_DONE)
            ended = await ask(alice)
            fake.script = Script(body=dialects.LLAMA_CPP_NO_DONE, then="drop")
            dropped = await ask(alice)
            # Without a finish_reason, the same end is an error: the answer may be cut.
            fake.script = Script(body=dialects.LLAMA_CPP_NO_DONE.rsplit(b"data:", 1)[0])
            cut = await ask(alice)
            fake.script = Script(body=dialects.LLAMA_CPP_NO_DONE.rsplit(b"data:", 1)[0], then="drop")
            cut_off = await ask(alice)
    assert [(text, end.finish_reason, error) for text, end, error, _ in (ended, dropped)] == [
        ("Hello!", "stop", None)
    ] * 2
    text, end, error, stored = cut
    assert (text, stored, end.finish_reason) == ("Hello!", "Hello!", "error")
    assert error is not None and error.message == "the model server ended the stream before the answer was finished"
    text, end, error, stored = cut_off
    assert (text, stored, end.finish_reason) == ("Hello!", "Hello!", "error")
    assert error is not None
    assert error.message == "model server failed: the connection to the model server was cut before the answer ended"


async def test_llama_cpp_error_events_give_their_message(tmp_path):
    async with FakeOpenAI() as fake, running_server(tmp_path, **openai_settings(fake)) as srv:
        fake.script = dialects.answer(dialects.LLAMA_CPP_CONTEXT_ERROR)
        async with peer(srv.url, srv.token()) as alice:
            _, end, error, _ = await ask(alice)
    assert end.finish_reason == "error" and error is not None
    assert error.message == (
        "the conversation is too long for the model (5,012 tokens; the model takes at most 4,096); "
        "start a new chat, or edit an earlier message to shorten it"
    )


async def test_an_error_event_mid_stream_keeps_the_partial_and_gives_its_message(tmp_path):
    async with FakeOpenAI() as fake, running_server(tmp_path, **openai_settings(fake)) as srv:
        fake.script = dialects.answer(dialects.OPENROUTER_MID_STREAM_ERROR)
        async with peer(srv.url, srv.token()) as alice:
            streamed, end, error, stored = await ask(alice)
    assert (streamed, stored, end.finish_reason) == ("Hello", "Hello", "error")
    assert error is not None and error.message == "the model stopped with an error: Provider disconnected unexpectedly"


async def test_models_listed_as_a_bare_array_and_a_missing_list_falls_back_to_the_configured_model(tmp_path, caplog):
    async with FakeOpenAI() as fake:
        fake.models_reply = dialects.TOGETHER_MODELS
        async with running_server(tmp_path, **openai_settings(fake)) as srv, peer(srv.url, srv.token()) as alice:
            together = await models_of(alice)
        fake.models_reply = Reply(404, b"404 page not found\n", "text/plain")
        settings = openai_settings(fake) | {"openai_model": "my-model", "db_path": tmp_path / "2.sqlite3"}
        async with running_server(tmp_path, **settings) as srv, peer(srv.url, srv.token()) as alice:
            fallback = await models_of(alice)
            _, end, error, stored = await ask(alice)
        async with running_server(tmp_path, **openai_settings(fake)) as srv, peer(srv.url, srv.token()) as alice:
            await alice.send(ListModels(request_id="none"))
            refused = await alice.expect(Error, request_id="none")
    assert [(m.id, m.default) for m in together.models] == [
        ("meta-llama/Llama-3.3-70B-Instruct-Turbo", True),
        ("Qwen/Qwen2.5-7B-Instruct-Turbo", False),
    ]
    assert [(m.id, m.default) for m in fallback.models] == [("my-model", True)]
    assert (stored, end.finish_reason, error) == ("Hello, world!", "stop", None)
    assert fake.requests[-1]["model"] == "my-model"
    assert "cannot list models: HTTP 404: 404 page not found; using the configured model my-model alone" in caplog.text
    assert refused.message == "cannot list models: HTTP 404: 404 page not found"


async def test_a_non_streamed_answer_is_accepted_whole_however_the_network_cuts_it(tmp_path):
    async with FakeOpenAI() as fake, running_server(tmp_path, **openai_settings(fake)) as srv:
        async with peer(srv.url, srv.token()) as alice:
            fake.script = dialects.answer(dialects.NOT_STREAMED, "application/json")
            whole = await ask(alice)
            fake.script = Script(body=dialects.NOT_STREAMED, content_type="application/json", cuts=(10, 200, 201))
            cut = await ask(alice)
    for streamed, end, error, stored in (whole, cut):
        assert (streamed, stored, error) == ("Hello!", "Hello!", None)
        assert (end.finish_reason, end.usage) == ("stop", Usage(prompt_tokens=9, completion_tokens=2))


@pytest.mark.parametrize(
    ("body", "finish", "text", "usage"),
    [
        (dialects.OPENROUTER_FILTERED, "content_filter", "Hello", Usage(prompt_tokens=9, completion_tokens=1)),
        (dialects.VLLM_TOOL_CALL, "tool_calls", "", Usage(prompt_tokens=80, completion_tokens=20)),
    ],
    ids=["content_filter", "tool_calls"],
)
async def test_content_filter_and_tool_call_endings_are_kept_with_their_usage(tmp_path, body, finish, text, usage):
    async with FakeOpenAI() as fake, running_server(tmp_path, **openai_settings(fake)) as srv:
        fake.script = dialects.answer(body)
        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, "say hello")
            chunks, end = await alice.stream(ack.reply_id)
            reply = (await get_chat(alice, ack.chat_id)).messages[1]
    assert isinstance(end, Complete) and (text_of(chunks), end.finish_reason, end.usage) == (text, finish, usage)
    assert (reply.content, reply.status, reply.finish_reason, reply.usage) == (text, "complete", finish, usage)


NEW_CHAT = "start a new chat, or edit an earlier message to shorten it"


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (
            dialects.OPENAI_BAD_KEY,
            "the model server refused the API key (HTTP 401: Incorrect API key provided: sk-test-***-key. You can find "
            "your API key at https://platform.openai.com/account/api-keys.); set a valid one in MFU_OPENAI_API_KEY "
            "where the chat server runs",
        ),
        (
            dialects.OPENAI_CONTEXT,
            f"the conversation is too long for the model (130,012 tokens; the model takes at most 128,000); {NEW_CHAT}",
        ),
        (
            dialects.VLLM_CONTEXT,
            f"the conversation is too long for the model (5,000 tokens; the model takes at most 4,096); {NEW_CHAT}",
        ),
        (
            dialects.LM_STUDIO_CONTEXT,
            f"the conversation is too long for the model (5,012 tokens; the model takes at most 4,096); {NEW_CHAT}",
        ),
        (
            dialects.OPENAI_RATE_LIMIT,
            "the model server is limiting requests (Rate limit reached for gpt-4o-mini in organization org-x on "
            "requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.); retry in 20 s",
        ),
        (
            dialects.OPENAI_NO_QUOTA,
            "the API key's account has no credit or quota left (HTTP 429: You exceeded your current quota, please "
            "check your plan and billing details.); add some, or set another key in MFU_OPENAI_API_KEY where the "
            "chat server runs",
        ),
        (
            dialects.OPENROUTER_NO_CREDIT,
            "the API key's account has no credit or quota left (HTTP 402: Insufficient credits. Add more using "
            "https://openrouter.ai/settings/credits); add some, or set another key in MFU_OPENAI_API_KEY where the "
            "chat server runs",
        ),
        (
            dialects.OLLAMA_LOAD_FAILED,
            "the model server failed (HTTP 500: llama runner process has terminated: error loading model: unable to "
            "allocate CUDA0 buffer); try again in a moment, and if it goes on, its log says why",
        ),
        (
            dialects.NGINX_BAD_GATEWAY,
            "the model server failed (HTTP 502: 502 Bad Gateway); try again in a moment, and if it goes on, its log "
            "says why",
        ),
        (
            dialects.PLAIN_UNAVAILABLE,
            "the model server failed (HTTP 503: upstream connect error or disconnect/reset before headers. reset "
            "reason: overflow); try again in a moment, and if it goes on, its log says why",
        ),
    ],
    ids=[
        "401",
        "openai-context",
        "vllm-context",
        "lmstudio-context",
        "429",
        "openai-quota",
        "openrouter-402",
        "ollama-500",
        "nginx-502",
        "plain-503",
    ],
)
async def test_http_refusals_read_as_one_plain_sentence_with_what_to_do(tmp_path, script, message):
    async with FakeOpenAI() as fake, running_server(tmp_path, **openai_settings(fake)) as srv:
        fake.script = script
        async with peer(srv.url, srv.token()) as alice:
            streamed, end, error, stored = await ask(alice)
    assert (streamed, stored, end.finish_reason) == ("", "", "error")
    assert error is not None and (error.code, error.message) == ("provider_error", message)
    # Asked once: a refusal is not asked again, nor a rate limit that asks to wait long.
    assert len(fake.requests) == 1


async def test_an_unknown_model_is_named_with_the_ones_there_are(tmp_path):
    async with FakeOpenAI() as fake:
        settings = openai_settings(fake) | {"openai_model": "fake-huge"}
        async with running_server(tmp_path, **settings) as srv, peer(srv.url, srv.token()) as alice:
            fake.script = dialects.OPENAI_UNKNOWN_MODEL
            _, end, error, _ = await ask(alice)
    assert end.finish_reason == "error" and error is not None
    assert error.message == (
        "the model server has no model 'fake-huge' (it has: fake-small, fake-large); choose one of those (ctrl+l)"
    )


async def test_a_short_rate_limit_is_waited_out_and_asked_again_once(tmp_path):
    waits = dialects.refusal(
        429, b'{"error":{"message":"Rate limit exceeded: free-models-per-min"}}', **{"Retry-After": "0.2"}
    )
    async with FakeOpenAI() as fake, running_server(tmp_path, **openai_settings(fake)) as srv:
        async with peer(srv.url, srv.token()) as alice:
            fake.queue = [waits]
            answered = await ask(alice)
            fake.queue = [waits, waits]
            refused = await ask(alice)
    assert (answered[0], answered[1].finish_reason, answered[2]) == ("Hello, world!", "stop", None)
    assert refused[1].finish_reason == "error" and refused[2] is not None
    assert (
        refused[2].message
        == "the model server is limiting requests (Rate limit exceeded: free-models-per-min); retry in 1 s"
    )
    assert len(fake.requests) == 4


async def test_the_upstream_idle_timeout_is_a_setting(tmp_path):
    async with FakeOpenAI() as fake:
        settings = openai_settings(fake) | {"upstream_idle_timeout": 0.5}
        async with running_server(tmp_path, **settings) as srv, peer(srv.url, srv.token()) as alice:
            fake.script = Script(pieces=["partial"], then="hold")
            streamed, end, error, stored = await asyncio.wait_for(ask(alice), 10)
    assert (streamed, stored, end.finish_reason) == ("partial", "partial", "error")
    assert error is not None and error.message == "model server failed: the model server did not answer in time"


async def test_an_answer_slower_than_the_idle_timeout_in_all_but_between_two_pieces_goes_on(tmp_path):
    async with FakeOpenAI() as fake:
        settings = openai_settings(fake) | {"upstream_idle_timeout": 0.5}
        async with running_server(tmp_path, **settings) as srv, peer(srv.url, srv.token()) as alice:
            fake.script = Script(pieces=["one ", "two ", "three ", "four"], pause=0.3)
            streamed, end, error, stored = await asyncio.wait_for(ask(alice), 10)
    assert (streamed, stored, end.finish_reason, error) == ("one two three four", "one two three four", "stop", None)
