"""Per-process state shared by the endpoints, and the dependencies that hand it out."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, cast

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from .telemetry import Metrics


@dataclass
class Lifecycle:
    """Flipped by the SIGTERM handler so readiness fails before the server stops."""

    shutting_down: bool = False


@dataclass
class Runtime:
    engine: Engine
    sessions: sessionmaker[Session]
    metrics: Metrics
    lifecycle: Lifecycle = field(default_factory=Lifecycle)


def get_runtime(request: Request) -> Runtime:
    return cast(Runtime, request.app.state.runtime)


def get_session(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Iterator[Session]:
    with runtime.sessions() as session:
        yield session


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SessionDep = Annotated[Session, Depends(get_session)]
