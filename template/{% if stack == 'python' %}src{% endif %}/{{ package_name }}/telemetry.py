"""Prometheus metrics and access logs, recorded once per request by one middleware."""

from __future__ import annotations

import logging
import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED_ROUTE = "unmatched"
# Clients can send any token as a method; label only the standard ones so a
# scanner cannot create unbounded series.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

access_log = logging.getLogger("access")


class Metrics:
    """A registry per app instance, so tests can build many apps in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.requests = Counter(
            "http_requests",
            "HTTP requests handled, by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time from request start to the end of the response, by route template.",
            ["method", "route"],
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in KNOWN_METHODS else "other"
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(method, route).observe(seconds)

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The body and content type the scraper asked for (text format by default)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


def route_template(scope: Scope) -> str:
    """The matched route's template (`/items/{id}`), never the raw path: bounded cardinality."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class TelemetryMiddleware:
    """Pure ASGI (no response buffering); reads the route the router stored in the scope."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before responding
        observed = False

        def observe() -> None:
            nonlocal observed
            if not observed:
                observed = True
                seconds = time.perf_counter() - started
                self.metrics.observe(scope["method"], route_template(scope), status, seconds)

        async def send_and_observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                # Count before the last byte leaves: a client that has its
                # response finds it in /metrics (no race for scrapers or tests).
                observe()
            await send(message)

        try:
            await self.app(scope, receive, send_and_observe)
        finally:
            observe()  # if the app failed before its last body message
            access_log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                },
            )
