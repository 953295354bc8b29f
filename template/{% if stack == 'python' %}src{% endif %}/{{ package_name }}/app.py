"""The application factory: wiring only, no I/O (the database is first touched per request)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy.orm import sessionmaker

from . import health, items
from .db import create_db_engine
from .deps import Lifecycle, Runtime
from .errors import install_error_handlers
from .openapi import install_openapi
from .settings import Settings
from .telemetry import Metrics, TelemetryMiddleware

SERVICE_NAME = __name__.partition(".")[0]


def create_app(settings: Settings, lifecycle: Lifecycle | None = None) -> FastAPI:
    engine = create_db_engine(settings.sqlalchemy_url, application_name=SERVICE_NAME)
    runtime = Runtime(
        engine=engine,
        sessions=sessionmaker(engine, expire_on_commit=False),
        metrics=Metrics(),
        lifecycle=lifecycle or Lifecycle(),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # No migrations and no connection here: start-up must not depend on the
        # database (readiness reports it), and schema changes are a gated step.
        yield
        engine.dispose()

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
    for router in (health.router, items.router):
        # HEAD wherever GET is (RFC 9110); uvicorn sends the headers, never the body.
        for route in router.routes:
            if isinstance(route, APIRoute) and route.methods and "GET" in route.methods:
                route.methods.add("HEAD")
        app.include_router(router)
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(TelemetryMiddleware, metrics=runtime.metrics)
    return app
