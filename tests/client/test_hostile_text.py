"""A hostile model behind the real server: the client hands on no control character, whatever the path.

Answers (escape sequences whole and split across chunks), stored messages
loaded with ``get_chat``, model names and the provider's error text all come
out of the client cleaned, while the server keeps exactly what the model sent.
"""

from __future__ import annotations

from mfu_tui.client.safe_text import clean_text
from mfu_tui.protocol import Chunk, Complete
from tests.server.fake_openai import FakeOpenAI, Script
from tests.server.peer import peer
from tests.server.test_generation import get_chat
from tests.support.server import running_server

ESC = "\x1b"
#: A window title, split across chunks; a clipboard write; a clear screen in C1; the end of a bracketed paste.
HOSTILE_PIECES = [
    "Hi ", ESC, "]2;pwned\x07 ", f"{ESC}]52;c;cm0gLXJmIH4K\x07", "x\x9b2J", f"{ESC}[201~\x15ls\r", "\u202e!",
]  # fmt: skip
HOSTILE_MODEL = f"evil{ESC}[8m"


def no_controls(text: str) -> bool:
    return not any((ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F for c in text)


async def test_answers_history_models_and_errors_reach_the_user_cleaned(tmp_path, make_client):
    async with FakeOpenAI() as fake:
        fake.models = ["fake-small", HOSTILE_MODEL]
        fake.script = Script(pieces=HOSTILE_PIECES)
        settings = {"provider": "openai", "openai_base_url": fake.base_url}
        async with running_server(tmp_path, **settings) as srv:
            client, recorder = make_client(srv.url, srv.token())
            await client.connect()
            await client.send_message(None, "hello")
            await recorder.wait_for(lambda: recorder.of_type(Complete))
            streamed = "".join(chunk.content for chunk in recorder.of_type(Chunk))
            chat_id = recorder.of_type(Complete)[0].chat_id
            detail = await client.get_chat(chat_id)
            models = await client.list_models()

            fake.script = Script(status=500, error_message=f"upstream {ESC}]2;owned\x07 failed")
            await client.send_message(chat_id, "again")
            await recorder.wait_for(lambda: [e for e in recorder.errors if e.code == "provider_error"])

            async with peer(srv.url, srv.token()) as raw:
                stored = await get_chat(raw, chat_id)
    sent = "".join(HOSTILE_PIECES)
    assert stored.messages[1].content == sent  # the server keeps what the model sent
    assert streamed == clean_text(sent) == "Hi  xls<U+202E>!"
    assert detail.messages[1].content == clean_text(sent)
    assert [model.name for model in models.models] == ["fake-small", "evil"]
    error = next(e for e in recorder.errors if e.code == "provider_error")
    assert no_controls(str(error)) and "upstream  failed" in str(error)


async def test_search_hits_come_cleaned_with_their_highlights_moved_to_match(tmp_path, make_client):
    hostile = f"\u202ezebra{ESC}]2;pwned\x07 and \u2066 another zebra \x9b2J"
    async with running_server(tmp_path, demo_words=3, demo_delay_ms=0) as srv:
        client, recorder = make_client(srv.url, srv.token())
        await client.connect()
        await client.send_message(None, hostile)
        await recorder.wait_for(lambda: recorder.of_type(Complete))
        results = await client.search("zebra")
        async with peer(srv.url, srv.token()) as raw:
            await raw.send({"type": "search", "requestId": "r1", "query": "zebra"})
            sent = (await raw.recv()).data["hits"][0]
    hit = results.hits[0]
    assert sent["snippet"] == hostile  # the server sends what was stored...
    assert no_controls(hit.snippet) and no_controls(hit.chat_title)  # ...the client hands on none of it
    assert hit.snippet == clean_text(hostile) == "<U+202E>zebra and <U+2066> another zebra "
    assert hit.chat_title == clean_text(hostile)
    assert [hit.snippet[start:end] for start, end in hit.highlights] == ["zebra", "zebra"]
