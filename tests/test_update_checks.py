"""The generated repo's conflict gates, ownership rules and template-update workflow."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from jinja2 import Environment

from extensions.slipway import FILTERS, load_pins
from tests.conformance.stacks import STACKS as CONFORMANCE_STACKS
from tests.conftest import RenderFn
from tests.support.update import (
    COMBOS,
    SERVICE_OWNED_IF_MISSING,
    STACKS,
    commit_all,
    files_of,
    git,
    git_env,
    is_service_owned,
    make,
)

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent  # the suite's own tools (pre-commit)
WORKFLOW = ".github/workflows/template-update.yml"
CONFLICT_HOOKS = {"no-conflict-markers", "no-rejected-hunks"}

# A block Copier's inline conflict resolution writes (see copier/_main.py).
CONFLICT_BLOCK = "<<<<<<< before updating\nours\n=======\ntheirs\n>>>>>>> after updating\n"


@pytest.fixture
def repo(render: RenderFn, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A writable, committed copy of the default render."""
    env = git_env(tmp_path)
    dst = tmp_path / "service"
    shutil.copytree(render(), dst, symlinks=True)
    git(dst, env, "init", "-q")
    commit_all(dst, env, "Generated")
    return dst, env


# --- make check-conflicts -------------------------------------------------------


def test_check_conflicts_passes_on_a_fresh_repo(repo: tuple[Path, dict[str, str]]) -> None:
    root, env = repo
    result = make(root, env, "check-conflicts")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("tracked", [True, False], ids=["committed", "untracked"])
def test_check_conflicts_fails_on_markers(repo: tuple[Path, dict[str, str]], tracked: bool) -> None:
    root, env = repo
    target = root / "deploy" / "notes.md"
    target.write_text("intro\n" + CONFLICT_BLOCK)
    if tracked:
        commit_all(root, env, "Commit a conflicted file")
    result = make(root, env, "check-conflicts")
    assert result.returncode != 0
    assert "deploy/notes.md:2:<<<<<<< before updating" in result.stdout
    assert "resolve them" in result.stderr


def test_check_conflicts_fails_on_rej_files_even_when_ignored(
    repo: tuple[Path, dict[str, str]],
) -> None:
    root, env = repo
    (root / ".gitignore").write_text("*.rej\n")
    (root / "Makefile.rej").write_text("@@ -1 +1 @@\n-a\n+b\n")
    result = make(root, env, "check-conflicts")
    assert result.returncode != 0
    assert "./Makefile.rej" in result.stdout


def test_check_conflicts_ignores_lookalikes(repo: tuple[Path, dict[str, str]]) -> None:
    """Setext headings and markers quoted mid-line are not conflicts."""
    root, env = repo
    (root / "NOTES.md").write_text(
        "Title\n=======\n\nCopier writes `<<<<<<< before updating` at a line start.\n"
    )
    result = make(root, env, "check-conflicts")
    assert result.returncode == 0, result.stdout + result.stderr


# --- pre-commit hooks -------------------------------------------------------------


def _conflict_hooks_config(root: Path, dst: Path) -> Path:
    """Only the local conflict hooks: other repos in the config would need GitHub."""
    config = yaml.safe_load((root / ".pre-commit-config.yaml").read_text())
    local = [r for r in config["repos"] if r["repo"] == "local"]
    hooks = [h for r in local for h in r["hooks"] if h["id"] in CONFLICT_HOOKS]
    assert {h["id"] for h in hooks} == CONFLICT_HOOKS
    dst.write_text(yaml.safe_dump({"repos": [{"repo": "local", "hooks": hooks}]}))
    return dst


