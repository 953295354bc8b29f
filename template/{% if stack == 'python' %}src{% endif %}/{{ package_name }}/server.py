"""uvicorn with a graceful SIGTERM: unready first, then drain, then exit 0."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import threading
from types import FrameType

import uvicorn

from .deps import Lifecycle

# After the grace period, how long in-flight requests may take to finish.
DRAIN_TIMEOUT_SECONDS = 5
# uvicorn's own drain limit, a backstop behind the cut at DRAIN_TIMEOUT_SECONDS:
# at its limit uvicorn cancels requests with an error log and a traceback each.
UVICORN_DRAIN_BACKSTOP_SECONDS = DRAIN_TIMEOUT_SECONDS + 2
# Longer than the idle timeout of the proxies that pool connections to the
# service (ingress-nginx upstream keep-alive and cloud load balancers: 60 s).
# With uvicorn's 5 s default, a proxy can send a request on a connection the
# service is just closing, and its client gets a 502.
KEEP_ALIVE_SECONDS = 65

log = logging.getLogger(__name__)


class GracefulServer(uvicorn.Server):
    """On SIGTERM, /readyz turns 503 at once while the server keeps serving for
    `grace_seconds` (the load balancer stops routing here), then uvicorn stops
    accepting connections and waits for in-flight requests.

    Ctrl-C (SIGINT, a developer's terminal: no load balancer to drain) and a
    second signal stop at once, through uvicorn's own handling.
    """

    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle, grace_seconds: float) -> None:
        super().__init__(config)
        self.lifecycle = lifecycle
        self.grace_seconds = grace_seconds

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGINT or self.lifecycle.shutting_down:
            self.lifecycle.shutting_down = True
            super().handle_exit(sig, frame)
            return
        self.lifecycle.shutting_down = True
        log.info(
            "shutdown requested: readiness now fails",
            extra={"signal": signal.Signals(sig).name, "grace_seconds": self.grace_seconds},
        )
        # Not super().handle_exit: uvicorn would re-raise the signal after the
        # shutdown, and the process would end "killed by SIGTERM" instead of 0.
        timer = threading.Timer(self.grace_seconds, self._stop_accepting)
        timer.daemon = True
        timer.start()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # When the drain is over, close the connections still open: their
        # requests end as client hang-ups (499, logged at info), and work still
        # waiting on the database is abandoned, not waited for.
        cut = asyncio.get_running_loop().call_later(DRAIN_TIMEOUT_SECONDS, self._cut_connections)
        try:
            await super().shutdown(sockets)
        finally:
            cut.cancel()

    def _cut_connections(self) -> None:
        open_connections = list(self.server_state.connections)
        if open_connections:
            log.info(
                "drain over: closing connections", extra={"connections": len(open_connections)}
            )
        for connection in open_connections:
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.close()

    def _stop_accepting(self) -> None:
        log.info("grace period over: draining in-flight requests")
        self.should_exit = True
