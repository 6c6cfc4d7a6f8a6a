"""The REST API the seed's browser page loads its chats and models from, beside the WebSocket.

A listener of its own (``--api-port``), on aiohttp: websockets' server
answers only ``GET``, and the page renames with ``PUT`` and deletes with
``DELETE``. The routes, and the documents they answer with (``rest_shapes``),
are the original backend's; docs/protocol.md lists them.

Every request passes, in this order: CORS (only ``cors_origins`` get the
headers that let a browser page read the answer), the body bound
(``MAX_BODY``), the bearer token, checked exactly as at the WebSocket's door,
and, for a route that names a chat, the chat's owner: another user's chat
gets the same 404 as one that never existed, before anything is done.

Rename, pin and delete tell the user's connections through the WebSocket
handlers' own ``announce`` (and delete stops the chat's answer with their
``remove``), so they broadcast ``chat_updated`` exactly as their WebSocket
twins do. Nothing here is rate-limited: the WebSocket
limits only the frames that start an answer, and no route here starts one.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from mfu_tui.protocol import MAX_ID_LENGTH, ChatSummary
from mfu_tui.redaction import redacting_logger
from mfu_tui.server import rest_shapes
from mfu_tui.server.auth import AuthError, TokenCheck, bearer_token
from mfu_tui.server.handlers import Handlers
from mfu_tui.server.http_listener import HttpListener
from mfu_tui.server.hub import Hub
from mfu_tui.server.providers import ProviderError
from mfu_tui.server.store import Store

log = logging.getLogger(__name__)

#: Largest request body, in bytes: a rename is the only body, ``{"newName": ...}``.
MAX_BODY = 4 * 1024
DEFAULT_PAGE = 1
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
#: Highest page number asked for; far beyond any user's chats, and it keeps the offset small.
MAX_PAGE = 1_000_000
#: Messages of a chat the page's ``GET /api/chat/chats/{chatId}`` returns: the newest ones
#: (fewer if their text is very long), so one response stays bounded however long the chat.
DETAIL_MESSAGES = 200
#: How long a stop waits for requests in progress.
SHUTDOWN_TIMEOUT = 5.0

#: The authenticated user of a request.
USER = web.RequestKey("user", str)

_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")
_CORS_METHODS = "GET, PUT, DELETE"
_CORS_HEADERS = "Authorization, Content-Type"
#: Seconds a browser may reuse a preflight's answer.
_CORS_MAX_AGE = "600"

CHAT_NOT_FOUND = "Chat not found"
DELETE_NOT_FOUND = "Chat not found or you are not authorized to delete it"

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RestApi(HttpListener):
    """The REST listener: build it with the server's parts, then ``bind``, ``serve`` and ``close`` it.

    Args:
        store: Where chats are (every query filtered by user).
        hub: Its ``linked`` says whether this node may serve.
        handlers: The WebSocket's frame handlers: their ``announce``, ``remove`` and model ``catalog``.
        token_check: How tokens are checked, as at the WebSocket.
        cors_origins: Browser origins allowed to read the answers.
    """

    def __init__(
        self,
        *,
        store: Store,
        hub: Hub,
        handlers: Handlers,
        token_check: TokenCheck,
        cors_origins: tuple[str, ...] = (),
    ) -> None:
        self._store = store
        self._hub = hub
        self._handlers = handlers
        self._token_check = token_check
        self._origins = frozenset(cors_origins)
        self.app = web.Application(
            middlewares=[self._cors, self._errors_as_json, self._guard],
            client_max_size=MAX_BODY,
        )
        # aiohttp's access log writes the request line: redacted, in case a client puts a token in the URL.
        # Requests in progress at the stop get SHUTDOWN_TIMEOUT to finish.
        super().__init__(self.app, access_log=redacting_logger("aiohttp.access"), shutdown_timeout=SHUTDOWN_TIMEOUT)
        self.app.router.add_get("/api/chat/chats", self.list_chats)
        self.app.router.add_get("/api/chat/chats/{chat_id}", self.get_chat)
        self.app.router.add_put("/api/chat/history/{chat_id}/rename", self.rename_chat)
        self.app.router.add_put("/api/chat/history/{chat_id}/pin", self.toggle_pin)
        self.app.router.add_delete("/api/chat/history/{chat_id}", self.delete_chat)
        self.app.router.add_get("/api/models", self.list_models)

    # --- middlewares, outermost first ------------------------------------------

    @web.middleware
    async def _cors(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        """Answer preflights, and let listed origins read the answers; others get no CORS header at all."""
        origin = request.headers.get("Origin")
        allowed = origin is not None and origin in self._origins
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            if not allowed:
                return _error(403, "Origin not allowed")
            assert origin is not None
            return web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": _CORS_METHODS,
                    "Access-Control-Allow-Headers": _CORS_HEADERS,
                    "Access-Control-Max-Age": _CORS_MAX_AGE,
                    "Vary": "Origin",
                },
            )
        response = await handler(request)
        if allowed:
            assert origin is not None
            response.headers["Access-Control-Allow-Origin"] = origin
        if self._origins:  # the answer depends on Origin: caches must not hand one origin's to another
            response.headers["Vary"] = "Origin"
        return response

    @web.middleware
    async def _errors_as_json(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        """Every answer is JSON ``{error}``: aiohttp's own (404, 405, 413), an outage's (503), a bug's (500)."""
        try:
            return await handler(request)
        except web.HTTPException as error:
            if error.status == 413:
                return _too_large()
            response = _error(error.status, error.reason)
            if "Allow" in error.headers:  # 405 says which methods the path has
                response.headers["Allow"] = error.headers["Allow"]
            return response
        except Exception as error:
            if self._store.outages.failed("REST requests refused", error):
                response = _error(503, "the server cannot reach its database; try again in a moment")
                response.headers["Retry-After"] = "5"
                return response
            log.exception("a REST request failed: %s %s", request.method, request.path)
            return _error(500, "Internal server error")

    @web.middleware
    async def _guard(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        """Refuse before any work: a node cut off from the others, a body too large, no acceptable token."""
        if not self._hub.linked:  # its broadcasts would reach this node only (the WebSocket answers 503 too)
            return _error(503, "lost the link to the other server nodes")
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _too_large()
        token = bearer_token(request.headers.get("Authorization", ""))
        if token is None:
            return self._refuse(request, "No token provided", "missing token")
        try:
            identity = await self._token_check.identify(token)
        except AuthError as error:
            return self._refuse(request, "Invalid token", str(error))
        request[USER] = identity.user
        return await handler(request)

    @staticmethod
    def _refuse(request: web.Request, answer: str, why: str) -> web.Response:
        log.info("refused a REST request from %s: %s", request.remote, why)
        response = _error(401, answer)
        response.headers["WWW-Authenticate"] = 'Bearer realm="mfu-chat"'
        return response

    # --- routes -------------------------------------------------------------------

    async def list_chats(self, request: web.Request) -> web.Response:
        """``GET /api/chat/chats?page=1&limit=20``: ``{chats, totalPages, hasMore}``, newest first."""
        try:
            page = _whole_number(request, "page", DEFAULT_PAGE, MAX_PAGE)
            limit = _whole_number(request, "limit", DEFAULT_LIMIT, MAX_LIMIT)
        except ValueError as error:
            return _error(400, str(error))
        chats, total = await self._store.chats_page(request[USER], (page - 1) * limit, limit)
        pages = math.ceil(total / limit)
        listed = [rest_shapes.listed_document(chat) for chat in chats]
        return web.json_response({"chats": listed, "totalPages": pages, "hasMore": page < pages})

    async def get_chat(self, request: web.Request) -> web.Response:
        """``GET /api/chat/chats/{chatId}``: the chat with its messages."""
        user, chat_id = request[USER], request.match_info["chat_id"]
        if await self._owned(user, chat_id) is None:
            return _error(404, CHAT_NOT_FOUND)
        return await self._detail_response(user, chat_id)

    async def rename_chat(self, request: web.Request) -> web.Response:
        """``PUT /api/chat/history/{chatId}/rename`` with ``{newName}``: ``{success, chat}``."""
        user, chat_id = request[USER], request.match_info["chat_id"]
        if await self._owned(user, chat_id) is None:
            return _error(404, CHAT_NOT_FOUND)
        name, problems = rest_shapes.check_new_name(await _json_body(request))
        if problems:
            return _error(400, "Validation failed", details=problems)
        renamed = await self._store.rename_chat(user, chat_id, name)
        if renamed is None:  # deleted since
            return _error(404, CHAT_NOT_FOUND)
        self._handlers.announce(user, renamed)
        return web.json_response(rest_shapes.renamed_document(renamed))

    async def toggle_pin(self, request: web.Request) -> web.Response:
        """``PUT /api/chat/history/{chatId}/pin``: the chat, with ``isPinned`` toggled, and its messages."""
        user, chat_id = request[USER], request.match_info["chat_id"]
        chat = await self._owned(user, chat_id)
        if chat is None:
            return _error(404, CHAT_NOT_FOUND)
        # Read, then set: two toggles at the same moment may both land on the same
        # value; every connection is told the value that stays.
        pinned = await self._store.set_pinned(user, chat_id, not chat.pinned)
        if pinned is None:
            return _error(404, CHAT_NOT_FOUND)
        self._handlers.announce(user, pinned)
        return await self._detail_response(user, chat_id)

    async def delete_chat(self, request: web.Request) -> web.Response:
        """``DELETE /api/chat/history/{chatId}``: stops its answer, deletes it, tells every connection."""
        user, chat_id = request[USER], request.match_info["chat_id"]
        if await self._owned(user, chat_id) is None:
            return _error(404, DELETE_NOT_FOUND)
        deleted = await self._handlers.remove(user, chat_id)
        if deleted is None:  # deleted since
            return _error(404, DELETE_NOT_FOUND)
        self._handlers.announce(user, deleted, deleted=True)
        return web.json_response({"success": True, "message": "Chat deleted successfully"})

    async def list_models(self, request: web.Request) -> web.Response:
        """``GET /api/models``: the provider's models as the original's documents."""
        try:
            models = await self._handlers.catalog.models()  # cached, as list_models is
        except ProviderError as error:
            return _error(502, str(error))
        return web.json_response(rest_shapes.model_documents(models))

    async def _detail_response(self, user: str, chat_id: str) -> web.Response:
        """The chat with its messages, as the original's document (404 if deleted since the owner check)."""
        detail = await self._store.chat_detail(user, chat_id, DETAIL_MESSAGES)
        if detail is None:
            return _error(404, CHAT_NOT_FOUND)
        return web.json_response(rest_shapes.detail_document(detail))

    async def _owned(self, user: str, chat_id: str) -> ChatSummary | None:
        """The chat if it is ``user``'s; None for anyone else's and for none at all alike."""
        if len(chat_id) > MAX_ID_LENGTH:  # no stored id is longer: a 404 at once
            return None
        return await self._store.chat(user, chat_id)


async def _json_body(request: web.Request) -> object:
    """The body as JSON, or None if it is not JSON (the rename check then says what is missing)."""
    raw = await request.read()  # a body over MAX_BODY raises 413 here (chunked ones too)
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _whole_number(request: web.Request, name: str, default: int, highest: int) -> int:
    """Query parameter ``name``: a whole number from 1 to ``highest``, ``default`` when absent.

    Raises:
        ValueError: it is something else; the message says what is expected.
    """
    value = request.query.get(name)
    if value is None:
        return default
    if not _WHOLE_NUMBER.fullmatch(value) or not 1 <= int(value) <= highest:
        raise ValueError(f"'{name}' must be a whole number from 1 to {highest}")
    return int(value)


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def _too_large() -> web.Response:
    return _error(413, f"the request body is larger than {MAX_BODY} bytes")
