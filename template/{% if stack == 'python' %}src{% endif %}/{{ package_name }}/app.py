"""The application factory: wiring only, no I/O (the database is first touched per request)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from . import health, items
from .db import create_db_engine
from .deps import Lifecycle, Runtime
from .errors import install_error_handlers
from .openapi import install_openapi
from .settings import Settings
from .telemetry import Metrics, TelemetryMiddleware

SERVICE_NAME = __name__.partition(".")[0]


def create_app(settings: Settings, lifecycle: Lifecycle | None = None) -> FastAPI:
    engine = create_db_engine(
        settings.sqlalchemy_url, application_name=SERVICE_NAME, timeout_ms=settings.db_timeout_ms
    )
    runtime = Runtime(
        engine=engine,
        metrics=Metrics(),
        db_timeout_ms=settings.db_timeout_ms,
        lifecycle=lifecycle or Lifecycle(),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # No migrations and no connection here: start-up must not depend on the
        # database (readiness reports it), and schema changes are a gated step.
        yield
        engine.dispose()
        # Idle threads end now; one still blocked on a hung database is left
        # to `python -m`'s exit, which does not wait for it.
        runtime.threads.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title=SERVICE_NAME,
        lifespan=lifespan,
        # Interactive docs load scripts from a CDN; the schema stays at /openapi.json.
        docs_url=None,
        redoc_url=None,
        # Exact paths only: "/items/" is a 404, not a redirect.
        redirect_slashes=False,
    )
    app.state.runtime = runtime
    app.include_router(health.router)
    app.include_router(items.router)
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(TelemetryMiddleware, metrics=runtime.metrics)
    return app
