"""`python -m <package>`: read the environment, log JSON, serve until SIGTERM."""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import NoReturn

import uvicorn
from pydantic import ValidationError

from .app import create_app
from .deps import Lifecycle
from .http_protocol import TimedHttpToolsProtocol
from .logs import configure_logging
from .server import KEEP_ALIVE_SECONDS, UVICORN_DRAIN_BACKSTOP_SECONDS, GracefulServer
from .settings import Settings, describe_errors

EX_CONFIG = 78  # sysexits.h: configuration error
# How long exit waits for worker threads that are finishing on their own.
THREAD_EXIT_WAIT_SECONDS = 1.0

log = logging.getLogger(__package__ or __name__)


def main() -> int:
    configure_logging("info")
    try:
        settings = Settings()
    except ValidationError as exc:
        # One readable line naming each bad variable; a traceback would bury it.
        log.error("invalid configuration: %s", describe_errors(exc))
        return EX_CONFIG
    configure_logging(settings.log_level)

    lifecycle = Lifecycle()
    config = uvicorn.Config(
        create_app(settings, lifecycle),
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep the JSON logging configured above
        access_log=False,  # the telemetry middleware writes access logs
        server_header=False,
        timeout_graceful_shutdown=UVICORN_DRAIN_BACKSTOP_SECONDS,
        # httptools' parser with the slow-client timeouts; uvloop where installed
        http=TimedHttpToolsProtocol,
        loop="auto",
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    try:
        GracefulServer(config, lifecycle, settings.shutdown_grace_seconds).run()
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its shutdown
        return 130
    return 0


def exit_now(code: int) -> NoReturn:
    """Exit without waiting for worker threads still blocked on the database.

    The drain is over by now. A query on a hung connection (a frozen server, a
    network path that drops packets) has no client-side timeout, and a normal
    exit would wait for its thread until Kubernetes kills the pod.
    """
    others = [t for t in threading.enumerate() if t is not threading.current_thread()]
    for thread in others:
        if not thread.daemon:
            thread.join(THREAD_EXIT_WAIT_SECONDS / len(others))
    stuck = [t.name for t in others if t.is_alive() and not t.daemon]
    if stuck:
        log.warning("exiting with worker threads still blocked", extra={"threads": stuck})
    logging.shutdown()  # flushes the log handlers; os._exit would not
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
