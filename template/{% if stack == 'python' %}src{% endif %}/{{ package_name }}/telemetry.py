"""Prometheus metrics and access logs, recorded once per request by one middleware."""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED_ROUTE = "unmatched"
# nginx's status for "client closed request": not a server error, not a success.
CLIENT_CLOSED_REQUEST = 499
# Set in the scope by the HTTP server when it closed a stalled request (408).
SLOW_CLIENT_KEY = "slipway.slow_client"
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
    """Pure ASGI (no response buffering); reads the route the router stored in the scope.

    Also where a request ends when its client goes away: a hang-up while the
    body arrives, while the database works, or a connection cut at the end of
    the shutdown drain is counted and logged as 499 (client closed request) at
    info, never as a 5xx with a traceback. And HEAD is routed as GET (RFC 9110:
    wherever GET is served); the server sends the headers without the body.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        inner = {**scope, "method": "GET"} if scope["method"] == "HEAD" else scope
        status = 500  # what the client gets if the app raises before responding
        observed = responded = client_gone = False
        watcher: asyncio.Task[None] | None = None
        request_task = asyncio.current_task()

        def observe() -> None:
            nonlocal observed
            if not observed:
                observed = True
                seconds = time.perf_counter() - started
                self.metrics.observe(scope["method"], route_template(inner), status, seconds)

        async def wait_for_hang_up() -> None:
            # Once the body is in (a bodiless request's empty one may still be
            # queued), the server's receive() returns only when the client
            # disconnects or the response is complete.
            nonlocal client_gone
            while (await receive())["type"] != "http.disconnect":
                pass
            if not responded and request_task is not None:
                client_gone = True
                request_task.cancel()  # abandons the database work too

        def watch() -> None:
            nonlocal watcher
            if watcher is None:
                watcher = asyncio.create_task(wait_for_hang_up())

        async def receive_and_watch() -> Message:
            nonlocal client_gone
            message = await receive()
            if message["type"] == "http.disconnect":
                client_gone = True
            elif not message.get("more_body", False):
                watch()
            return message

        async def send_and_observe(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                responded = True
                # Count before the last byte leaves: a client that has its
                # response finds it in /metrics (no race for scrapers or tests).
                observe()
            await send(message)

        if not _has_body(scope):
            watch()
        try:
            await self.app(inner, receive_and_watch, send_and_observe)
        except (Exception, asyncio.CancelledError):
            # Cancelled: by the watcher above, or by the server at the end of
            # the shutdown drain (its connection is closed, so the client is
            # gone either way). Any other failure after a hang-up is a
            # consequence of it (Starlette's ClientDisconnect while reading).
            cancelled = request_task is not None and request_task.cancelling() > 0
            if not (client_gone or cancelled) or responded:
                raise
            status = 408 if scope.get(SLOW_CLIENT_KEY) else CLIENT_CLOSED_REQUEST
            if cancelled and client_gone and request_task is not None:
                request_task.uncancel()
        finally:
            if watcher is not None:
                watcher.cancel()
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


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False
