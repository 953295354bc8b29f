"""Per-process state shared by the endpoints, and the dependency that hands it out."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated, TypeVar, cast

from fastapi import Depends, Request
from sqlalchemy import Connection, Engine

from .db import database_threads, run_bounded
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
    threads: ThreadPoolExecutor = field(default_factory=database_threads)

    def __post_init__(self) -> None:
        # The same pool, without BEGIN/COMMIT around each statement.
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    async def db(self, work: Callable[[Connection], T], *, transaction: bool = False) -> T:
        """`work` on a pooled connection, bounded by DB_TIMEOUT_MS.

        By default each statement commits on its own: one round trip for the
        single-statement work of a typical request, where a transaction adds
        two more (BEGIN, then COMMIT or the pool's ROLLBACK). Work whose
        statements must succeed or fail together passes `transaction=True`
        and calls `conn.commit()`.
        """
        engine = self.engine if transaction else self._autocommit
        return await run_bounded(engine, self.threads, self.db_timeout_ms, work)


# async: FastAPI would run a plain function in a worker thread, per request.
async def get_runtime(request: Request) -> Runtime:
    return cast(Runtime, request.app.state.runtime)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
