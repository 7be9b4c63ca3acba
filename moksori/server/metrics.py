"""Prometheus metrics, one registry per app (so several apps in one process stay separate).

Each uvicorn worker process keeps its own numbers; scrape every worker, or run one worker per
container behind the load balancer (see docs/server.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self, queue_depth: Callable[[], float], in_progress: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "moksori_requests", "HTTP requests by route, method and status", ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "moksori_request_duration_seconds", "Time from request to the last response byte", ["route"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.errors = Counter("moksori_errors", "Error responses by error code", ["code"], registry=self.registry)
        self.audio_seconds = Counter(
            "moksori_audio_seconds", "Seconds of audio sent, by voice", ["voice"], registry=self.registry
        )
        self.synthesis_seconds = Histogram(
            "moksori_synthesis_duration_seconds", "Worker time per synthesis job", ["voice"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.cache = Counter("moksori_cache", "Audio cache lookups by result", ["result"], registry=self.registry)
        self.alignment_failures = Counter(
            "moksori_alignment_failures", "Sentences whose attention alignment failed (after any retry), by voice",
            ["voice"], registry=self.registry,
        )
        queue_gauge = Gauge("moksori_queue_depth", "Synthesis jobs waiting for a worker", registry=self.registry)
        queue_gauge.set_function(queue_depth)
        busy_gauge = Gauge("moksori_synthesis_in_progress", "Synthesis jobs running", registry=self.registry)
        busy_gauge.set_function(in_progress)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts every response by route template (not raw path: bounded label values) and times
    it until the last body byte, so streamed responses are timed whole."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(label, scope.get("method", ""), str(status)).inc()
            self.metrics.latency.labels(label).observe(time.perf_counter() - started)
