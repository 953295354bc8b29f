"""Answer migrations for `copier update`: the one entry point copier.yml runs.

Copier runs this before rendering the new release, in the generated repo,
with the Python that runs Copier (so only the standard library, PyYAML and
packaging, all Copier dependencies, are available). It rewrites the answers
file so that a renamed question or choice keeps the team's old answer instead
of silently falling back to the default.

Steps are data (migrations.yml next to this file); each is gated by version:
it applies when updating from a release older than its version to that
release or a newer one, so it runs once, in the right window.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from packaging.version import InvalidVersion, Version

STEPS_FILE = Path(__file__).with_name("migrations.yml")


class MigrationError(Exception):
    """A broken steps file or answers file; the message says which and why."""


@dataclass(frozen=True)
class Step:
    version: Version
    rename: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[Any, Any]] = field(default_factory=dict)


def _version(text: object, where: str) -> Version:
    try:
        return Version(str(text))
    except InvalidVersion:
        raise MigrationError(f"{where}: '{text}' is not a PEP 440 version") from None


def _mapping(value: object, where: str) -> dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MigrationError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def parse_steps(data: object, source: str = "migrations.yml") -> list[Step]:
    """Validate the steps data; refuse anything this script would misapply."""
    steps_data = _mapping(data, source).get("steps") or []
    if not isinstance(steps_data, list):
        raise MigrationError(f"{source}: `steps` must be a list")
    steps = []
    for index, raw in enumerate(steps_data):
        where = f"{source}: steps[{index}]"
        raw = _mapping(raw, where)
        unknown = set(raw) - {"version", "rename", "values"}
        if unknown:
            raise MigrationError(f"{where}: unknown keys {sorted(unknown)}")
        if "version" not in raw:
            raise MigrationError(f"{where}: `version` is required")
        if not isinstance(raw["version"], str):
            # YAML reads `version: 1.10` as the float 1.1: a wrong window, silently.
            read = raw["version"]
            raise MigrationError(f"{where}: `version` must be a quoted string (YAML read {read!r})")
        rename = _mapping(raw.get("rename"), f"{where}.rename")
        values = _mapping(raw.get("values"), f"{where}.values")
        for answer, mapping in values.items():
            _mapping(mapping, f"{where}.values.{answer}")
        if not rename and not values:
            raise MigrationError(f"{where}: a step needs `rename` or `values`")
        steps.append(Step(_version(raw["version"], where), rename, values))
    return steps


def load_steps(path: Path = STEPS_FILE) -> list[Step]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise MigrationError(f"cannot read {path}: {error}") from None
    return parse_steps(data, str(path))


def select_steps(steps: list[Step], old: Version, new: Version) -> list[Step]:
    """Steps introduced after `old`, up to and including `new`, oldest first."""
    return sorted((s for s in steps if old < s.version <= new), key=lambda s: s.version)


def apply_steps(answers: dict[str, Any], steps: list[Step]) -> list[str]:
    """Change `answers` in place; return one line per change made."""
    changes = []
    for step in steps:
        for old, new in step.rename.items():
            if old not in answers:
                continue
            value = answers.pop(old)
            if new in answers:
                # An explicit new answer wins; the old one must not linger.
                changes.append(f"{step.version}: dropped '{old}' ('{new}' is already answered)")
            else:
                answers[new] = value
                changes.append(f"{step.version}: renamed answer '{old}' to '{new}'")
        for answer, mapping in step.values.items():
            # A hand-edited list or mapping is no old choice value (and
            # unhashable): Copier's own validation reports it after this.
            if (
                answer in answers
                and isinstance(answers[answer], Hashable)
                and answers[answer] in mapping
            ):
                before = answers[answer]
                answers[answer] = mapping[before]
                changes.append(
                    f"{step.version}: '{answer}' value '{before}' is now '{answers[answer]}'"
                )
    return changes


def migrate_file(answers_file: Path, old: Version, new: Version, steps: list[Step]) -> list[str]:
    text = answers_file.read_text(encoding="utf-8")
    answers = yaml.safe_load(text)
    if not isinstance(answers, dict):
        raise MigrationError(f"{answers_file}: expected a mapping of answers")
    changes = apply_steps(answers, select_steps(steps, old, new))
    if changes:
        # Keep the header comment Copier writes; the body is plain data.
        header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
        body = yaml.safe_dump(answers, sort_keys=True, allow_unicode=True)
        answers_file.write_text(header + body, encoding="utf-8")
    return changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="old", required=True, help="release updated from")
    parser.add_argument("--to", dest="new", required=True, help="release updated to")
    parser.add_argument("--steps", type=Path, default=STEPS_FILE, help=argparse.SUPPRESS)
    parser.add_argument("answers_file", type=Path)
    args = parser.parse_args(argv)
    try:
        old = _version(args.old, "--from")
        new = _version(args.new, "--to")
        changes = migrate_file(args.answers_file, old, new, load_steps(args.steps))
    except (MigrationError, OSError, UnicodeError, yaml.YAMLError) as error:
        print(f"slipway answer migrations failed: {error}", file=sys.stderr)
        return 2
    for change in changes:
        print(f"slipway answer migration {change}", file=sys.stderr)
    if not changes:
        print(f"slipway answer migrations {old} -> {new}: nothing to migrate", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
