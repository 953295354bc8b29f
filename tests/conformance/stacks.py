"""The only stack-specific part of the suite: how to render and start a service.

The service is started directly (not through make) so that SIGTERM reaches
the service itself and the exit code the test sees is the service's own.
Adding a stack = one entry here, after its template renders and `make setup`
installs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Stack:
    answers: dict[str, Any]  # copier answers that select the stack
    command: Callable[[Path, str], list[str]]  # (render dir, package name) -> argv
    build: tuple[str, ...] = ()  # make targets after `make setup` that produce `command`


STACKS: dict[str, Stack] = {
    "python": Stack(
        answers={},  # the defaults: alembic -> python
        command=lambda root, package: [str(root / ".venv/bin/python"), "-m", package],
    ),
    "go": Stack(
        answers={"migration_tool": "golang-migrate", "stack": "go"},
        # `make build` writes it (bin/ is git-ignored)
        command=lambda root, package: [str(root / "bin" / "service")],
        build=("build",),
    ),
}
