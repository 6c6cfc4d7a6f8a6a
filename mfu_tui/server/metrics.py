"""Prometheus metrics of one node, and the listener that exposes them (``--metrics-port``).

Every ``ChatServer`` owns a ``ServerMetrics`` with a registry of its own, so
several servers in one process (tests, the benches) never mix their counts.
The hot paths only increment: gauges (connections, running answers, queue
depths) are read from the server when Prometheus scrapes, so they cost
nothing between scrapes. The chunk path, the hottest (about 40 us of CPU a
chunk in all), adds to a plain integer, read at scrape time too, and times
one chunk in ``RELAY_SAMPLE`` for the relay histogram: a Counter's lock and
a histogram's buckets on every chunk would cost it about 5%.

The exposition is ``prometheus-client``'s own (``generate_latest``); the
listener is a small aiohttp application on an address of its own, loopback
by default, because the figures name no user but still tell who is busy.
The metric names are listed for dashboards in docs/deploy.md (Observing).
"""

from __future__ import annotations

import logging
import typing
from collections.abc import Callable

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from mfu_tui.protocol import ErrorCode
from mfu_tui.redaction import redacting_logger
from mfu_tui.server.http_listener import HttpListener
from mfu_tui.server.providers.base import UpstreamErrorKind
from mfu_tui.server.version import build_info

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"

#: The ``operation`` label of ``mfu_store_errors``: where the server saw the store fail.
STORE_OPERATIONS = ("append_chunk", "finish_message", "leases", "prune", "readiness_probe", "retention")

#: The ``finish_reason`` label of ``mfu_answers``: how an answer ended (``StoredMessage.finish_reason``).
FINISH_REASONS = ("stop", "length", "cancelled", "error", "interrupted", "store_failed")

#: One chunk in this many has its store-to-send time measured (the first of each answer among them).
RELAY_SAMPLE = 8

#: Store-to-send of one chunk: the commit it waits for dominates (milliseconds at most when healthy).
RELAY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: Request upstream to the first piece of text: a local model's queue, a remote model's network.
FIRST_TOKEN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
#: Length of a whole answer.
ANSWER_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0)


class ServerMetrics:
    """The counters, histograms and gauges of one node.

    Args:
        node: This node's id, a label of the connection figures and of ``mfu_build_info``.
    """

    def __init__(self, node: str) -> None:
        self.node = node
        self.registry = CollectorRegistry()
        registry = self.registry
        # The process's own figures (process_*: CPU, memory, open files and their limit) and Python's
        # (python_gc_*), which the default registry has and a registry of our own must be given.
        ProcessCollector(registry=registry)
        GCCollector(registry=registry)
        build = build_info()
        info = Gauge(
            "mfu_build_info",
            "Always 1: the version and build of this node.",
            ["version", "build", "node"],
            registry=registry,
        )
        info.labels(build.version, build.build, node).set(1)
        self.connections_opened = Counter(
            "mfu_connections_opened", "WebSocket connections accepted (authenticated).", ["node"], registry=registry
        ).labels(node)
        self.connections_closed = Counter(
            "mfu_connections_closed", "WebSocket connections ended.", ["node"], registry=registry
        ).labels(node)
        #: Chunks stored and sent since the start (``mfu_chunks_total``): added to on the hot path, read at scrape.
        self.chunks_sent = 0
        registry.register(_ChunksCollector(self))
        self.relay_seconds = Histogram(
            "mfu_relay_seconds",
            f"From a chunk handed to the store to its frame handed to the subscribers (store-to-send), "
            f"one chunk in {RELAY_SAMPLE}.",
            buckets=RELAY_BUCKETS,
            registry=registry,
        )
        self.first_token_seconds = Histogram(
            "mfu_first_token_seconds",
            "From the request upstream to the first piece of text of an answer.",
            buckets=FIRST_TOKEN_BUCKETS,
            registry=registry,
        )
        self.answer_seconds = Histogram(
            "mfu_answer_seconds",
            "Length of an answer, request upstream to its end.",
            buckets=ANSWER_BUCKETS,
            registry=registry,
        )
        self.answers = Counter("mfu_answers", "Answers ended, by finish reason.", ["finish_reason"], registry=registry)
        self.upstream_errors = Counter(
            "mfu_upstream_errors", "Model server failures, by kind.", ["kind"], registry=registry
        )
        self.store_errors = Counter(
            "mfu_store_errors", "Store operations that failed, by operation.", ["operation"], registry=registry
        )
        self.broker_errors = Counter(
            "mfu_broker_errors", "Losses of the link to the broker (Redis).", registry=registry
        )
        self.frames_refused = Counter(
            "mfu_frames_refused", "Client frames answered with an error, by error code.", ["code"], registry=registry
        )
        self._connections = Gauge("mfu_connections", "Open WebSocket connections.", ["node"], registry=registry)
        self._answers_active = Gauge("mfu_answers_active", "Answers generating on this node.", registry=registry)
        self._handshakes = Gauge("mfu_handshakes_pending", "Connections in their opening handshake.", registry=registry)
        self._send_queue = Gauge(
            "mfu_send_queue_bytes", "Bytes queued to be sent, across all connections.", registry=registry
        )
        self._broker_queue = Gauge(
            "mfu_broker_queue_frames", "Frames waiting to be published to the broker.", registry=registry
        )
        self._ready = Gauge("mfu_ready", "1 while /readyz answers 200 (store and broker reachable).", registry=registry)
        # Every known label value from the start, at 0: a dashboard's rate() then has a series before the first event.
        for kind in typing.get_args(UpstreamErrorKind):
            self.upstream_errors.labels(kind)
        for code in ErrorCode:
            self.frames_refused.labels(code.value)
        for operation in STORE_OPERATIONS:
            self.store_errors.labels(operation)
        for reason in FINISH_REASONS:
            self.answers.labels(reason)

    def watch(
        self,
        *,
        connections: Callable[[], float],
        answers_active: Callable[[], float],
        handshakes: Callable[[], float],
        send_queue_bytes: Callable[[], float],
        broker_queue_frames: Callable[[], float],
        ready: Callable[[], float],
    ) -> None:
        """Read these gauges from the server at each scrape."""
        self._connections.labels(self.node).set_function(connections)
        self._answers_active.set_function(answers_active)
        self._handshakes.set_function(handshakes)
        self._send_queue.set_function(send_queue_bytes)
        self._broker_queue.set_function(broker_queue_frames)
        self._ready.set_function(ready)

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)


class _ChunksCollector(Collector):
    """``mfu_chunks_total`` from ``ServerMetrics.chunks_sent``, read when Prometheus scrapes."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> list[CounterMetricFamily]:
        return [
            CounterMetricFamily(
                "mfu_chunks", "Chunks stored and sent (rate(): chunks a second).", value=self._metrics.chunks_sent
            )
        ]


class MetricsListener(HttpListener):
    """``GET /metrics`` on an address of its own (``--metrics-host``, ``--metrics-port``)."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics
        app = web.Application()
        app.router.add_get(METRICS_PATH, self._scrape)
        super().__init__(app, access_log=redacting_logger("aiohttp.access"))

    async def _scrape(self, request: web.Request) -> web.Response:
        return web.Response(body=self._metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})
