"""``ChatServer``: wires the store, the hub, the provider and the handlers to websockets.

The HTTP side is decided in ``process_request``, before any upgrade:
``/healthz`` answers ``200 ok`` while the process serves (liveness);
``/readyz`` answers ``200`` while the store answers, the link to the other
nodes is up and the node is not stopping, else ``503`` (readiness, see
``health.py``); ``/version`` names the version and build. ``/ws`` answers
``503`` while the node has lost its link to the other nodes, ``401`` without
an acceptable token, and never becomes a WebSocket then; other paths get ``404``.

With ``metrics_port`` set, Prometheus' ``/metrics`` listens on an address of
its own (``metrics.py``).

With ``api_port`` set, the REST API of the seed's browser page (``rest.py``)
listens beside it, on a port of its own.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import http
import json
import logging
import time
from collections.abc import Awaitable, Mapping
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from mfu_tui.protocol import MAX_ID_LENGTH, ChatUpdated, CloseCode, Complete, encode
from mfu_tui.redaction import redact_password, redacting_logger
from mfu_tui.server import logs
from mfu_tui.server.auth import AuthError, TokenCheck, token_from_request
from mfu_tui.server.client_address import client_address, parse_networks
from mfu_tui.server.config import ServerConfig, cannot_listen
from mfu_tui.server.connection import TRANSPORT_SLACK, BoundedWebSocket, Connection, PendingHandshakes, UserReplies
from mfu_tui.server.deleted_users import REASON, DeletedUsers
from mfu_tui.server.generation import Generations
from mfu_tui.server.handlers import Handlers
from mfu_tui.server.health import Readiness
from mfu_tui.server.hub import Hub, LocalHub
from mfu_tui.server.jwks import ProviderKeys
from mfu_tui.server.logs import AcceptErrorLog
from mfu_tui.server.metrics import MetricsListener, ServerMetrics
from mfu_tui.server.providers import Provider, ProviderError, make_provider
from mfu_tui.server.providers.catalog import ModelCatalog
from mfu_tui.server.ratelimit import RateLimiter
from mfu_tui.server.rest import RestApi
from mfu_tui.server.retention import Retention
from mfu_tui.server.storage_status import StorageStatus
from mfu_tui.server.store import Interrupted, Store, make_store
from mfu_tui.server.unlinked_nodes import UnlinkedNodes
from mfu_tui.server.version import build_info

log = logging.getLogger(__name__)

_Listener = TypeVar("_Listener")

WS_PATH = "/ws"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
VERSION_PATH = "/version"
#: The probes' paths: answered 200, they log nothing (load balancers ask every few seconds).
PROBE_PATHS = frozenset({HEALTH_PATH, READY_PATH})
#: Characters of a path kept in its line: a request line may be kilobytes long.
LOGGED_PATH_CHARS = 200
#: Whole inbound frames a connection may have waiting to be handled.
INBOUND_FRAMES_QUEUED = 2
#: Connections the kernel may hold before we accept them (capped by net.core.somaxconn).
LISTEN_BACKLOG = 4096
#: Seconds between lease beats while the database is out of reach: its return is noticed within
#: this (and told to clients, whose refused messages then go), not a third of a lease later.
OUTAGE_BEAT = 0.5


#: Answers at the WebSocket's door that log their own line (``connection_refused``, saying why).
_REFUSALS = frozenset({http.HTTPStatus.UNAUTHORIZED, http.HTTPStatus.TOO_MANY_REQUESTS})


def freeze_what_lives() -> None:
    """Leave what is alive now out of the collector's full passes: a server process calls it once started.

    What a started server holds (modules, its configuration, the store) lives as long as the
    process. Left in, each full pass walked all of it again: 33 ms with every answer's chunks
    waiting, at 200 streams (``bench/floor.py``; `docs/benchmarks.md`). Not for a server in a
    process that goes on to other things (the tests'): what is frozen is never collected.
    """
    gc.freeze()


class ChatServer:
    """The mfu-chat server, usable in-process (tests, the app's embedded mode) or from the CLI.

    Example::

        server = ChatServer(ServerConfig(secret=..., port=0))
        await server.start()
        print(server.url)
        await server.stop()
    """

    def __init__(self, config: ServerConfig, *, provider: Provider | None = None) -> None:
        self.config = config
        #: This node's name among several (recorded on the answers it generates).
        self.node_id = config.node_name()
        self.store: Store = make_store(
            config.database(),
            node_id=self.node_id,
            lease=config.lease,
            workers_dir=None if config.siblings is None else config.siblings.directory,
        )
        self.provider = provider or make_provider(config)
        self.hub = _make_hub(config)
        #: This node's Prometheus figures (exposed with ``metrics_port``; counted in any case).
        self.metrics = ServerMetrics(self.node_id)
        #: The provider's models, cached (``list_models``, the REST API, a message's model, the default one).
        self.catalog = ModelCatalog(self.provider)
        self.generations = Generations(
            self.store,
            self.hub,
            self.provider,
            self.catalog,
            max_answer_chars=config.max_answer_chars,
            answers_per_user=config.answers_per_user,
            metrics=self.metrics,
        )
        #: Users an operator deleted: their connections here are closed.
        self.deleted_users = DeletedUsers(self.store, self._close_user)
        #: Without a broker: the other nodes seen on the database, whose answers never reach this node's clients.
        # Workers without a broker are linked to each other (PeerHub): they are not unlinked nodes.
        self.unlinked = UnlinkedNodes(self.store) if config.broker is None and config.siblings is None else None
        #: What ``/readyz`` answers; ``draining`` is set as the node stops.
        self.readiness = Readiness(
            self.store,
            self.hub,
            on_store_error=self.metrics.store_errors.labels("readiness_probe").inc,
            broker_state=self._broker_state,
        )
        self._trusted_proxies = parse_networks(config.trusted_proxies)
        self.hub.on_cancel = self.generations.cancel_requested
        self.hub.on_link_lost = self._link_lost
        self.handlers = Handlers(
            self.store,
            self.hub,
            self.generations,
            self.catalog,
            RateLimiter(config.messages_per_minute, config.message_burst),
            config.replay_window,
            storage_quota=config.storage_quota,
            max_attachment_bytes=config.max_attachment_bytes,
        )
        #: How both doors check tokens (with the identity provider's keys when a JWKS URL is set).
        self.token_check = TokenCheck(
            config.token_keys,
            config.token_leeway,
            None if config.jwt_jwks_url is None else ProviderKeys(config.jwt_jwks_url),
        )
        #: Live connections (for stats, tests and shutdown).
        self.connections: set[Connection] = set()
        #: Tells them whether the store answers (``server_status``), from ``start`` on.
        self.storage_status = StorageStatus(self.store.outages, self.connections)
        #: Open connections by user, held to ``connections_per_user``.
        self._per_user: collections.Counter[str] = collections.Counter()
        #: Reply bytes waiting across each connected user's connections, held to ``reply_bytes_per_user``.
        self._replies: dict[str, UserReplies] = {}
        #: Connections in their opening handshake, held to ``max_handshakes``.
        self.pending_handshakes = PendingHandshakes(config.max_handshakes)
        self._server: Server | None = None
        #: The loop's exception handler while listening (``start`` to ``stop``).
        self._accept_errors: AcceptErrorLog | None = None
        self._background: list[asyncio.Task[None]] = []
        #: Set by ``end_drain``: a stop waits no longer for the running answers.
        self._drain_ended = asyncio.Event()
        self.port: int = config.port
        self._rest = (
            None
            if config.api_port is None
            else RestApi(
                store=self.store,
                hub=self.hub,
                handlers=self.handlers,
                token_check=self.token_check,
                cors_origins=config.cors_origins,
            )
        )
        #: The REST API's port once started (``None``: no REST listener).
        self.api_port: int | None = None
        self._metrics_listener = None if config.metrics_port is None else MetricsListener(self.metrics)
        #: The metrics listener's port once started (``None``: no metrics listener).
        self.metrics_port: int | None = None
        self.metrics.watch(
            connections=lambda: len(self.connections),
            answers_active=lambda: len(self.generations.running()),
            handshakes=lambda: len(self.pending_handshakes),
            send_queue_bytes=lambda: sum(connection.queued_bytes for connection in self.connections),
            broker_queue_frames=lambda: self.hub.backlog,
            ready=lambda: float(self.readiness.last.ready),
        )

    @property
    def url(self) -> str:
        """``ws://HOST:PORT/ws`` of the running server."""
        host = self.config.host
        host = f"[{host}]" if ":" in host else host
        return f"ws://{host}:{self.port}{WS_PATH}"

    async def start(self) -> None:
        """Join the other nodes, bind the listeners, open the store (ending replies a crash interrupted), then serve."""
        if self.token_check.provider is not None:
            await self.token_check.provider.start()  # before the first connection, which may need its keys
        await self.hub.start()
        try:
            # Bound now, serving once the store is open: a taken port or a wrong host stops the start
            # before the database is made or migrated, and no client comes in before the store is ready.
            await self._bind()
        except BaseException:
            await self.hub.stop()
            raise
        try:
            interrupted = await self.store.open()
        except BaseException:
            await self._unbind()
            await self.hub.stop()
            raise
        if interrupted:
            log.warning("%d answer(s) were interrupted by the previous stop; marked as such", len(interrupted))
            self._announce(interrupted)
        await self.deleted_users.check()  # from the last deletion on
        if self.unlinked is not None:
            await self.unlinked.check()
        assert self._server is not None
        await self._server.start_serving()
        self.port = self._server.sockets[0].getsockname()[1]
        if self._rest is not None:
            await self._rest.serve()
            log.info("REST API listening on port %d", self.api_port)
        if self._metrics_listener is not None:
            await self._metrics_listener.serve()
            log.info("metrics listening on http://%s:%d/metrics", self.config.metrics_host, self.metrics_port)
        self.storage_status.start()
        loop = asyncio.get_running_loop()
        self._accept_errors = AcceptErrorLog(loop.get_exception_handler())
        loop.set_exception_handler(self._accept_errors)
        self._background = [loop.create_task(self._prune_forever()), loop.create_task(self._lease_forever())]
        if self.provider.upstream is not None and self.config.speaks_for_the_workers:
            self._background.append(loop.create_task(self._list_models_once()))
        if self.config.max_chat_age_days is not None:
            retention = Retention(
                self.store,
                lambda owner, chat: self.handlers.announce(owner, chat, deleted=True),
                self.config.max_chat_age_days,
                self.config.retention_interval,
                self.metrics.store_errors.labels("retention").inc,
            )
            self._background.append(loop.create_task(retention.run_forever()))
        broker = self.config.broker
        logs.event(
            log,
            "start",
            f"listening on {self.url} as node {self.node_id}",
            node=self.node_id,
            url=self.url,
            store=redact_password(str(self.config.database())),
            broker=redact_password(broker) if broker else self._broker_state(),
            version=build_info().version,
            build=build_info().build,
        )

    async def _list_models_once(self) -> None:
        """List the model server's models as the catalog's first fetch: the log says at once if it answers.

        In the background, and whatever it finds the node serves: the model
        server may come up later. A failure is logged by the provider, naming
        the model server and why; the users' first ``list_models`` shares this
        fetch, or its result, instead of asking again. Of ``--workers``, only
        worker 0 lists: the log says it once per start, not once per worker
        (the others fetch at their users' first ``list_models``).
        """
        try:
            models = await self.catalog.models()
        except ProviderError:
            return
        listed = f"{len(models)} model" if len(models) == 1 else f"{len(models)} models"
        log.info("model server %s: %s listed", self.provider.upstream, listed)

    def _broker_state(self) -> str:
        """How this node reaches the others, for ``/readyz`` (while linked) and the start event (without a broker)."""
        if self.config.broker is not None:
            return "ok"
        if self.config.siblings is not None:
            return f"none: the {self.config.siblings.count} workers linked over Unix sockets"
        warning = self.unlinked.warning() if self.unlinked is not None else None
        return warning or "none (a single node)"

    async def _bind(self) -> None:
        """Bind the WebSocket listener, and the REST and metrics ones if asked for; none serves yet.

        Raises:
            CannotListen: An address is not this machine's, or a port is taken (what was bound is closed).
        """
        host = ("--host", self.config.host)
        try:
            self._server = await _listening(self._serve_websockets(), host, ("--port", self.config.port))
            if self._rest is not None:
                assert self.config.api_port is not None
                # --workers: every worker listens on the port, the kernel spreads the requests.
                bound = self._rest.bind(
                    self.config.host, self.config.api_port, reuse_port=self.config.siblings is not None
                )
                self.api_port = await _listening(bound, host, ("--api-port", self.config.api_port))
            if self._metrics_listener is not None:
                assert self.config.metrics_port is not None
                self.metrics_port = await _listening(
                    self._metrics_listener.bind(self.config.metrics_host, self.config.metrics_port),
                    ("--metrics-host", self.config.metrics_host),
                    ("--metrics-port", self.config.metrics_port),
                )
        except BaseException:
            await self._unbind()
            raise

    def _serve_websockets(self) -> Awaitable[Server]:
        return serve(
            self._serve_connection,
            self.config.host,
            self.config.port,
            process_request=self._check_request,
            max_size=self.config.max_frame_bytes,
            # Frames read ahead of the handler: with 1 MiB frames allowed, websockets'
            # default of 16 would let one connection make us hold 16 MiB of input.
            max_queue=INBOUND_FRAMES_QUEUED,
            ping_interval=self.config.ping_interval,
            ping_timeout=self.config.ping_timeout,
            close_timeout=self.config.close_timeout,
            # Unauthenticated peers cost a socket and a task each until this: keep it short.
            open_timeout=self.config.handshake_timeout,
            # Compression costs memory per connection and CPU per frame; chunks are small.
            compression=None,
            logger=logs.quiet_websockets(redacting_logger("websockets.server")),
            create_connection=self._bounded_websocket(),
            # asyncio's default of 100 overflows while a burst of connections is accepted
            # (1,100 at once were seen): a new user's SYN is then dropped and retried 1 s later.
            backlog=LISTEN_BACKLOG,
            # --workers: every worker listens on the port, the kernel spreads the connections.
            reuse_port=self.config.siblings is not None,
            start_serving=False,
        )

    def _bounded_websocket(self) -> type[BoundedWebSocket]:
        """websockets' connection class, with this server's bounds on unsent bytes and handshakes."""
        limit = self.config.send_queue_bytes + TRANSPORT_SLACK
        settings = {"transport_limit": limit, "pending_handshakes": self.pending_handshakes}
        return type("BoundedWebSocket", (BoundedWebSocket,), settings)

    async def _unbind(self) -> None:
        """Close the listeners bound but never served (a failed start): no client to tell, nothing to log."""
        if self._server is not None:
            self._server.server.close()
            await self._server.server.wait_closed()
            self._server = None
        if self._rest is not None:
            await self._rest.close()
        if self._metrics_listener is not None:
            await self._metrics_listener.close()
            self.metrics_port = None

    async def _stop_listening(self) -> None:
        """Close the WebSocket listener, if it was opened (a failed start)."""
        if self._server is not None:
            clients = len(self._server.connections)
            # 4012: the clients reconnect at once (to another node) and resume there.
            self._server.close(code=CloseCode.RESTARTING, reason="server restarting: reconnect now")
            await self._server.wait_closed()
            self._server = None
            logs.event(
                log,
                "stopped_listening",
                "stopped listening, clients told to reconnect",
                node=self.node_id,
                clients=clients,
            )

    async def stop(self) -> None:
        """Stop accepting, move the clients (4012), let answers run up to the drain timeout, then end the rest.

        The clients reconnect at once (to another node behind the load
        balancer) and resume the answers still running here from the store;
        those that have not ended after ``config.drain_timeout`` seconds are
        stored as interrupted. Then the store is flushed and closed.
        """
        if self._server is None:
            return
        self.readiness.draining = True
        self.hub.node_stopping = True
        if self._rest is not None:  # first: no request may change a chat while the rest stops
            await self._rest.close()
        # Stops listening, closes every client with 4012 and waits for their
        # handlers: after this no frame can start a new generation.
        await self._stop_listening()
        running = len(self.generations.running())
        if running and self.config.drain_timeout > 0:
            logs.event(
                log,
                "draining",
                "draining: waiting for the running answers",
                node=self.node_id,
                answers=running,
                drain_timeout=logs.as_given(self.config.drain_timeout),
            )
            await self._drain()
            left = len(self.generations.running())
            logs.event(
                log,
                "drained",
                "drained: answers not ended by now end as interrupted",
                node=self.node_id,
                ended=running - left,
                interrupted=left,
            )
        # A restart is not a cancel: the replies are stored as interrupted and
        # clients that reconnect can resume them.
        await self.generations.stop_all()
        for task in self._background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._background = []
        self.storage_status.stop()
        await self.store.close()
        await self.hub.stop()  # after the generations: their end frames reach the other nodes
        await self.provider.aclose()
        if self.token_check.provider is not None:
            await self.token_check.provider.close()
        if self._metrics_listener is not None:  # last: a scrape sees the stop to its end
            await self._metrics_listener.close()
            self.metrics_port = None
        if self._accept_errors is not None:
            asyncio.get_running_loop().set_exception_handler(self._accept_errors.previous)
            self._accept_errors = None
        logs.event(log, "stop", "stopped", node=self.node_id)

    def end_drain(self) -> None:
        """Wait no longer for the running answers: a stop, draining or to come, ends them at once."""
        self._drain_ended.set()

    async def _drain(self) -> None:
        """Wait for the running answers to end, up to the drain timeout or until ``end_drain``."""
        finished = asyncio.ensure_future(self.generations.finish(self.config.drain_timeout))
        ended = asyncio.ensure_future(self._drain_ended.wait())
        await asyncio.wait({finished, ended}, return_when=asyncio.FIRST_COMPLETED)
        if ended.done():
            logs.event(log, "drain_ended", "the drain was ended early", node=self.node_id)
        for waiter in (finished, ended):
            waiter.cancel()  # the answers go on: only the wait for them ends
        await asyncio.gather(finished, ended, return_exceptions=True)

    async def _check_request(self, websocket: ServerConnection, request: Request) -> Response | None:
        """Answer ``request`` over HTTP (``None``: it becomes a WebSocket), in one line unless a probe's 200.

        The line names the path, without its query (a token may be there),
        and the client, as ``connection_open`` does; websockets' own ``HTTP
        response sent`` named neither (``logs.REPEATED``). Probes answered
        200 come every few seconds from every load balancer: they log nothing.
        A connection refused at the door (401, 429) is its own line,
        ``connection_refused``, which says why.
        """
        path = urlsplit(request.path).path
        client = client_address(
            websocket.remote_address[0] if websocket.remote_address else None,
            request.headers.get_all("X-Forwarded-For"),
            self._trusted_proxies,
        )
        response = await self._answer_request(websocket, request, client)
        if response is None:
            return None
        probe = response.status_code == http.HTTPStatus.OK and path in PROBE_PATHS
        refused = path == WS_PATH and response.status_code in _REFUSALS
        if not probe and not refused:
            logs.event(
                log,
                "http_response",
                "answered over HTTP",
                status=response.status_code,
                path=path[:LOGGED_PATH_CHARS],
                client=client,
                node=self.node_id,
            )
        return response

    async def _answer_request(self, websocket: ServerConnection, request: Request, client: str) -> Response | None:
        target = urlsplit(request.path)
        if target.path == HEALTH_PATH:
            return websocket.respond(http.HTTPStatus.OK, "ok\n")
        if target.path == READY_PATH:
            return await self._ready(websocket)  # it may ask the store
        if target.path == VERSION_PATH:
            build = build_info()
            answer = {"version": build.version, "build": build.build, "python": build.python, "node": self.node_id}
            return _json_response(websocket, http.HTTPStatus.OK, answer)
        if target.path != WS_PATH:
            return websocket.respond(http.HTTPStatus.NOT_FOUND, "not found\n")
        if not self.hub.linked:  # the load balancer tries another node (proxy_next_upstream http_503)
            return websocket.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "lost the link to the other nodes\n")
        try:
            token = token_from_request(request.path, request.headers)
            if token is None:
                return self._refuse(websocket, client, "missing token")
            identity = await self.token_check.identify(token)
        except AuthError as error:
            return self._refuse(websocket, client, str(error))
        assert isinstance(websocket, BoundedWebSocket)  # our create_connection
        websocket.identity = identity
        websocket.client_address = client
        if self._per_user[identity.user] >= self.config.connections_per_user:
            why = self._refuse_too_many(websocket, self._per_user[identity.user])
            return websocket.respond(http.HTTPStatus.TOO_MANY_REQUESTS, why)
        chats = parse_qs(target.query).get("chat")
        chat = chats[0] if chats else None
        websocket.subscribe_to = chat if chat and len(chat) <= MAX_ID_LENGTH else None
        return None

    async def _ready(self, websocket: ServerConnection) -> Response:
        report = await self.readiness.report()
        status = http.HTTPStatus.OK if report.ready else http.HTTPStatus.SERVICE_UNAVAILABLE
        return _json_response(websocket, status, report.as_json())

    def _refuse(self, websocket: ServerConnection, client: str, why: str) -> Response:
        logs.event(
            log,
            "connection_refused",
            "refused a connection",
            status=http.HTTPStatus.UNAUTHORIZED.value,
            why=why,
            path=WS_PATH,
            client=client,
            node=self.node_id,
        )
        response = websocket.respond(http.HTTPStatus.UNAUTHORIZED, f"unauthorized: {why}\n")
        response.headers["WWW-Authenticate"] = 'Bearer realm="mfu-chat"'
        return response

    def _refuse_too_many(self, websocket: BoundedWebSocket, open_already: int) -> str:
        """Log that ``websocket``'s user has ``open_already`` connections, too many for one more; why, for the user.

        Both refusals log here: the door's (HTTP 429) and that of handshakes
        which passed the door together (closed with 1013 once counted).
        """
        user = websocket.identity.user
        logs.event(
            log,
            "connection_refused",
            "refused a connection",
            why="too many connections",
            user=user,
            client=websocket.client_address,
            node=self.node_id,
            connections=open_already,
        )
        return f"too many connections: {user} has {self.config.connections_per_user} open already\n"

    async def _serve_connection(self, websocket: ServerConnection) -> None:
        assert isinstance(websocket, BoundedWebSocket)  # our create_connection
        identity = websocket.identity
        # Counted here, where the connection is certain to end through ``finally``;
        # the check at the door answers 429 but lets simultaneous handshakes through.
        self._per_user[identity.user] += 1
        replies = self._replies.get(identity.user)
        if replies is None:
            replies = self._replies[identity.user] = UserReplies(self.config.reply_bytes_per_user)
        try:
            if self._per_user[identity.user] > self.config.connections_per_user:
                why = self._refuse_too_many(websocket, self._per_user[identity.user] - 1)  # counted: not this one
                await websocket.close(CloseCode.TRY_AGAIN_LATER, why.strip()[:120])
                return
            # Served here rather than in a coroutine of its own: one frame fewer per connection.
            connection = Connection(
                websocket,
                identity,
                self.handlers,
                self.hub,
                send_queue_bytes=self.config.send_queue_bytes,
                token_leeway=self.config.token_leeway,
                replies=replies,
                metrics=self.metrics,
                outages=self.store.outages,
            )
            self.connections.add(connection)
            self.storage_status.greet(connection)  # among its first frames, before it reads any
            self.metrics.connections_opened.inc()
            opened = time.monotonic()
            logs.event(
                log,
                "connection_open",
                "connection opened",
                user=identity.user,
                client=websocket.client_address,
                node=self.node_id,
                connections=len(self.connections),
            )
            try:
                await connection.run(websocket.subscribe_to)
            finally:
                self.connections.discard(connection)
                self.metrics.connections_closed.inc()
                logs.event(
                    log,
                    "connection_close",
                    "connection closed",
                    user=identity.user,
                    client=websocket.client_address,
                    node=self.node_id,
                    code=websocket.close_code,
                    seconds=round(time.monotonic() - opened, 3),
                    connections=len(self.connections),
                )
        finally:
            self._per_user[identity.user] -= 1
            if not self._per_user[identity.user]:
                del self._per_user[identity.user]
                del self._replies[identity.user]

    def user_replies(self, user: str) -> UserReplies | None:
        """The reply bytes waiting across ``user``'s connections (None: not connected), for stats and tests."""
        return self._replies.get(user)

    async def _lease_forever(self) -> None:
        """Renew this node's leases; end the answers of nodes that stopped renewing theirs.

        On the same beat: close the connections of users an operator deleted, and look
        for other nodes on the database while this one has no broker.
        """
        every = self.config.lease / 3
        while True:
            await asyncio.sleep(min(every, OUTAGE_BEAT) if self.store.outages.out else every)
            try:
                await self.store.renew_leases()
                self._announce(await self.store.reap_expired())
            except Exception as error:
                self.metrics.store_errors.labels("leases").inc()
                if not self.store.outages.failed("lease beats failed", error):
                    log.exception("renewing or reaping leases failed")
            await self.deleted_users.check()
            if self.unlinked is not None:  # a node started after this one is seen here too
                await self.unlinked.check()

    def _announce(self, interrupted: list[Interrupted]) -> None:
        """Tell whoever follows them, on any node, that these answers ended with their node."""
        for reply in interrupted:
            log.warning("answer %s was interrupted with its node; ended at chunk %d", reply.message_id, reply.seq)
            end = Complete(
                chat_id=reply.chat.id, message_id=reply.message_id, seq=reply.seq, finish_reason="interrupted"
            )
            self.hub.publish_chat(reply.chat.id, encode(end))
            self.hub.publish_user(reply.user, encode(ChatUpdated(chat=reply.chat)))

    def _close_user(self, user: str) -> int:
        """Close ``user``'s connections with 4410 and stop their answers here (their data is gone); how many."""
        closing = [connection for connection in self.connections if connection.user == user]
        for connection in closing:
            connection.close(CloseCode.ACCOUNT_DELETED, REASON)
        for generation in self.generations.running():
            if generation.user == user:
                self.generations.cancel_requested(user, generation.chat_id, generation.message_id)
        return len(closing)

    def _link_lost(self) -> None:
        """The other nodes are out of reach: send every client away to reconnect (and resume from the store)."""
        self.metrics.broker_errors.inc()
        for connection in list(self.connections):
            connection.close(CloseCode.TRY_AGAIN_LATER, "lost the link to the other server nodes")

    async def _prune_forever(self) -> None:
        """Drop chunks once their reply is older than the replay window (its text stays)."""
        every = min(max(self.config.replay_window / 2, 1.0), 300.0)
        while True:
            await asyncio.sleep(every)
            try:
                await self.store.prune_chunks(time.time() - self.config.replay_window)
            except Exception as error:
                self.metrics.store_errors.labels("prune").inc()
                if not self.store.outages.failed("chunk prunings failed", error):
                    log.exception("pruning chunks failed")


def _json_response(websocket: ServerConnection, status: http.HTTPStatus, body: Mapping[str, object]) -> Response:
    response = websocket.respond(status, json.dumps(body) + "\n")
    del response.headers["Content-Type"]
    response.headers["Content-Type"] = "application/json"
    return response


def _make_hub(config: ServerConfig) -> Hub:
    """The in-process hub; with ``--broker`` the Redis one that links the nodes; for a worker, its siblings'."""
    if config.broker is not None:
        from mfu_tui.server.redis_hub import RedisHub

        return RedisHub(config.broker, heartbeat=config.broker_heartbeat)
    if config.siblings is not None:
        from mfu_tui.server.peer_hub import PeerHub

        return PeerHub(config.siblings)
    return LocalHub()


async def _listening(opening: Awaitable[_Listener], host: tuple[str, str], port: tuple[str, int]) -> _Listener:
    """What ``opening`` opens; ``host`` and ``port`` are its flags and values, named if it cannot.

    Raises:
        CannotListen: The host is not an address of this machine, the port is taken...
    """
    try:
        return await opening
    except OSError as error:
        raise cannot_listen(error, host, port) from None
