"""The REST API of the seed's browser page, against the real server, with a real HTTP client.

Chats are made the way the page makes them, by sending messages over the
WebSocket; the same WebSocket then shows the ``chat_updated`` each REST
change broadcasts.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from mfu_tui.protocol import Cancelled, ChatPage, ChatUpdated, Chunk, ListChats, decode_result
from mfu_tui.server.auth import mint_token
from mfu_tui.server.config import ConfigError, ServerConfig, env_defaults
from mfu_tui.server.rest import MAX_BODY
from tests.server.peer import Peer, peer
from tests.server.test_chats import new_chat, request
from tests.server.test_generation import SLOW, send_message
from tests.support.programs import free_port
from tests.support.server import RunningServer, ServerProcess, new_secret, running_server

ORIGIN = "https://page.example"
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
#: The routes that name a chat: (method, path with {id}, what their 404 says).
CHAT_ROUTES = [
    ("GET", "/api/chat/chats/{id}", "Chat not found"),
    ("PUT", "/api/chat/history/{id}/rename", "Chat not found"),
    ("PUT", "/api/chat/history/{id}/pin", "Chat not found"),
    ("DELETE", "/api/chat/history/{id}", "Chat not found or you are not authorized to delete it"),
]
ALL_ROUTES = [(method, path) for method, path, _ in CHAT_ROUTES] + [
    ("GET", "/api/chat/chats"),
    ("GET", "/api/models"),
]


@dataclass
class Reply:
    status: int
    body: Any
    headers: Any


class Rest:
    """An HTTP client of one server's REST API."""

    def __init__(self, session: aiohttp.ClientSession, token: str | None) -> None:
        self.session = session
        self.token = token

    async def call(
        self, method: str, path: str, *, token: str | None = "default", headers: dict[str, str] | None = None, **kw
    ) -> Reply:
        """One request with ``Authorization: Bearer`` (this client's token unless ``token`` says otherwise)."""
        sent = dict(headers or {})
        token = self.token if token == "default" else token
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        async with self.session.request(method, path, headers=sent, **kw) as response:
            body = await response.json(content_type=None) if response.content_type == "application/json" else None
            return Reply(response.status, body, response.headers)


@contextlib.asynccontextmanager
async def rest(srv: RunningServer, user: str | None = "alice") -> AsyncIterator[Rest]:
    assert srv.server.api_port is not None
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{srv.server.api_port}") as session:
        yield Rest(session, srv.token(user) if user else None)


async def next_update(client: Peer, chat_id: str, **fields: Any) -> ChatUpdated:
    """The next ``chat_updated`` about ``chat_id`` whose chat has ``fields``."""
    while True:
        update = await client.expect(ChatUpdated)
        if update.chat.id == chat_id and all(getattr(update.chat, k) == v for k, v in fields.items()):
            return update


async def test_the_chat_list_and_a_chat_have_the_originals_shapes_with_our_ids(tmp_path):
    async with running_server(tmp_path, api_port=0, demo_words=3) as srv:
        async with peer(srv.url, srv.token()) as alice, rest(srv) as api:
            ack = await new_chat(alice, "What is a monad?")
            listed = await api.call("GET", "/api/chat/chats")
            chat = await api.call("GET", f"/api/chat/chats/{ack.chat_id}")
    assert listed.status == 200 and listed.body["totalPages"] == 1 and listed.body["hasMore"] is False
    [entry] = listed.body["chats"]
    assert set(entry) == {"_id", "id", "name", "chatname", "modelId", "isPinned", "createdAt", "updatedAt"}
    assert entry["_id"] == entry["id"] == ack.chat_id
    assert entry["name"] == entry["chatname"] == "What is a monad?"
    assert entry["isPinned"] is False and entry["modelId"] is None
    assert ISO.fullmatch(entry["createdAt"]) and ISO.fullmatch(entry["updatedAt"])
    assert entry["createdAt"] <= entry["updatedAt"]
    assert chat.status == 200
    assert {key: value for key, value in chat.body.items() if key != "messages"} == entry
    question, answer = chat.body["messages"]
    assert set(question) == {"id", "role", "content", "timestamp", "isComplete", "isEdited"}
    assert (question["id"], question["role"], question["content"]) == (ack.message_id, "user", "What is a monad?")
    assert (answer["id"], answer["role"], answer["isComplete"]) == (ack.reply_id, "assistant", True)
    assert question["isEdited"] is False and ISO.fullmatch(question["timestamp"])
    assert question["timestamp"] == entry["createdAt"]  # the first message is as old as its chat


