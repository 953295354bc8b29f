"""A pairwise covering set of the delivery answers, for the workflow tests.

Every value of every delivery question appears at least once, and every pair
of values of registry x cluster x deploy strategy x migration runner appears
at least once (tests/test_workflows_combos.py asserts both). Values come from
copier.yml, so a new choice widens the set without editing this file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from itertools import combinations
from pathlib import Path
from typing import Any

import yaml
from allpairspy import AllPairs

from tests.conformance.stacks import STACKS
from tests.support.answers import QUESTIONS, choices

# The questions whose every pair must be rendered together.
PAIRED = ("registry", "cluster", "deploy_strategy", "migration_runner")
# Delivery questions that only need each value once.
SINGLE = ("traffic_router", "analysis_provider")
DELIVERY = PAIRED + SINGLE
# Answers that select a stack (stack_combos): part of a render's id.
STACK_ANSWERS = ("migration_tool", "stack")


def values(question: str) -> list[str]:
    """The answer values of a choice question, in copier.yml's order."""
    return [str(value) for value, _ in choices(QUESTIONS[question])]


def _valid(row: list[str]) -> bool:
    # traffic_router is only asked for canary; pair its values with canary rows.
    if len(row) > PAIRED.index("deploy_strategy") and len(row) > len(PAIRED):
        strategy, router = row[PAIRED.index("deploy_strategy")], row[len(PAIRED)]
        if strategy != "canary" and router != "none":
            return False
    return True


@cache
def combos() -> tuple[dict[str, Any], ...]:
    """Answer sets (only delivery questions; the rest take their defaults)."""
    parameters = [values(q) for q in DELIVERY]
    rows = []
    for row in AllPairs(parameters, filter_func=_valid):
        answers = dict(zip(DELIVERY, row, strict=True))
        if answers["deploy_strategy"] != "canary":
            del answers["traffic_router"]  # not asked: Copier would refuse it
        rows.append(answers)
    # allpairspy's filter can drop a pair while steering around invalid rows;
    # add rows for what is left, merging pairs that fit in one row.
    extra: list[dict[str, Any]] = []
    for a, x, b, y in uncovered_pairs(tuple(rows)):
        for row in extra:
            if row.get(a, x) == x and row.get(b, y) == y:
                row.update({a: x, b: y})
                break
        else:
            extra.append({a: x, b: y})
    for partial in extra:
        answers = {q: values(q)[0] for q in (*PAIRED, "analysis_provider")}
        rows.append({**answers, **partial})
    return tuple(rows) + stack_rows()


def stack_rows() -> tuple[dict[str, Any], ...]:
    """For each stack besides the default one (which the pairwise rows render):
    a few rows that render every delivery value with it at least once. The
    workflows are stack-agnostic; these show that its setup steps, Makefile
    and manifests pass the same checks everywhere."""
    rows = []
    width = max(len(values(q)) for q in DELIVERY)
    for stack in STACKS.values():
        if not stack.answers:  # the defaults' stack
            continue
        for i in range(width):
            row = {q: values(q)[i % len(values(q))] for q in DELIVERY}
            row["traffic_router"] = values("traffic_router")[(i // 2) % 2]
            if row["deploy_strategy"] != "canary":
                del row["traffic_router"]
            rows.append({**row, **stack.answers})
    return tuple(rows)


def combo_id(answers: dict[str, Any]) -> str:
    return "-".join(str(answers[q]) for q in (*DELIVERY, *STACK_ANSWERS) if q in answers)


def uncovered_pairs(rows: tuple[dict[str, Any], ...]) -> list[tuple[str, str, str, str]]:
    """Pairs of PAIRED values that no row renders together."""
    missing = []
    for a, b in combinations(PAIRED, 2):
        seen = {(r[a], r[b]) for r in rows}
        missing += [(a, x, b, y) for x in values(a) for y in values(b) if (x, y) not in seen]
    return missing


def unused_values(rows: tuple[dict[str, Any], ...]) -> list[tuple[str, str]]:
    """Values of a delivery question that no row uses."""
    return [(q, v) for q in DELIVERY for v in values(q) if all(r.get(q) != v for r in rows)]


# --- rendered workflows -------------------------------------------------------

WORKFLOWS = ("ci", "deploy", "rollback")
SETUP_ACTION = ".github/actions/setup/action.yml"


def load_yaml(path: Path) -> Any:
    """A workflow as GitHub reads it: PyYAML's YAML 1.1 turns the `on` key into
    True, so it is put back."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and True in data:
        data["on"] = data.pop(True)
    return data


@dataclass(frozen=True)
class Rendered:
    """One rendered combo and its parsed pipeline files."""

    answers: dict[str, Any]
    root: Path

    @property
    def id(self) -> str:
        return combo_id(self.answers)

    def answer(self, question: str) -> str:
        return str(self.answers.get(question, ""))

    def workflow_path(self, name: str) -> Path:
        return self.root / ".github" / "workflows" / f"{name}.yml"

    def workflow(self, name: str) -> dict[str, Any]:
        return _parsed(self.workflow_path(name))

    def setup_action(self) -> dict[str, Any]:
        return _parsed(self.root / SETUP_ACTION)

    def workflow_files(self) -> list[Path]:
        return sorted((self.root / ".github" / "workflows").glob("*.yml"))


@cache
def _parsed(path: Path) -> dict[str, Any]:
    data = load_yaml(path)
    assert isinstance(data, dict), f"{path}: not a mapping"
    return data


def render_all(render: Callable[..., Path]) -> list[Rendered]:
    """Every combo, rendered once per worker through the session `render` cache,
    plus stack_combos(): the pipeline files must pass for every stack."""
    return [Rendered(answers, render(**answers)) for answers in (*combos(), *stack_combos())]


def stack_combos() -> list[dict[str, Any]]:
    """Every stack other than the defaults' on two delivery rows (a blue-green
    and a canary one): stacks change only the setup action, the Makefile, the
    Dockerfile and the migration command, not the delivery matrix."""
    from tests.conformance.stacks import STACKS  # late: that module imports the suite's helpers

    rows = combos()
    picked = [rows[0], next(r for r in rows if r["deploy_strategy"] == "canary")]
    return [
        {**row, **stack.answers} for stack in STACKS.values() if stack.answers for row in picked
    ]


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps") or [])


def runs(job: dict[str, Any]) -> list[str]:
    return [str(s["run"]) for s in steps(job) if "run" in s]


MAKE_CALL = re.compile(
    r"(?<![\w-])make\s+((?:[A-Za-z_]+=\S+\s+)*)([a-z][\w-]*)((?:\s+[A-Z_]+=\S+)*)"
)


def make_calls(run: str) -> list[tuple[str, dict[str, str]]]:
    """`make <target> VAR=value ...` invocations in a shell snippet."""
    calls = []
    for m in MAKE_CALL.finditer(run):
        assignments = (m.group(1) + " " + m.group(3)).split()
        args = dict(a.split("=", 1) for a in assignments)
        calls.append((m.group(2), args))
    return calls


def ancestors(workflow: dict[str, Any], job: str) -> set[str]:
    """Every job `job` waits for, directly or transitively."""
    jobs = workflow["jobs"]
    seen: set[str] = set()
    todo = [job]
    while todo:
        needs = jobs[todo.pop()].get("needs") or []
        for need in [needs] if isinstance(needs, str) else needs:
            if need not in seen:
                seen.add(need)
                todo.append(need)
    return seen
