"""The questions' choices, and what the template's validators say about an answer set.

Expectations are computed from copier.yml and the extension's own filters, so
a choice that becomes available (or is withdrawn) changes the expected outcome
without editing the tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment

from extensions.slipway import FILTERS, derive, load_pins

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS: dict[str, dict[str, Any]] = {
    k: v
    for k, v in yaml.safe_load((ROOT / "copier.yml").read_text()).items()
    if not k.startswith("_")
}

# Answers that make a conditional question (`when:`) relevant, so that each of
# its choices is rendered where it matters.
PREREQUISITES: dict[str, dict[str, Any]] = {
    "stack": {"migration_tool": "golang-migrate"},
    "traffic_router": {"deploy_strategy": "canary"},
}

_env = Environment()
_env.filters.update(FILTERS)


def evaluate(source: Any, context: dict[str, Any]) -> str:
    return _env.from_string(str(source)).render(context).strip()


def choices(question: dict[str, Any]) -> list[tuple[Any, str | None]]:
    """(value, per-choice validator) for each choice, whatever form copier.yml uses."""
    raw = question.get("choices") or []
    if isinstance(raw, str):  # a template (extensions/stacks.yml) that renders to YAML
        raw = yaml.safe_load(evaluate(raw, {}))
    entries = list(raw.values()) if isinstance(raw, dict) else list(raw)
    found: list[tuple[Any, str | None]] = []
    for entry in entries:
        if isinstance(entry, dict):
            found.append((entry["value"], entry.get("validator")))
        elif isinstance(entry, list):  # [label, value]
            found.append((entry[1], None))
        else:
            found.append((entry, None))
    return found


def context_for(answers: dict[str, Any]) -> dict[str, Any]:
    """Every question's value (given or default), in question order."""
    context: dict[str, Any] = {}
    for name, question in QUESTIONS.items():
        if name in answers:
            context[name] = answers[name]
        else:
            default = question.get("default")
            context[name] = evaluate(default, context) if isinstance(default, str) else default
    return context


def is_asked(name: str, context: dict[str, Any]) -> bool:
    when = QUESTIONS[name].get("when", True)
    if isinstance(when, str):
        return evaluate(when, context).lower() not in {"", "false", "0", "none"}
    return bool(when)


def expected_refusal(answers: dict[str, Any]) -> str:
    """The first validator message copier should stop with, or "" to render."""
    context = context_for(answers)
    for name, question in QUESTIONS.items():
        if name not in answers and not is_asked(name, context):
            continue
        for value, validator in choices(question):
            if validator and value == context[name] and (message := evaluate(validator, context)):
                return message
        if question.get("validator") and (message := evaluate(question["validator"], context)):
            return message
    return ""


def every_choice() -> list[tuple[str, dict[str, Any]]]:
    """(id, answers) for the defaults and for each choice of each question."""
    sets: list[tuple[str, dict[str, Any]]] = [("defaults", {})]
    for name, question in QUESTIONS.items():
        for value, _ in choices(question):
            sets.append((f"{name}={value}", {**PREREQUISITES.get(name, {}), name: value}))
    return sets


def render_context(answers_file: Path) -> dict[str, Any]:
    """What the templates saw: the recorded answers plus the extension's values."""
    recorded = yaml.safe_load(answers_file.read_text())
    answers = {k: v for k, v in recorded.items() if not k.startswith("_")}
    context = {**context_for(answers), **answers}
    context.update(derive(context, load_pins()))
    context["_copier_conf"] = {"answers_file": answers_file.name}
    return context