async def test_pages_are_numbered_newest_first_and_bounded(tmp_path):
    settings = {"demo_words": 1, "messages_per_minute": 6000.0, "message_burst": 100}
    async with running_server(tmp_path, api_port=0, **settings) as srv:
        async with peer(srv.url, srv.token()) as alice, rest(srv) as api, rest(srv, "bob") as bob:
            acks = [await new_chat(alice, f"chat {n}") for n in range(25)]
            pages = [await api.call("GET", f"/api/chat/chats?page={page}&limit=10") for page in (1, 2, 3, 4)]
            default = await api.call("GET", "/api/chat/chats")
            widest = await api.call("GET", "/api/chat/chats?limit=100")
            nothing = await bob.call("GET", "/api/chat/chats")
            refused = [
                await api.call("GET", f"/api/chat/chats?{query}")
                for query in ("page=0", "page=-1", "page=two", "page=1.5", "page=%201", "page=", "page=1000001")
                + ("limit=0", "limit=101", "limit=ten", "limit=%EF%BC%91")  # the last: a full-width digit
            ]
    newest_first = [ack.chat_id for ack in reversed(acks)]
    assert [[chat["id"] for chat in page.body["chats"]] for page in pages] == [
        newest_first[:10],
        newest_first[10:20],
        newest_first[20:],
        [],
    ]
    assert [(page.body["totalPages"], page.body["hasMore"]) for page in pages] == [
        (3, True),
        (3, True),
        (3, False),
        (3, False),
    ]
    assert [chat["id"] for chat in default.body["chats"]] == newest_first[:20]
    assert (default.body["totalPages"], default.body["hasMore"]) == (2, True)
    assert [chat["id"] for chat in widest.body["chats"]] == newest_first
    assert nothing.body == {"chats": [], "totalPages": 0, "hasMore": False}
    for reply in refused:
        assert reply.status == 400 and set(reply.body) == {"error"}, reply
    assert "'page' must be a whole number from 1 to 1000000" == refused[0].body["error"]
    assert "'limit' must be a whole number from 1 to 100" == refused[-1].body["error"]


async def test_every_route_needs_a_valid_bearer_token(tmp_path):
    async with running_server(tmp_path, api_port=0) as srv:
        async with rest(srv, None) as api:
            tokens = {
                None: "No token provided",
                "": "No token provided",
                srv.token(ttl=-120): "Invalid token",  # expired beyond the leeway
                mint_token(new_secret(), "alice"): "Invalid token",  # another server's secret
                "not-a-jwt": "Invalid token",
            }
            replies = []
            for method, path in ALL_ROUTES:
                for token, expected in tokens.items():
                    reply = await api.call(method, path.format(id="c1"), token=token)
                    replies.append((reply, expected))
                basic = await api.call(method, path.format(id="c1"), headers={"Authorization": "Basic YWxpY2U6cHc="})
                replies.append((basic, "No token provided"))
                # The WebSocket's ?token= fallback is not the original REST's: the header only.
                query = await api.call(method, path.format(id="c1"), params={"token": srv.token()})
                replies.append((query, "No token provided"))
    for reply, expected in replies:
        assert (reply.status, reply.body) == (401, {"error": expected})
        assert reply.headers["WWW-Authenticate"] == 'Bearer realm="mfu-chat"'


async def test_another_users_chat_is_not_found_on_every_route_and_stays_untouched(tmp_path):
    async with running_server(tmp_path, api_port=0, demo_words=3) as srv:
        async with peer(srv.url, srv.token()) as alice, rest(srv, "bob") as bob, rest(srv) as api:
            ack = await new_chat(alice, "private")
            for chat_id in (ack.chat_id, "no-such-chat", "x" * 129):
                for method, path, not_found in CHAT_ROUTES:
                    reply = await bob.call(method, path.format(id=chat_id), json={"newName": "mine now"})
                    assert (reply.status, reply.body) == (404, {"error": not_found}), (method, path, chat_id)
            listed = await bob.call("GET", "/api/chat/chats")
            still = await api.call("GET", f"/api/chat/chats/{ack.chat_id}")
    assert listed.body["chats"] == []
    assert (still.body["chatname"], still.body["isPinned"], len(still.body["messages"])) == ("private", False, 2)


