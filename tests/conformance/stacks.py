"""How to render, prepare, migrate and start each stack's service.

What a stack is comes from extensions/stacks.yml (its answers, its start
command); what only this suite needs on this machine is in SUITE below. The
service is started directly (not through make) so that SIGTERM reaches the
service itself and the exit code the test sees is the service's own. A stack
joins the suite when its registry entry has a (tool, stack) pair marked
available and a `start` command.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from extensions.slipway import available_pairs, load_stacks, stacks_by_tool
from tests.support.answers import QUESTIONS
from tests.support.node import prisma_env

Env = Mapping[str, str]


def migrate_with_make(root: Path, database_url: str, env: Env) -> None:
    # Imported here: tests.conformance.service imports this module.
    from tests.conformance.service import check_make

    check_make(root, "migrate", {**env, "DATABASE_URL": database_url})


def apply_prisma_sql(root: Path, database_url: str, env: Env) -> None:
    """Each committed prisma/migrations/*/migration.sql in order, as `prisma
    migrate deploy` runs them: the deploy itself needs Prisma's schema engine,
    which the offline CI machine cannot download (tests marked needs_network
    run the real deploy)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        for script in sorted((root / "prisma" / "migrations").glob("*/migration.sql")):
            conn.execute(script.read_text(encoding="utf-8"))


def same_env(env: Env) -> dict[str, str]:
    return dict(env)


@dataclass(frozen=True)
class Suite:
    """How this suite handles a stack beyond what the registry says."""

    # (render dir, database URL, env): the contract's schema in that database
    migrate: Callable[[Path, str, Env], None] = migrate_with_make
    # the environment for the stack's make targets and its service, from the suite's
    env: Callable[[Env], dict[str, str]] = same_env


SUITE: dict[str, Suite] = {
    "typescript": Suite(migrate=apply_prisma_sql, env=prisma_env),
    # golang-migrate needs no Prisma engine: `make migrate` runs as in CI.
    "typescript-golang-migrate": Suite(env=prisma_env),
}


@dataclass(frozen=True)
class Stack:
    name: str
    tool: str  # the migration tool it is rendered with
    answers: dict[str, Any]  # copier answers that select the stack
    start: tuple[str, ...]  # argv with {root} and {package} placeholders
    build: tuple[str, ...] = ()  # make targets after `make setup` that produce `start`
    suite: Suite = field(default_factory=Suite)

    def command(self, root: Path, package: str) -> list[str]:
        return [arg.format(root=root, package=package) for arg in self.start]

    @property
    def prepare(self) -> tuple[str, ...]:
        """make targets that turn a fresh render into a runnable service"""
        return ("setup", *self.build)

    def migrate(self, root: Path, database_url: str, env: Env) -> None:
        self.suite.migrate(root, database_url, env)

    def env(self, base: Env) -> dict[str, str]:
        return self.suite.env(base)


def answers_for(tool: str, stack: str) -> dict[str, Any]:
    """The fewest answers that select (tool, stack), so renders share the
    defaults' cache entry: the stack question is only asked when the tool
    allows several stacks."""
    answers: dict[str, Any] = {}
    if tool != QUESTIONS["migration_tool"]["default"]:
        answers["migration_tool"] = tool
    if len(stacks_by_tool()[tool]) > 1:
        answers["stack"] = stack
    return answers


def _stacks() -> dict[str, Stack]:
    found: dict[str, Stack] = {}
    by_tool = stacks_by_tool()
    # A stack's default tool first (the tool it is the first stack of), so its
    # plain name keeps meaning what `copier copy` picks for that stack.
    pairs = sorted(available_pairs(), key=lambda p: (by_tool[p[0]][0] != p[1], p))
    for tool, stack in pairs:
        key = stack if stack not in found else f"{stack}-{tool}"
        entry = load_stacks()["stacks"][stack]
        found[key] = Stack(
            stack,
            tool,
            answers_for(tool, stack),
            tuple(entry["start"]),
            tuple(entry.get("build", ())),
            SUITE.get(key, SUITE.get(stack, Suite())),
        )
    return found


# Every available (tool, stack) pair: under the stack's name for its first
# tool (`python`: Alembic), as `<stack>-<tool>` for the others
# (`python-golang-migrate`). `.name` is always the registry's stack.
STACKS: dict[str, Stack] = _stacks()
