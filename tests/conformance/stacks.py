"""The only stack-specific part of the suite: how to render, prepare, migrate and start a service.

The service is started directly (not through make) so that SIGTERM reaches
the service itself and the exit code the test sees is the service's own.
Adding a stack = one entry here, after its template renders and `make setup`
installs it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from tests.support.node import prisma_env

Env = Mapping[str, str]


def migrate_with_make(root: Path, database_url: str, env: Env) -> None:
    # Imported here: tests.conformance.service imports this module.
    from tests.conformance.service import check_make

    check_make(root, "migrate", {**env, "DATABASE_URL": database_url})


def apply_prisma_sql(root: Path, database_url: str, env: Env) -> None:
    """Each committed prisma/migrations/*/migration.sql in order, as `prisma
    migrate deploy` runs them: the deploy itself needs Prisma's schema engine,
    which this machine cannot download (tests marked needs_network run it)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        for script in sorted((root / "prisma" / "migrations").glob("*/migration.sql")):
            conn.execute(script.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Stack:
    answers: dict[str, Any]  # copier answers that select the stack
    command: Callable[[Path, str], list[str]]  # (render dir, package name) -> argv
    # make targets that turn a fresh render into a runnable service
    prepare: tuple[str, ...] = ("setup",)
    # (render dir, database URL, env): the schema of the contract in that database
    migrate: Callable[[Path, str, Env], None] = migrate_with_make
    # the environment for the stack's make targets and its service, from the suite's
    env: Callable[[Env], dict[str, str]] = dict


STACKS: dict[str, Stack] = {
    "python": Stack(
        answers={},  # the defaults: alembic -> python
        command=lambda root, package: [str(root / ".venv/bin/python"), "-m", package],
    ),
    "typescript": Stack(
        answers={"migration_tool": "prisma"},
        command=lambda root, package: ["node", "dist/main.js"],
        prepare=("setup", "build"),
        migrate=apply_prisma_sql,
        env=prisma_env,
    ),
}