async def test_rename_checks_the_name_answers_and_tells_every_connection(tmp_path):
    async with running_server(tmp_path, api_port=0, demo_words=3) as srv:
        async with peer(srv.url, srv.token()) as alice, rest(srv) as api:
            ack = await new_chat(alice)
            path = f"/api/chat/history/{ack.chat_id}/rename"
            bad = {
                "empty": await api.call("PUT", path, json={"newName": ""}),
                "blank": await api.call("PUT", path, json={"newName": "   "}),
                "long": await api.call("PUT", path, json={"newName": "x" * 101}),
                "markup": await api.call("PUT", path, json={"newName": "<b>Monads</b>"}),
                "missing": await api.call("PUT", path, json={"name": "Monads"}),
                "number": await api.call("PUT", path, json={"newName": 7}),
                "not json": await api.call("PUT", path, data=b"newName=Monads"),
                "no body": await api.call("PUT", path),
            }
            renamed = await api.call("PUT", path, json={"newName": "  Monads  "})
            update = await next_update(alice, ack.chat_id, title="Monads")
            longest = await api.call("PUT", path, json={"newName": "y" * 100})
            chat = await api.call("GET", f"/api/chat/chats/{ack.chat_id}")
    for why, reply in bad.items():
        assert reply.status == 400 and reply.body["error"] == "Validation failed", why
        assert reply.body["details"] and all(d["path"] == "newName" and d["msg"] for d in reply.body["details"]), why
    assert [d["msg"] for d in bad["long"].body["details"]] == ["Chat name must be at most 100 characters"]
    assert renamed.status == 200
    assert renamed.body == {
        "success": True,
        "chat": {"id": ack.chat_id, "chatname": "Monads", "updatedAt": renamed.body["chat"]["updatedAt"]},
    }
    assert ISO.fullmatch(renamed.body["chat"]["updatedAt"])
    assert update.deleted is False
    assert longest.status == 200 and chat.body["chatname"] == "y" * 100


async def test_pin_toggles_shows_in_list_chats_and_is_broadcast(tmp_path):
    async with running_server(tmp_path, api_port=0, demo_words=3) as srv:
        async with peer(srv.url, srv.token()) as alice, peer(srv.url, srv.token()) as other_tab, rest(srv) as api:
            ack = await new_chat(alice)
            before = await api.call("GET", f"/api/chat/chats/{ack.chat_id}")
            pinned = await api.call("PUT", f"/api/chat/history/{ack.chat_id}/pin")
            for tab in (alice, other_tab):
                assert (await next_update(tab, ack.chat_id, pinned=True)).chat.pinned
            listed_ws = decode_result((await request(other_tab, ListChats)).data, ChatPage)
            listed_rest = await api.call("GET", "/api/chat/chats")
            unpinned = await api.call("PUT", f"/api/chat/history/{ack.chat_id}/pin")
            await next_update(alice, ack.chat_id, pinned=False)
    assert pinned.status == 200 and pinned.body["isPinned"] is True
    assert {**before.body, "isPinned": True} == pinned.body  # the whole chat, messages included; not moved
    assert [(chat.id, chat.pinned) for chat in listed_ws.chats] == [(ack.chat_id, True)]
    assert listed_rest.body["chats"][0]["isPinned"] is True
    assert unpinned.body["isPinned"] is False


async def test_delete_stops_the_running_answer_and_tells_every_connection(tmp_path):
    async with running_server(tmp_path, api_port=0, **SLOW) as srv:
        async with peer(srv.url, srv.token()) as alice, rest(srv) as api:
            ack = await send_message(alice, "a long answer, please")
            await alice.expect(Chunk, message_id=ack.reply_id, seq=2)
            deleted = await api.call("DELETE", f"/api/chat/history/{ack.chat_id}")
            _, end = await alice.stream(ack.reply_id)
            gone = await alice.expect(ChatUpdated, deleted=True)
            again = await api.call("DELETE", f"/api/chat/history/{ack.chat_id}")
            history = await api.call("GET", f"/api/chat/chats/{ack.chat_id}")
            running = srv.server.generations.live(ack.chat_id, "alice")
    assert (deleted.status, deleted.body) == (200, {"success": True, "message": "Chat deleted successfully"})
    assert isinstance(end, Cancelled)
    assert gone.chat.id == ack.chat_id
    assert running is None
    assert (again.status, again.body) == (404, {"error": "Chat not found or you are not authorized to delete it"})
    assert (history.status, history.body) == (404, {"error": "Chat not found"})


