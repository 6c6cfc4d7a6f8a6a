"""The seed's own browser client, played under Node, against the real ``mfu-chat serve`` process.

One session as the page lives it: connect with the token in the URL, send
in the seed's shapes (no ``clientMessageId``, the whole history, ``chatId: ""``
for a new chat), stream, stop an answer, tell other tabs of an edit, reload
the chat list over REST, and survive a kill -9 of the server and its restart.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.programs import free_port
from tests.support.seed_client import SeedClient, seed_client
from tests.support.server import ServerProcess

#: Long enough answers that one is still streaming when the test stops it or kills the server.
DEMO = ["--demo-words", "400", "--demo-delay-ms", "2"]
#: The seed's reconnect delay unit (1 s) stretched, so its one retry comes after the restart.
RECONNECT_DELAY_MS = 4000


async def stream_until_end(seed: SeedClient, first: dict[str, Any] | None = None) -> tuple[str, str, dict[str, Any]]:
    """The next answer as the page sees it (from its ``first`` chunk if already read): id, text, end frame."""
    first = first or await seed.next_frame("chunk")
    text, seq = first["content"], first["seq"]
    while True:
        event = await seed.next_event(
            lambda event: event["event"] == "frame" and event["frame"]["type"] in ("chunk", "complete", "cancel")
        )
        frame = event["frame"]
        if frame["type"] != "chunk":
            assert frame["seq"] == seq, "every chunk up to the end came"
            return first["messageId"], text, frame
        assert (frame["messageId"], frame["seq"]) == (first["messageId"], seq + 1), "in order, once, no gap"
        text, seq = text + frame["content"], frame["seq"]


async def test_the_seeds_page_chats_stops_edits_reloads_and_survives_a_server_kill(tmp_path):
    api_port = free_port()
    server = ServerProcess(tmp_path, *DEMO, "--api-port", str(api_port))
    await asyncio.to_thread(server.start)
    try:
        token = server.token("alice")
        async with seed_client(
            server.url, token, api_url=f"http://127.0.0.1:{api_port}", reconnect_delay_ms=RECONNECT_DELAY_MS
        ) as seed:
            await seed.connect()
            assert (await seed.next_event(lambda event: event["event"] in ("open", "close")))["event"] == "open"

            # A new chat: chatId "", no clientMessageId, the page's history array.
            await seed.send_message("", content="Hello from the page", model_id="demo")
            reply_id, text, end = await stream_until_end(seed)
            assert end["type"] == "complete" and end["finishReason"] == "stop"
            chat_id = end["chatId"]

            # The chat list and the history over REST, as the page reloads them.
            listed = await seed.rest("GET", "/api/chat/chats?page=1&limit=20")
            assert listed["status"] == 200
            assert [chat["id"] for chat in listed["body"]["chats"]] == [chat_id]
            history = await seed.rest("GET", f"/api/chat/chats/{chat_id}")
            assert history["status"] == 200
            stored = history["body"]["messages"]
            assert [(m["role"], m["content"]) for m in stored] == [("user", "Hello from the page"), ("assistant", text)]

            # The page's stop button: the partial answer is kept.
            await seed.send_message(chat_id, content="Tell me more", model_id="demo")
            started = await seed.next_frame("chunk")
            await seed.cancel(chat_id)
            _, partial, stopped = await stream_until_end(seed, started)
            assert stopped["type"] == "cancel"

            # The page tells its other tabs of an edit, by its own Date.now() id.
            page_message_id = (await seed.history())[-2]["id"]
            await seed.edit(chat_id, "Tell me much more", message_id=page_message_id)
            edited = await seed.next_frame("message_edited")
            assert (edited["messageId"], edited["content"]) == (page_message_id, "Tell me much more")

            # A rename over REST reaches the page's socket as chat_updated.
            renamed = await seed.rest("PUT", f"/api/chat/history/{chat_id}/rename", {"newName": "Greetings"})
            assert renamed["status"] == 200 and renamed["body"]["chat"]["chatname"] == "Greetings"
            assert (await seed.next_frame("chat_updated"))["chat"]["title"] == "Greetings"

            # Rejoin the chat the page's way (&chat=), then kill -9 the server mid-answer.
            await seed.close()
            await seed.connect(chat_id)
            await seed.next_event(lambda event: event["event"] == "open")
            await seed.send_message(chat_id, content="One more", model_id="demo")
            cut = await seed.next_frame("chunk")
            await asyncio.to_thread(server.kill)
            await seed.next_event(lambda event: event["event"] == "reconnecting")
            await asyncio.to_thread(server.start)

            # Its one retry finds the server back; the page learns how the cut answer ended.
            await seed.next_event(lambda event: event["event"] == "open", timeout=30)
            ended = await seed.next_frame("complete")
            assert (ended["messageId"], ended["finishReason"]) == (cut["messageId"], "interrupted")

            # And it goes on chatting on the new connection.
            await seed.send_message(chat_id, content="Are you back?", model_id="demo")
            _, _, end = await stream_until_end(seed)
            assert end["type"] == "complete"
            history = await seed.rest("GET", f"/api/chat/chats/{chat_id}")
            contents = [m["content"] for m in history["body"]["messages"] if m["role"] == "user"]
            assert contents == ["Hello from the page", "Tell me more", "One more", "Are you back?"]
            assert partial in [m["content"] for m in history["body"]["messages"]]
            assert reply_id != cut["messageId"]
    finally:
        await asyncio.to_thread(server.kill)