def _pre_commit(root: Path, env: dict[str, str], config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "pre-commit"), "run", "--all-files", "--config", str(config)],
        cwd=root,
        env={**env, "PRE_COMMIT_HOME": str(config.parent / "pre-commit-home")},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_pre_commit_hooks_block_conflicts(
    repo: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, env = repo
    config = _conflict_hooks_config(root, tmp_path / "hooks.yaml")

    clean = _pre_commit(root, env, config)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    (root / "Makefile").write_text((root / "Makefile").read_text() + CONFLICT_BLOCK)
    (root / "README.md.rej").write_text("@@ -1 +1 @@\n-a\n+b\n")
    git(root, env, "add", "-A")  # pre-commit sees what is staged or tracked
    dirty = _pre_commit(root, env, config)
    assert dirty.returncode != 0
    assert re.search(r"no conflict markers.*Failed", dirty.stdout)
    assert "Makefile:" in dirty.stdout
    assert re.search(r"no \*\.rej files.*Failed", dirty.stdout)
    assert "README.md.rej" in dirty.stdout


# --- ownership is the same everywhere it is written down -----------------------------


def _update_exclusions(stack: str) -> set[str]:
    config = yaml.safe_load((ROOT / "copier.yml").read_text())
    env = Environment()
    env.filters.update(FILTERS)
    tool = CONFORMANCE_STACKS[stack].tool
    patterns: set[str] = set()
    for operation in ("copy", "update"):
        context = {
            "_copier_operation": operation,
            "migration_tool": tool,
            "stack": CONFORMANCE_STACKS[stack].name,
        }
        rendered = {
            line.strip()
            for raw in config["_exclude"]
            for line in env.from_string(raw).render(context).splitlines()
            if line.strip()
        }
        if operation == "copy":
            always = rendered
        else:
            patterns = rendered - always
    return patterns


@pytest.mark.parametrize("stack", list(STACKS))
def test_service_owned_paths_match_copier_exclusions(stack: str) -> None:
    excluded = {p.lstrip("/") for p in _update_exclusions(stack)}
    skipped = {
        p.lstrip("/") for p in yaml.safe_load((ROOT / "copier.yml").read_text())["_skip_if_exists"]
    }
    assert excluded == set(STACKS[stack].service_owned) - set(SERVICE_OWNED_IF_MISSING)
    assert skipped == set(SERVICE_OWNED_IF_MISSING)


@pytest.mark.parametrize("stack", list(STACKS))
def test_ownership_is_documented_for_every_service_path(render: RenderFn, stack: str) -> None:
    readme = (render(**STACKS[stack].answers) / "README.md").read_text()
    section = readme.split("## Template updates", 1)[1]
    docs = (ROOT / "docs" / "ownership.md").read_text()
    for path in STACKS[stack].service_owned:
        assert f"`{path}`" in section, f"README's ownership table lacks {path}"
        assert f"`{path}`" in docs, f"docs/ownership.md lacks {path}"


# Files whose content a tool rewrites (a header there would be lost or
# conflict), and formats without comments.
NO_HEADER = {".copier-answers.yml", "uv.lock"}
NO_COMMENT_SUFFIXES = {".json"}


@pytest.mark.parametrize("stack", list(STACKS))
@pytest.mark.parametrize("combo", ["defaults", "nginx-gar-runner-prometheus"])
def test_platform_files_say_they_are_managed_and_service_files_do_not(
    render: RenderFn, combo: str, stack: str
) -> None:
    """docs/ownership.md: the header tells people which files updates rewrite."""
    missing, claimed = [], []
    for rel, path in files_of(render(**STACKS[stack].answers, **COMBOS[combo])).items():
        head = "\n".join(path.read_text(encoding="utf-8").splitlines()[:5])
        marked = "Managed by Slipway" in head
        if is_service_owned(rel, stack):
            if marked:
                claimed.append(rel)
        elif rel not in NO_HEADER and path.suffix not in NO_COMMENT_SUFFIXES and not marked:
            missing.append(rel)
    assert missing == [], f"platform files without the 'Managed by Slipway' header: {missing}"
    assert claimed == [], f"service-owned files claiming to be managed: {claimed}"


def test_readme_update_commands_are_real_make_targets(render: RenderFn) -> None:
    root = render()
    section = (root / "README.md").read_text().split("## Template updates", 1)[1]
    targets = set(re.findall(r"^([A-Za-z0-9_-]+):", (root / "Makefile").read_text(), re.M))
    mentioned = set(re.findall(r"`make ([a-z-]+)", section))
    assert {"template-update", "check-conflicts"} <= mentioned
    assert mentioned <= targets, f"README names missing targets: {sorted(mentioned - targets)}"


def test_readme_keeps_the_service_notes_marker_last(render: RenderFn) -> None:
    lines = (render() / "README.md").read_text().splitlines()
    assert lines[-2:] == [
        "<!-- slipway:service-notes -->",
        "<!-- Everything below this line is yours: template updates never change it. -->",
    ]


# --- the template-update workflow ---------------------------------------------------


@pytest.fixture(scope="module")
def workflow_repo(render: RenderFn) -> Path:
    return render()


def _workflow(root: Path) -> dict[Any, Any]:
    data = yaml.safe_load((root / WORKFLOW).read_text())
    assert isinstance(data, dict)
    return data


def test_workflow_is_scheduled_and_manual(workflow_repo: Path) -> None:
    triggers = _workflow(workflow_repo)[True]  # YAML 1.1 reads `on` as True
    assert set(triggers) == {"schedule", "workflow_dispatch"}
    assert len(triggers["schedule"]) == 1


def test_workflow_grants_write_only_to_the_update_job(workflow_repo: Path) -> None:
    workflow = _workflow(workflow_repo)
    assert workflow["permissions"] == {}
    assert {name: job["permissions"] for name, job in workflow["jobs"].items()} == {
        # issues: labels are created by the first run; without it, GitHub
        # refuses to add a label the repository does not have yet.
        "update": {"contents": "write", "pull-requests": "write", "issues": "write"}
    }
    text = (workflow_repo / WORKFLOW).read_text()
    assert "secrets." not in text, "the workflow must use nothing but GITHUB_TOKEN"


def test_workflow_uses_pinned_actions_and_tools(workflow_repo: Path) -> None:
    pins = load_pins()
    workflow = _workflow(workflow_repo)
    steps = workflow["jobs"]["update"]["steps"]
    used = {s["uses"].split("@")[0]: s for s in steps if "uses" in s}
    assert set(used) == {
        "actions/checkout",
        "astral-sh/setup-uv",
        "peter-evans/create-pull-request",
    }
    for name, step in used.items():
        assert step["uses"] == f"{name}@{pins['actions'][name]['sha']}"
    assert used["actions/checkout"]["with"]["persist-credentials"] is False
    assert used["astral-sh/setup-uv"]["with"]["version"] == str(pins["tools"]["uv"])
    assert workflow["env"]["COPIER_VERSION"] == str(pins["tools"]["copier"])
    assert workflow["env"]["EXTENSIONS_VERSION"] == str(pins["tools"]["copier_template_extensions"])
    scripts = [s["run"] for s in steps if "run" in s]
    assert any("copier check-update" in s for s in scripts)
    assert any("copier update --trust --defaults" in s for s in scripts)
    assert any("make --no-print-directory check-conflicts" in s for s in scripts)
    for script in scripts:
        assert "${{" not in script, "expressions go through env:, never into run:"


def test_the_pinned_copier_is_the_one_the_suite_tests() -> None:
    from importlib.metadata import version

    tools = load_pins()["tools"]
    assert str(tools["copier"]) == version("copier")
    assert str(tools["copier_template_extensions"]) == version("copier-template-extensions")
    config = yaml.safe_load((ROOT / "copier.yml").read_text())
    assert config["_min_copier_version"] == str(tools["copier"])


# actionlint, zizmor (pedantic), yamllint --strict and check-jsonschema run over
# every rendered workflow, this one included, in tests/test_workflows_lint.py.


# A stand-in for `gh`: the guard's own logic is what is under test, not GitHub.
FAKE_GH = """#!/bin/sh
case "$*" in
  "pr list "*) printf '%s\\n' "$FAKE_PR" ;;
  "api --paginate repos/$GITHUB_REPOSITORY/pulls/$FAKE_PR/commits "*) printf '%s\\n' $FAKE_PEOPLE ;;
  *) echo "unexpected gh call: $*" >&2; exit 2 ;;
esac
"""
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"


@pytest.mark.parametrize(
    ("pr", "people", "blocked"),
    [
        ("", "", "false"),  # no open update pull request yet
        ("7", f"{BOT_EMAIL} {BOT_EMAIL}", "false"),  # only the workflow's own commits
        ("7", f"{BOT_EMAIL} {BOT_EMAIL} dev@example.com dev@example.com", "true"),  # a fix-up
        ("7", f"{BOT_EMAIL} dev@example.com", "true"),  # the workflow's commit, amended by a person
    ],
    ids=["no-pr", "bot-only", "human-commits", "amended"],
)
def test_workflow_never_overwrites_manual_work_on_the_update_branch(
    workflow_repo: Path, tmp_path: Path, pr: str, people: str, blocked: str
) -> None:
    workflow = _workflow(workflow_repo)
    [step] = [s for s in workflow["jobs"]["update"]["steps"] if s.get("id") == "guard"]
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "gh").write_text(FAKE_GH)
    (fake_bin / "gh").chmod(0o755)
    outputs = tmp_path / "output"
    outputs.write_text("")
    env = {
        **os.environ,
        **{k: str(v) for k, v in workflow["env"].items()},
        "PATH": f"{fake_bin}:{os.environ['PATH']}",
        "GITHUB_OUTPUT": str(outputs),
        "FAKE_PR": pr,
        "GITHUB_REPOSITORY": "acme/demo-service",
        "FAKE_PEOPLE": people,  # author then committer email of each commit
    }
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert outputs.read_text() == f"blocked={blocked}\n"
    assert ("::warning::" in done.stdout) == (blocked == "true")