async def test_models_have_the_originals_shape_and_a_provider_failure_is_502(tmp_path):
    async with running_server(tmp_path, api_port=0) as srv:
        async with rest(srv) as api:
            models = await api.call("GET", "/api/models")
    dead_model_server = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with running_server(tmp_path, api_port=0, provider="openai", openai_base_url=dead_model_server) as srv:
        async with rest(srv) as api:
            failed = await api.call("GET", "/api/models")
    assert (models.status, models.body) == (
        200,
        [{"_id": "demo", "id": "demo", "name": "Demo (offline)", "modelType": "official"}],
    )
    assert failed.status == 502
    assert failed.body == {"error": "cannot list models: cannot reach the model server (connection refused)"}


async def test_a_body_over_the_bound_is_refused_with_413_whether_announced_or_chunked(tmp_path):
    async with running_server(tmp_path, api_port=0, demo_words=3) as srv:
        async with peer(srv.url, srv.token()) as alice, rest(srv) as api:
            ack = await new_chat(alice, "keep my name")
            path = f"/api/chat/history/{ack.chat_id}/rename"
            big = b'{"newName": "' + b"x" * MAX_BODY + b'"}'

            async def chunked() -> AsyncIterator[bytes]:
                for start in range(0, len(big), 1024):
                    yield big[start : start + 1024]

            announced = await api.call("PUT", path, data=big, headers={"Content-Type": "application/json"})
            streamed = await api.call("PUT", path, data=chunked(), headers={"Content-Type": "application/json"})
            chat = await api.call("GET", f"/api/chat/chats/{ack.chat_id}")
    for reply in (announced, streamed):
        assert (reply.status, reply.body) == (413, {"error": f"the request body is larger than {MAX_BODY} bytes"})
    assert chat.body["chatname"] == "keep my name"


