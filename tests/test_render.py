"""Renders for the defaults and every choice: structure, leftovers, answers."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from copier import run_copy

from tests.support.answers import (
    QUESTIONS,
    ROOT,
    context_for,
    evaluate,
    every_choice,
    expected_refusal,
    is_asked,
    render_context,
)

pytestmark = pytest.mark.xdist_group("render")

ANSWER_SETS = every_choice()
RENDERED_ANSWERS = [a for _, a in ANSWER_SETS if not expected_refusal(a)]
RENDERED = [pytest.param(a, id=i) for i, a in ANSWER_SETS if not expected_refusal(a)]

ANSWERS_HEADER = "# Changes here will be overwritten by Copier; NEVER EDIT MANUALLY"


def rendered_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts)


def parse(path: Path) -> list[Any] | None:
    """The documents of a YAML/TOML/JSON file; None for other formats."""
    text = path.read_text(encoding="utf-8")
    if path.suffix in {".yml", ".yaml"}:
        return list(yaml.safe_load_all(text))
    if path.suffix == ".toml":
        return [tomllib.loads(text)]
    if path.suffix == ".json":
        return [json.loads(text)]
    return None


# --- every choice renders, or is refused with its message -------------------


def test_every_question_with_choices_is_exercised() -> None:
    exercised = {i.split("=")[0] for i, _ in ANSWER_SETS}
    with_choices = {name for name, q in QUESTIONS.items() if q.get("choices")}
    assert with_choices <= exercised


def test_unavailable_choices_are_refused_with_their_message(
    template_snapshot: Path, tmp_path: Path
) -> None:
    """Every choice this version refuses, and a (tool, stack) pair planted as
    not shipped (the real list is empty once every pair ships), stop Copier before
    it writes a file."""
    refusals = [(a, expected_refusal(a)) for _, a in ANSWER_SETS if expected_refusal(a)]
    for i, (answers, message) in enumerate(refusals):
        dst = tmp_path / f"out-{i}"
        with pytest.raises(ValueError) as refused:
            run_copy(
                str(template_snapshot),
                str(dst),
                data=answers,
                defaults=True,
                unsafe=True,
                quiet=True,
            )
        assert message in str(refused.value)
        assert not dst.exists() or not any(dst.iterdir()), "files were written before the refusal"

    planted = tmp_path / "template"
    shutil.copytree(template_snapshot, planted, symlinks=True)
    registry = planted / "extensions" / "stacks.yml"
    text = registry.read_text(encoding="utf-8")
    pair = "      typescript:\n        available: true\n        migrations_dir: migrations/\n"
    assert text.count(pair) == 1, "update this test: the golang-migrate/typescript entry moved"
    registry.write_text(text.replace(pair, pair.replace("true", "false")), encoding="utf-8")
    dst = tmp_path / "out-planted"
    copier = Path(sys.executable).with_name("copier")
    args = ["copy", "--trust", "--defaults", "--data", "migration_tool=golang-migrate"]
    result = subprocess.run(
        [str(copier), *args, "--data", "stack=typescript", str(planted), str(dst)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode != 0
    assert (
        "A typescript service with golang-migrate is not part of this template version yet; "
        "available with golang-migrate: go, python." in result.stdout + result.stderr
    )
    assert not dst.exists() or not any(dst.iterdir()), "files were written before the refusal"


@pytest.mark.parametrize("answers", RENDERED)
def test_conditional_questions_matter_where_exercised(answers: dict[str, Any]) -> None:
    context = context_for(answers)
    for name in answers:
        assert is_asked(name, context), f"{name} is not asked with {answers}: the choice is moot"


@pytest.mark.parametrize("answers", RENDERED)
def test_structured_files_parse(render: Any, answers: dict[str, Any]) -> None:
    root = render(**answers)
    for path in rendered_files(root):
        try:
            parse(path)
        except Exception as exc:  # any parser's error, reported with the file
            pytest.fail(f"{path.relative_to(root)} does not parse: {exc}")


# --- no Jinja leftovers -------------------------------------------------------

# Literal `{{`/`{%`/`{#` that belong to other languages, and where:
GHA_EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.S)  # GitHub Actions, in .github/ YAML
ARGO_ARG = re.compile(r"\{\{\s*args\.[A-Za-z0-9_.-]+\s*\}\}")  # Argo Rollouts analysis args
SHELL_LENGTH = re.compile(r"\$\{#[A-Za-z_@*][A-Za-z0-9_@*\[\]]*\}")  # ${#var} in shell
JINJA_MARKERS = ("{{", "{%", "{#")


def _is_analysis_template(docs: list[Any] | None) -> bool:
    kinds = {"AnalysisTemplate", "ClusterAnalysisTemplate"}
    return bool(docs) and any(isinstance(d, dict) and d.get("kind") in kinds for d in docs or [])


def strip_legitimate_braces(path: Path, root: Path, text: str) -> str:
    rel = path.relative_to(root)
    if rel.parts[0] == ".github" and path.suffix in {".yml", ".yaml"}:
        text = GHA_EXPRESSION.sub("", text)
    if path.suffix in {".yml", ".yaml"} and _is_analysis_template(parse(path)):
        text = ARGO_ARG.sub("", text)
    if path.name == "Makefile" or path.suffix in {".sh", ".mk"} or rel.parts[0] == ".github":
        text = SHELL_LENGTH.sub("", text)
    return text


@pytest.mark.parametrize("answers", RENDERED)
def test_no_jinja_leftovers(render: Any, answers: dict[str, Any]) -> None:
    root = render(**answers)
    found = []
    for path in rendered_files(root):
        text = strip_legitimate_braces(path, root, path.read_text(encoding="utf-8"))
        for lineno, line in enumerate(text.splitlines(), 1):
            if any(marker in line for marker in JINJA_MARKERS):
                found.append(f"{path.relative_to(root)}:{lineno}: {line.strip()}")
    names = [str(p.relative_to(root)) for p in root.rglob("*")]
    found += [f"path: {n}" for n in names if any(m in n for m in JINJA_MARKERS)]
    assert not found, "Jinja leftovers:\n" + "\n".join(found)


# --- no empty files from dead conditionals ----------------------------------


def _intentionally_empty_names(template: Path) -> set[str]:
    """Names of files that are empty in the template itself (markers like py.typed)."""
    return {
        p.name.removesuffix(".jinja")
        for p in template.rglob("*")
        if p.is_file() and not p.read_text(encoding="utf-8").strip()
    }


@pytest.mark.parametrize("answers", RENDERED)
def test_no_empty_files(render: Any, template_snapshot: Path, answers: dict[str, Any]) -> None:
    root = render(**answers)
    allowed = _intentionally_empty_names(template_snapshot / "template")
    empty = [
        str(p.relative_to(root))
        for p in rendered_files(root)
        if not p.read_text(encoding="utf-8").strip() and p.name not in allowed
    ]
    assert not empty, f"rendered empty (dead conditional?): {empty}"


# --- conditional paths ------------------------------------------------------------


def _render_rel(rel: Path, context: dict[str, Any]) -> Path | None:
    """Where copier writes a template path: suffix dropped first, then rendered."""
    names = [*rel.parts[:-1], rel.parts[-1].removesuffix(".jinja")]
    parts = [evaluate(name, context) for name in names]
    return Path(*parts) if all(parts) else None


def _conditional_paths(template: Path) -> list[Path]:
    relative = (p.relative_to(template) for p in template.rglob("*"))
    return sorted(rel for rel in relative if "{%" in str(rel) or " if " in str(rel))


JINJA_LOAD = re.compile(r"\{%-?\s*(?:import|include|from)\s+(['\"])(.+?)\1")


def _imported_paths(template: Path) -> set[str]:
    return {
        match.group(2)
        for p in template.rglob("*.jinja")
        for match in JINJA_LOAD.finditer(p.read_text(encoding="utf-8"))
    }


def test_every_conditional_path_renders_for_some_answers(
    render: Any, template_snapshot: Path
) -> None:
    roots = [render(**answers) for answers in RENDERED_ANSWERS]
    contexts = [(root, render_context(root / ".copier-answers.yml")) for root in roots]
    never = []
    for rel in _conditional_paths(template_snapshot / "template"):
        hits = [(root, out) for root, ctx in contexts if (out := _render_rel(rel, ctx))]
        if not hits:
            never.append(str(rel))
        for root, out in hits:
            assert (root / out).exists(), f"{rel} should render as {out} in {root}"
    # a name that never renders is fine for a macro library other templates import
    libraries = _imported_paths(template_snapshot / "template")
    never = [rel for rel in never if f"template/{rel}" not in libraries]
    assert not never, f"conditional paths no answer set renders: {never}"


# --- the answers file -----------------------------------------------------------


@pytest.mark.parametrize("answers", RENDERED)
def test_answers_file_has_header_and_records_answers(render: Any, answers: dict[str, Any]) -> None:
    path = render(**answers) / ".copier-answers.yml"
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == ANSWERS_HEADER
    recorded = yaml.safe_load(text)
    for name, value in answers.items():
        assert recorded.get(name) == value, f"{name}: recorded {recorded.get(name)!r}"
    context = context_for(answers)
    asked = {name for name in QUESTIONS if is_asked(name, context)}
    assert asked <= set(recorded), f"unrecorded answers: {sorted(asked - set(recorded))}"
    assert "_src_path" in recorded


# --- warnings --------------------------------------------------------------------


def test_copy_prints_no_deprecation_warning(template_snapshot: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, "-W", "error::DeprecationWarning", "-m", "copier", "copy"]
    result = subprocess.run(
        [*cmd, "--trust", "--defaults", "--quiet", str(template_snapshot), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "DeprecationWarning" not in result.stderr + result.stdout


# --- the tests themselves only pass real answers ------------------------------------


def _answer_keys_in(tree: ast.AST) -> set[str]:
    keys: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if name in {"render", "_render"}:
            keys |= {kw.arg for kw in node.keywords if kw.arg}
        for kw in node.keywords:
            if kw.arg == "data" and isinstance(kw.value, ast.Dict):
                keys |= {
                    k.value
                    for k in kw.value.keys
                    if isinstance(k, ast.Constant) and isinstance(k.value, str)
                }
    return keys


def test_tests_only_pass_answer_keys_that_exist() -> None:
    unknown = {}
    for path in sorted((ROOT / "tests").rglob("*.py")):
        keys = _answer_keys_in(ast.parse(path.read_text(encoding="utf-8")))
        if extra := keys - set(QUESTIONS):
            unknown[str(path.relative_to(ROOT))] = sorted(extra)
    assert not unknown, f"answer keys not in copier.yml: {unknown}"
