"""How to render and start each stack's service, read from extensions/stacks.yml.

The service is started directly (not through make) so that SIGTERM reaches
the service itself and the exit code the test sees is the service's own.
A stack joins the suite when its registry entry has a (tool, stack) pair
marked available and a `start` command.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from extensions.slipway import available_pairs, load_stacks, stacks_by_tool
from tests.support.answers import QUESTIONS


@dataclass(frozen=True)
class Stack:
    name: str
    tool: str  # the migration tool it is rendered with
    answers: dict[str, Any]  # copier answers that select the stack
    start: tuple[str, ...]  # argv with {root} and {package} placeholders
    build: tuple[str, ...] = ()  # make targets after `make setup` that produce `start`

    def command(self, root: Path, package: str) -> list[str]:
        return [arg.format(root=root, package=package) for arg in self.start]


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
    for tool, stack in sorted(available_pairs()):
        if stack not in found:
            entry = load_stacks()["stacks"][stack]
            found[stack] = Stack(
                stack,
                tool,
                answers_for(tool, stack),
                tuple(entry["start"]),
                tuple(entry.get("build", ())),
            )
    return found


# Every stack with an available (tool, stack) pair, once (its first tool).
STACKS: dict[str, Stack] = _stacks()
