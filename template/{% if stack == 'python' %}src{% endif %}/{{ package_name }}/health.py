"""Liveness, readiness and metrics: the endpoints probes and scrapers call."""

from __future__ import annotations

import logging
from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import SQLAlchemyError

from .db import in_thread, ping
from .deps import RuntimeDep

# The contract: ready only if `SELECT 1` answers within this time.
READY_TIMEOUT_SECONDS = 2.0

log = logging.getLogger(__name__)
router = APIRouter()


class Live(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["ok"]


class Ready(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["ready"]


class NotReady(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["unavailable", "shutting down"]
    reason: Annotated[str, Field(min_length=1)]


@router.get("/healthz", operation_id="getLiveness", summary="Liveness (no database)")
async def healthz() -> Live:
    # Liveness: the process serves requests. Never touches the database, so a
    # database outage does not make Kubernetes restart healthy pods.
    return Live(status="ok")


@router.get(
    "/readyz",
    operation_id="getReadiness",
    summary="Readiness: the database answers",
    response_model=Ready,
    responses={
        503: {"model": NotReady, "description": "Shutting down, or the database is unavailable"}
    },
)
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    if runtime.lifecycle.shutting_down:
        return _not_ready("shutting down", "SIGTERM received")
    try:
        # A hung connection must not hang the probe: the thread is abandoned on timeout.
        await in_thread(runtime.threads, READY_TIMEOUT_SECONDS, partial(ping, runtime.engine))
    except TimeoutError:
        return _not_ready(
            "unavailable", f"database did not answer within {READY_TIMEOUT_SECONDS:g} s"
        )
    except SQLAlchemyError as exc:
        # The full reason (hosts, ports) goes to the log, not to anonymous callers.
        log.warning("readiness check failed", extra={"reason": str(exc).splitlines()[0][:300]})
        return _not_ready("unavailable", "database unreachable")
    return JSONResponse({"status": "ready"})


def _not_ready(status: str, reason: str) -> JSONResponse:
    return JSONResponse({"status": status, "reason": reason}, status_code=503)


_METRICS_FORMATS = {
    "text/plain": {"schema": {"type": "string"}},
    "application/openmetrics-text": {"schema": {"type": "string"}},
}


@router.get(
    "/metrics",
    operation_id="getMetrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus text format", "content": _METRICS_FORMATS}},
)
async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    body, content_type = runtime.metrics.exposition(request.headers.get("accept"))
    return Response(body, headers={"Content-Type": content_type})
