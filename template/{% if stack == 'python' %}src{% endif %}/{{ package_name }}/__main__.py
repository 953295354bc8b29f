"""`python -m <package>`: read the environment, log JSON, serve until SIGTERM."""

from __future__ import annotations

import logging
import sys

import uvicorn
from pydantic import ValidationError

from .app import create_app
from .deps import Lifecycle
from .logs import configure_logging
from .server import DRAIN_TIMEOUT_SECONDS, GracefulServer
from .settings import Settings, describe_errors

EX_CONFIG = 78  # sysexits.h: configuration error

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
        timeout_graceful_shutdown=DRAIN_TIMEOUT_SECONDS,
    )
    try:
        GracefulServer(config, lifecycle, settings.shutdown_grace_seconds).run()
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its shutdown
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
