"""The openai provider against a fake OpenAI-compatible server speaking real SSE."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from mfu_tui.embedded_server import probe_models
from mfu_tui.protocol import (
    Cancel,
    Cancelled,
    ChatParams,
    Chunk,
    Complete,
    Error,
    ListModels,
    ModelList,
    Ping,
    Pong,
    Result,
    UpdateChat,
    Usage,
    decode_result,
)
from mfu_tui.server import generation as generation_module
from mfu_tui.server.generation import ITEMS_PER_TURN, MAX_CHUNK_CHARS, Generation
from mfu_tui.server.providers.openai import MAX_EVENT_BYTES, OpenAIProvider
from tests.server.fake_openai import FakeOpenAI, Script
from tests.server.peer import TIMEOUT, Peer, new_id, peer, text_of
from tests.server.test_generation import get_chat, send_message
from tests.server.test_workers import until
from tests.support.server import running_server


def openai_settings(fake: FakeOpenAI) -> dict[str, object]:
    return {"provider": "openai", "openai_base_url": fake.base_url, "openai_api_key": "sk-test-key"}


async def models_of(client: Peer) -> ModelList:
    await client.send(ListModels(request_id="models"))
    result = await client.expect(Result, request_id="models")
    return decode_result(result.data, ModelList)


async def test_an_answer_streams_from_the_upstream_with_history_and_key(tmp_path):
    async with FakeOpenAI() as fake, running_server(tmp_path, **openai_settings(fake)) as srv:
        async with peer(srv.url, srv.token()) as alice:
            models = await models_of(alice)
            first = await send_message(alice, "hi there", model_id="fake-large")
            chunks, end = await alice.stream(first.reply_id)
            fake.script = Script(pieces=["Second", " answer"], finish_reason="length")
            second = await send_message(alice, "and again", chat_id=first.chat_id)
            chunks2, end2 = await alice.stream(second.reply_id)
            detail = await get_chat(alice, first.chat_id)
    assert [(m.id, m.default) for m in models.models] == [("fake-small", True), ("fake-large", False)]
    # The pieces that came while the one before was being stored share its chunk.
    assert text_of(chunks) == "Hello, world!" and [c.seq for c in chunks] == list(range(1, len(chunks) + 1))
    assert isinstance(end, Complete) and end.finish_reason == "stop" and end.seq == len(chunks)
    assert text_of(chunks2) == "Second answer" and end2.finish_reason == "length"
    assert fake.requests[0]["model"] == "fake-large" and fake.requests[0]["stream"] is True
    assert fake.requests[0]["messages"] == [{"role": "user", "content": "hi there"}]
    # The stored history is what goes upstream, and the chat keeps its model.
    assert fake.requests[1]["model"] == "fake-large"
    assert fake.requests[1]["messages"] == [
        {"role": "user", "content": "hi there"},
        {"role": "assistant", "content": "Hello, world!"},
        {"role": "user", "content": "and again"},
    ]
    assert fake.headers[0]["authorization"] == "Bearer sk-test-key"
    assert detail.messages[1].content == "Hello, world!"


async def test_answers_naming_no_model_get_the_listed_default_without_asking_for_the_list_each_time(tmp_path):
    async with FakeOpenAI() as fake, running_server(tmp_path, **openai_settings(fake)) as srv:
        async with peer(srv.url, srv.token()) as alice:
            for question in ("one", "two", "three"):
                ack = await send_message(alice, question)
                await alice.stream(ack.reply_id)
    assert [request["model"] for request in fake.requests] == ["fake-small"] * 3
    assert fake.model_lists == 1  # the list cached since the server's start, as list_models uses it


async def test_a_netrc_entry_for_the_model_servers_host_leaves_the_api_key_in_charge(tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password elsewhere\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))  # as ~/.netrc of the user running the server
    async with FakeOpenAI() as fake, running_server(tmp_path, **openai_settings(fake)) as srv:
        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, "hi there")
            chunks, end = await alice.stream(ack.reply_id)
    assert text_of(chunks) == "Hello, world!" and isinstance(end, Complete)
    assert [headers["authorization"] for headers in fake.headers] == ["Bearer sk-test-key"]


async def test_the_model_server_is_reached_through_the_proxy_the_environment_names(monkeypatch):
    request_lines: list[bytes] = []

    async def refusing_proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_lines.append(await reader.readline())
        writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    proxy = await asyncio.start_server(refusing_proxy, "127.0.0.1", 0)
    for name in ("HTTP_PROXY", "NO_PROXY", "no_proxy", "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.sockets[0].getsockname()[1]}")
    async with proxy, FakeOpenAI() as fake:
        models_url = f"{fake.base_url}/v1/models"
        provider = OpenAIProvider(fake.base_url, default_model="fake-small")
        try:
            await provider.models()  # the proxy refuses: the configured model stands in
        finally:
            await provider.aclose()
    assert request_lines == [f"GET {models_url} HTTP/1.1\r\n".encode()]
    assert fake.model_lists == 0


async def test_the_usage_the_upstream_reports_is_stored_and_sent_with_the_answers_timing(tmp_path):
    async with FakeOpenAI() as fake, running_server(tmp_path, **openai_settings(fake)) as srv:
        fake.script = Script(pieces=["One", " two", " three"], usage=(31, 3))
        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, "count to three")
            _, end = await alice.stream(ack.reply_id)
            detail = await get_chat(alice, ack.chat_id)
    assert fake.requests[0]["stream_options"] == {"include_usage": True}
    assert isinstance(end, Complete) and end.usage == Usage(prompt_tokens=31, completion_tokens=3)
    assert end.first_token_ms is not None and end.first_token_ms >= 0
    assert end.tokens_per_second is not None and end.tokens_per_second > 0
    question, reply = detail.messages
    assert (reply.usage, reply.first_token_ms, reply.tokens_per_second) == (
        end.usage,
        end.first_token_ms,
        end.tokens_per_second,
    )
    assert (question.usage, question.first_token_ms) == (None, None)


async def test_an_endpoint_that_refuses_stream_options_is_asked_again_without_and_never_with_again(tmp_path):
    async with FakeOpenAI() as fake, running_server(tmp_path, **openai_settings(fake)) as srv:
        fake.refuses_stream_options = True
        async with peer(srv.url, srv.token()) as alice:
            first = await send_message(alice, "hello")
            chunks, end = await alice.stream(first.reply_id)
            second = await send_message(alice, "again", chat_id=first.chat_id)
            _, end2 = await alice.stream(second.reply_id)
            detail = await get_chat(alice, first.chat_id)
            errors = [frame for frame in alice.received if isinstance(frame, Error)]
    # Refused once with the option, then asked without it, and the next answer never tries it again.
    assert ["stream_options" in request for request in fake.requests] == [True, False, False]
    assert text_of(chunks) == "Hello, world!" and errors == []
    assert (end.finish_reason, end2.finish_reason) == ("stop", "stop")
    # Nothing reported: the token figures stay unknown, the time to the first token is still measured.
    assert (end.usage, end.tokens_per_second) == (None, None) and end.first_token_ms is not None
    assert (detail.messages[1].usage, detail.messages[1].tokens_per_second) == (None, None)
    assert detail.messages[1].first_token_ms == end.first_token_ms


async def test_a_400_that_does_not_name_stream_options_is_a_provider_error_and_not_asked_again(tmp_path):
    async with FakeOpenAI() as fake, running_server(tmp_path, **openai_settings(fake)) as srv:
        fake.script = Script(status=400, error_message="model 'x' does not exist")
        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, "hello?")
            chunks, end = await alice.stream(ack.reply_id)
            error = next(f for f in alice.received if isinstance(f, Error))
    assert len(fake.requests) == 1 and fake.requests[0]["stream_options"] == {"include_usage": True}
    assert chunks == [] and end.finish_reason == "error" and end.usage is None and end.first_token_ms is None
    assert error.code == "provider_error" and "does not exist" in error.message


async def test_a_system_prompt_and_a_temperature_set_on_a_chat_reach_the_upstream_in_the_request_body(tmp_path):
    async with FakeOpenAI() as fake, running_server(tmp_path, **openai_settings(fake)) as srv:
        async with peer(srv.url, srv.token()) as alice:
            # Set with the message that creates the chat: its first answer is made with them.
            created = await send_message(
                alice, "bonjour", system_prompt="Answer in French.", params=ChatParams(temperature=0.3)
            )
            await alice.stream(created.reply_id)
            # Changed with update_chat: the next answer is made with the new ones.
            params = ChatParams(temperature=1.5, top_p=0.5, max_tokens=64, seed=7)
            await alice.send(
                UpdateChat(request_id="set", chat_id=created.chat_id, system_prompt="Be brief.", params=params)
            )
            await alice.expect(Result, request_id="set")
            again = await send_message(alice, "and again", chat_id=created.chat_id)
            await alice.stream(again.reply_id)
            # An empty prompt removes it, and params without values leave the model's defaults.
            await alice.send(
                UpdateChat(request_id="clear", chat_id=created.chat_id, system_prompt="", params=ChatParams())
            )
            await alice.expect(Result, request_id="clear")
            last = await send_message(alice, "plain", chat_id=created.chat_id)
            await alice.stream(last.reply_id)
    first, second, third = fake.requests
    assert first["messages"] == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "bonjour"},
    ]
    assert first["temperature"] == 0.3
    assert not {"top_p", "max_tokens", "seed"} & set(first)
    assert second["messages"][0] == {"role": "system", "content": "Be brief."}
    assert [turn["role"] for turn in second["messages"]] == ["system", "user", "assistant", "user"]
    assert (second["temperature"], second["top_p"], second["max_tokens"], second["seed"]) == (1.5, 0.5, 64, 7)
    assert [turn["role"] for turn in third["messages"]] == ["user", "assistant", "user", "assistant", "user"]
    assert not {"temperature", "top_p", "max_tokens", "seed"} & set(third)


async def test_a_failure_mid_stream_keeps_the_partial_and_sends_provider_error(tmp_path):
    async with FakeOpenAI() as fake, running_server(tmp_path, **openai_settings(fake)) as srv:
        fake.script = Script(pieces=["partial ", "answer"], then="drop")
        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, "explode")
            chunks, end = await alice.stream(ack.reply_id)
            error = next(f for f in alice.received if isinstance(f, Error))
            detail = await get_chat(alice, ack.chat_id)
    assert text_of(chunks) == "partial answer"
    assert (error.code, error.chat_id, error.message_id) == ("provider_error", ack.chat_id, ack.reply_id)
    assert isinstance(end, Complete) and end.finish_reason == "error" and end.seq == len(chunks)
    # The error frame comes before the end frame.
    assert alice.received.index(error) < alice.received.index(end)
    reply = detail.messages[1]
    assert (reply.content, reply.status, reply.seq) == ("partial answer", "error", end.seq)


async def test_an_event_longer_than_the_limit_ends_the_answer_with_what_came_before_it(tmp_path):
    # The endless line comes in many network reads, after an event that ends in the middle of one.
    endless = b"data: " + b"x" * (MAX_EVENT_BYTES + 1)
    body = b'data: {"choices": [{"index": 0, "delta": {"content": "before"}}]}\n\n' + endless
    async with FakeOpenAI() as fake, running_server(tmp_path, **openai_settings(fake)) as srv:
        fake.script = Script(body=body, cuts=tuple(range(30, len(body), 64 * 1024)))
        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, "say a lot")
            chunks, end = await alice.stream(ack.reply_id)
            error = next(f for f in alice.received if isinstance(f, Error))
    assert text_of(chunks) == "before" and end.finish_reason == "error"
    assert (error.code, error.message) == ("provider_error", "the model server sent an event too long to read")


async def test_an_http_error_upstream_is_a_provider_error_with_nothing_streamed(tmp_path):
    async with FakeOpenAI() as fake, running_server(tmp_path, **openai_settings(fake)) as srv:
        fake.script = Script(status=500)
        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, "hello?")
            chunks, end = await alice.stream(ack.reply_id)
            error = next(f for f in alice.received if isinstance(f, Error))
    assert chunks == [] and end.seq == 0 and end.finish_reason == "error"
    assert error.code == "provider_error" and "500" in error.message


async def test_cancel_closes_the_upstream_request(tmp_path):
    async with FakeOpenAI() as fake, running_server(tmp_path, **openai_settings(fake)) as srv:
        fake.script = Script(pieces=["one ", "two "], then="hold")
        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, "go on forever")
            await asyncio.wait_for(fake.holding.wait(), TIMEOUT)
            sent = [await alice.expect(Chunk)]
            while text_of(sent) != "one two ":  # one chunk or two: it is all stored and sent
                sent.append(await alice.expect(Chunk))
            await alice.send(Cancel(chat_id=ack.chat_id, message_id=ack.reply_id))
            chunks, end = await alice.stream(ack.reply_id)
            await asyncio.wait_for(fake.disconnected.wait(), TIMEOUT)
            detail = await get_chat(alice, ack.chat_id)
    assert chunks == [] and isinstance(end, Cancelled) and end.seq == sent[-1].seq
    assert (detail.messages[1].content, detail.messages[1].status) == ("one two ", "cancelled")


async def test_list_models_reports_an_unreachable_upstream(tmp_path):
    async with FakeOpenAI() as fake:
        dead_url = fake.base_url
    async with running_server(tmp_path, provider="openai", openai_base_url=dead_url) as srv:
        async with peer(srv.url, srv.token()) as alice:
            await alice.send(ListModels(request_id=new_id()))
            error = await alice.expect(Error)
    assert error.code == "provider_error"


async def test_a_slow_model_list_does_not_hold_up_other_frames(tmp_path):
    async with FakeOpenAI() as fake, running_server(tmp_path, **openai_settings(fake)) as srv:
        fake.models_open.clear()
        async with peer(srv.url, srv.token()) as alice:
            await alice.send(ListModels(request_id="slow"))
            await alice.send(Ping(ts=9))
            assert await alice.recv() == Pong(ts=9)
            fake.models_open.set()
            result = await alice.expect(Result, request_id="slow")
    assert [m.id for m in decode_result(result.data, ModelList).models] == ["fake-small", "fake-large"]


async def test_the_embedded_servers_probe_finds_a_model_server_and_not_a_closed_port():
    async with FakeOpenAI() as fake:
        found = await probe_models(fake.base_url)
        fake.models_open.clear()  # listening, but never answering: the probe gives up in time
        silent = await probe_models(fake.base_url, timeout=0.2)
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = await probe_models(f"http://127.0.0.1:{probe.getsockname()[1]}")
    assert (found, silent, closed) == (True, False, False)


async def test_an_unreachable_model_server_is_one_plain_sentence(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = {"provider": "openai", "openai_base_url": f"http://127.0.0.1:{port}"}
    async with running_server(tmp_path, **settings) as srv, peer(srv.url, srv.token()) as alice:
        await alice.send(ListModels(request_id="models"))
        error = await alice.expect(Error, request_id="models")
    assert (error.code, error.message) == (
        "provider_error",
        "cannot list models: cannot reach the model server (connection refused)",
    )


def start_lines(caplog, level: int) -> list[str]:
    """The server's log lines of ``level`` that speak of the model server."""
    return [r.getMessage() for r in caplog.records if r.levelno == level and "model server" in r.getMessage()]