async def test_cors_answers_listed_origins_only(tmp_path):
    async with running_server(tmp_path, api_port=0, cors_origins=(ORIGIN,)) as srv:
        async with rest(srv) as api:
            preflight = {"Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "authorization"}
            listed = await api.call(
                "OPTIONS", "/api/chat/history/c1/rename", token=None, headers={"Origin": ORIGIN, **preflight}
            )
            unlisted = await api.call(
                "OPTIONS",
                "/api/chat/history/c1/rename",
                token=None,
                headers={"Origin": "https://evil.example", **preflight},
            )
            read = await api.call("GET", "/api/models", headers={"Origin": ORIGIN})
            refused = await api.call("GET", "/api/models", token=None, headers={"Origin": ORIGIN})
            foreign = await api.call("GET", "/api/models", headers={"Origin": "https://evil.example"})
    assert listed.status == 204
    assert listed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert {"PUT", "DELETE", "GET"} <= {m.strip() for m in listed.headers["Access-Control-Allow-Methods"].split(",")}
    assert "authorization" in listed.headers["Access-Control-Allow-Headers"].lower()
    assert unlisted.status == 403 and "Access-Control-Allow-Origin" not in unlisted.headers
    assert read.status == 200 and read.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert refused.status == 401 and refused.headers["Access-Control-Allow-Origin"] == ORIGIN  # the page can read why
    assert foreign.status == 200 and "Access-Control-Allow-Origin" not in foreign.headers
    assert all(reply.headers.get("Vary") == "Origin" for reply in (listed, read, foreign))


async def test_unknown_paths_and_methods_answer_json(tmp_path):
    async with running_server(tmp_path, api_port=0) as srv:
        async with rest(srv) as api:
            missing = await api.call("GET", "/api/chat/nothing-here")
            wrong = await api.call("POST", "/api/models")
    assert (missing.status, missing.body) == (404, {"error": "Not Found"})
    assert (wrong.status, wrong.body) == (405, {"error": "Method Not Allowed"})
    assert "GET" in wrong.headers["Allow"]


async def test_no_token_reaches_the_logs(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    async with running_server(tmp_path, api_port=0) as srv:
        token = srv.token()
        async with rest(srv) as api:
            await api.call("GET", "/api/models", token="eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.bad")
            # On the same connection: answered once the first request's access log line is written.
            await api.call("GET", f"/api/models?token={token}")
    access = [record.getMessage() for record in caplog.records if record.name == "aiohttp.access"]
    assert any("[redacted]" in line for line in access)
    assert token not in caplog.text and "eyJhbGciOiJIUzI1NiJ9" not in caplog.text


async def test_no_rest_listener_unless_asked(tmp_path):
    async with running_server(tmp_path) as srv:
        assert srv.server.api_port is None


async def test_the_rest_listener_stops_first_and_with_the_server(tmp_path):
    async with running_server(tmp_path, api_port=0) as srv:
        port = srv.server.api_port
        await srv.server.stop()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_api_port_and_cors_origins_settings_and_their_validation():
    secret = new_secret()
    assert env_defaults({"MFU_API_PORT": "8080", "MFU_CORS_ORIGINS": f" {ORIGIN}, http://localhost:5173 ,"}) == {
        "api_port": 8080,
        "cors_origins": (ORIGIN, "http://localhost:5173"),
    }
    with pytest.raises(ConfigError, match="MFU_API_PORT"):
        env_defaults({"MFU_API_PORT": "http"})
    with pytest.raises(ConfigError, match="differ"):
        ServerConfig(secret=secret, port=5001, api_port=5001)
    with pytest.raises(ConfigError, match="65535"):
        ServerConfig(secret=secret, api_port=70000)
    for origin in (f"{ORIGIN}/", "page.example", f"{ORIGIN}/chat", "*"):
        with pytest.raises(ConfigError, match="CORS origin"):
            ServerConfig(secret=secret, cors_origins=(origin,))
    assert ServerConfig(secret=secret, port=0, api_port=0).api_port == 0


def test_the_serve_command_reads_api_port_and_cors_origins_flags_over_the_environment(monkeypatch):
    from mfu_tui.server.cli import _config_from

    monkeypatch.setenv("MFU_JWT_SECRET", new_secret())
    monkeypatch.setenv("MFU_API_PORT", "8081")
    monkeypatch.setenv("MFU_CORS_ORIGINS", "http://x.example")
    flags = argparse.Namespace(host="127.0.0.1", port=5001, provider="demo", api_port=None, cors_origin=None)
    from_env = _config_from(flags)
    flags.api_port, flags.cors_origin = 0, [ORIGIN, "http://localhost:5173"]
    from_flags = _config_from(flags)
    assert (from_env.api_port, from_env.cors_origins) == (8081, ("http://x.example",))
    assert (from_flags.api_port, from_flags.cors_origins) == (0, (ORIGIN, "http://localhost:5173"))


async def rest_of_process(process: ServerProcess, port: int) -> tuple[Reply, Reply]:
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as session:
        api = Rest(session, process.token())
        return await api.call("GET", "/api/models", headers={"Origin": ORIGIN}), await api.call(
            "GET", "/api/chat/chats"
        )


async def test_the_cli_opens_the_rest_listener_from_the_environment(tmp_path):
    port = free_port()
    process = ServerProcess(tmp_path, env={"MFU_API_PORT": str(port), "MFU_CORS_ORIGINS": ORIGIN})
    process.start()  # its one stdout line comes once both listeners are up
    try:
        models, chats = await rest_of_process(process, port)
    finally:
        process.kill()
    assert models.status == 200 and models.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert chats.body == {"chats": [], "totalPages": 0, "hasMore": False}


async def test_the_cli_opens_the_rest_listener_from_flags_which_win_over_the_environment(tmp_path):
    port = free_port()
    args = ("--api-port", str(port), "--cors-origin", ORIGIN)
    process = ServerProcess(
        tmp_path, *args, env={"MFU_API_PORT": str(free_port()), "MFU_CORS_ORIGINS": "http://x.example"}
    )
    process.start()
    try:
        models, _ = await rest_of_process(process, port)
    finally:
        process.kill()
    assert models.status == 200 and models.headers["Access-Control-Allow-Origin"] == ORIGIN
