"""Per-process state shared by the endpoints, and the dependency that hands it out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, TypeVar, cast

from fastapi import Depends, Request
from sqlalchemy import Connection, Engine

from .db import run_bounded
from .telemetry import Metrics

T = TypeVar("T")


@dataclass
class Lifecycle:
    """Flipped by the SIGTERM handler so readiness fails before the server stops."""

    shutting_down: bool = False


@dataclass
class Runtime:
    engine: Engine
    metrics: Metrics
    db_timeout_ms: int
    lifecycle: Lifecycle = field(default_factory=Lifecycle)

    async def db(self, work: Callable[[Connection], T]) -> T:
        """`work` on a pooled connection, bounded by DB_TIMEOUT_MS."""
        return await run_bounded(self.engine, self.db_timeout_ms, work)


# async: FastAPI would run a plain function in a worker thread, per request.
async def get_runtime(request: Request) -> Runtime:
    return cast(Runtime, request.app.state.runtime)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