async def test_a_model_server_down_at_start_is_one_warning_naming_it_and_the_server_serves(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mfu_tui.server")
    with socket.socket() as closed:  # bound, never listening: connections to it are refused
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        async with running_server(tmp_path, provider="openai", openai_base_url=url) as srv:
            await until(lambda: start_lines(caplog, logging.WARNING))
            async with peer(srv.url, srv.token()) as alice:  # the start went on regardless
                await alice.send(Ping(ts=1))
                assert await alice.recv() == Pong(ts=1)
    assert start_lines(caplog, logging.WARNING) == [
        f"model server {url}/v1: cannot list models: cannot reach the model server (connection refused)"
    ]
    assert start_lines(caplog, logging.INFO) == []


async def test_a_model_server_up_at_start_is_one_info_line_and_its_list_is_the_first_users(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mfu_tui.server")
    async with FakeOpenAI() as fake:
        fake.models_open.clear()  # the start's listing is held: the server serves all the same
        url = f"{fake.base_url}/v1"
        async with running_server(tmp_path, **openai_settings(fake)) as srv, peer(srv.url, srv.token()) as alice:
            await alice.send(ListModels(request_id="models"))
            await fake.models_asked.wait()
            fake.models_open.set()
            result = await alice.expect(Result, request_id="models")
            await until(lambda: start_lines(caplog, logging.INFO))
    assert [m.id for m in decode_result(result.data, ModelList).models] == ["fake-small", "fake-large"]
    assert fake.model_lists == 1  # the user's list_models was answered by the start's listing
    assert start_lines(caplog, logging.INFO) == [f"model server {url}: 2 models listed"]
    assert start_lines(caplog, logging.WARNING) == []


async def test_the_log_names_the_model_server_without_the_password_in_its_url(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mfu_tui.server")
    async with FakeOpenAI() as fake:
        fake.script = Script(status=500)
        with_password = fake.base_url.replace("http://", "http://alice:hunter2@")
        shown = fake.base_url.replace("http://", "http://alice:***@")
        async with running_server(tmp_path, provider="openai", openai_base_url=with_password) as srv:
            async with peer(srv.url, srv.token()) as alice:
                ack = await send_message(alice, "hello?")
                _, end = await alice.stream(ack.reply_id)
            await until(lambda: start_lines(caplog, logging.INFO))
    assert end.finish_reason == "error"
    assert start_lines(caplog, logging.INFO) == [f"model server {shown}/v1: 2 models listed"]
    assert f"{shown}/v1/chat/completions answered 500" in caplog.text
    assert "hunter2" not in caplog.text


async def test_a_model_sending_faster_than_the_server_reads_does_not_hold_the_server(tmp_path):
    # The whole answer is written at once: its pieces sit in the server's read buffer, and reading
    # them never waits. Without a turn of the event loop every ITEMS_PER_TURN items, the server
    # served no other connection and sent no chunk until it had read the whole buffer.
    pieces = ITEMS_PER_TURN * 50
    async with FakeOpenAI() as fake, running_server(tmp_path, **openai_settings(fake)) as srv:
        fake.script = Script(pieces=["word "] * pieces)
        read_at_each_turn: list[int] = []

        async def watch_each_turn() -> None:
            """What the generation has read, at each turn of the event loop (this coroutine runs once a turn)."""
            while True:
                read_at_each_turn.extend(generation.items_read for generation in srv.server.generations.running())
                await asyncio.sleep(0)

        async with peer(srv.url, srv.token()) as alice:
            watcher = asyncio.create_task(watch_each_turn())
            try:
                ack = await send_message(alice, "Go")
                chunks, end = await alice.stream(ack.reply_id)
            finally:
                watcher.cancel()
    assert isinstance(end, Complete) and text_of(chunks) == "word " * pieces
    assert read_at_each_turn[-1] >= pieces
    steps = [after - before for before, after in itertools.pairwise(read_at_each_turn)]
    assert max(steps) <= ITEMS_PER_TURN


@contextlib.contextmanager
def database_locked(path: Path) -> Iterator[None]:
    """Hold the SQLite file's write lock, as another program writing to it does: no commit ends meanwhile."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            db.execute("ROLLBACK")


async def test_a_model_faster_than_the_store_is_read_at_most_two_chunks_ahead_of_what_is_sent(tmp_path):
    # Each piece fills a chunk, and no commit ends while the database is locked. Read ahead of
    # the commits, the whole answer waited in memory (and under a firehose the store's writer
    # thread, starved of the interpreter's lock by the relay, sent it all at once at its end).
    pieces = 8
    async with FakeOpenAI() as fake, running_server(tmp_path, **openai_settings(fake)) as srv:
        fake.script = Script(pieces=["x" * MAX_CHUNK_CHARS] * pieces, then="hold", gated=True)
        ahead_at_each_turn: list[int] = []

        async def watch_each_turn(generation: Generation) -> None:
            """Pieces read from the model and not yet sent, at each turn of the event loop."""
            while True:
                ahead_at_each_turn.append(generation.items_read - generation.published_seq)
                await asyncio.sleep(0)

        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, "Go")
            (generation,) = srv.server.generations.running()
            watcher = asyncio.create_task(watch_each_turn(generation))
            try:
                with database_locked(Path(srv.db_path)):
                    fake.gate.set()
                    await fake.holding.wait()  # the model has sent its whole answer
                chunks = [await alice.expect(Chunk, message_id=ack.reply_id, seq=seq) for seq in range(1, pieces + 1)]
            finally:
                watcher.cancel()
    assert text_of(chunks) == "x" * MAX_CHUNK_CHARS * pieces
    assert max(ahead_at_each_turn) == 2


async def test_pieces_held_go_when_the_chunk_gap_is_up_though_the_model_goes_on(tmp_path, monkeypatch):
    monkeypatch.setattr(generation_module, "CHUNK_GAP", 0.05)
    pieces = [f"word{n} " for n in range(50)]
    async with FakeOpenAI() as fake, running_server(tmp_path, **openai_settings(fake)) as srv:
        fake.script = Script(pieces=pieces, then="hold")  # the answer does not end
        async with peer(srv.url, srv.token()) as alice:
            ack = await send_message(alice, "Go")
            shown = ""
            seq = 0
            while len(shown) < len("".join(pieces)):  # held pieces that never went would time this out
                seq += 1
                shown += (await alice.expect(Chunk, message_id=ack.reply_id, seq=seq)).content
            ended = [frame for frame in alice.received if isinstance(frame, (Complete, Cancelled))]
    assert shown == "".join(pieces) and not ended
