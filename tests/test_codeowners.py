"""Issue 12, item 9: CODEOWNERS puts the platform team between a merge and the
credentials that run what was merged.

Ownership is resolved the way GitHub does: gitignore-style patterns, the last
matching line wins, a line without owners means no code-owner review.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pathspec
import pytest

from extensions.slipway import service_owned
from tests.conformance.stacks import STACKS, Stack
from tests.conftest import RenderFn

DEFAULT_TEAM = "@acme/platform"


def service_owned_paths(tool: str, stack: str) -> tuple[str, ...]:
    """Service-owned paths (the stack registry's, excluded on update), except
    local.mk, which the Makefile runs in the deploy jobs. openapi.yaml is the
    team's API (kept as they have it on update; the contract-diff gate guards
    its clients), so it needs no platform review."""
    return (*(p for p in service_owned(tool, stack) if p != "local.mk"), "openapi.yaml")


# Run with production credentials after a merge although the service owns them.
HOOKS = ("local.mk", "deploy/overlays/staging/custom/kustomization.yaml")
# Files that run in or shape the deploy jobs.
PIPELINE = (
    ".github/workflows/deploy.yml",
    ".github/workflows/rollback.yml",
    ".github/actions/setup/action.yml",
    ".github/CODEOWNERS",
    ".copier-answers.yml",
    "Makefile",
    "Dockerfile",
    "deploy/rollout.sh",
    "deploy/base/rollout.yaml",
    "deploy/overlays/production/custom/extra.yaml",
    "deploy/migrate/job.yaml",
)


def owners_of(codeowners: str, path: str) -> list[str] | None:
    """The owners of `path` (None when no line matches)."""
    found: list[str] | None = None
    for line in codeowners.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        pattern, *owners = line.split()
        if pathspec.GitIgnoreSpec.from_lines([pattern]).match_file(path):
            found = owners
    return found


def codeowners(project: Path) -> str:
    path = project / ".github" / "CODEOWNERS"
    assert path.is_file(), "no .github/CODEOWNERS is generated"
    return path.read_text()


def test_the_platform_team_owns_the_pipeline_and_the_hooks(render: RenderFn) -> None:
    project = render()
    text = codeowners(project)
    wrong = {p: owners_of(text, p) for p in (*PIPELINE, *HOOKS)}
    assert {p: o for p, o in wrong.items() if o != [DEFAULT_TEAM]} == {}


def ownership_problems(project: Path, stack: Stack) -> list[str]:
    """Platform-owned files without the platform team, service-owned files
    with an owner."""
    text = codeowners(project)
    service = service_owned_paths(stack.tool, stack.name)
    problems = []
    for file in sorted(p for p in project.rglob("*") if p.is_file()):
        rel = file.relative_to(project).as_posix()
        owners = owners_of(text, rel)
        if rel.startswith(service):
            if owners:
                problems.append(f"{rel} (service-owned) needs {owners}")
        elif rel != "README.md" and owners != [DEFAULT_TEAM]:
            # README.md is shared: the team's notes live below its marker.
            problems.append(f"{rel} (platform-owned) is owned by {owners}")
    return problems


# Every available (migration tool, stack) pair: each brings its own tool
# configs, scripts and migration folders.
@pytest.mark.parametrize("key", sorted(STACKS))
def test_every_platform_file_is_owned_and_service_files_are_not(render: RenderFn, key: str) -> None:
    stack = STACKS[key]
    assert ownership_problems(render(**stack.answers), stack) == []


def test_a_platform_file_left_unowned_is_reported(render: RenderFn, tmp_path: Path) -> None:
    stack = next(s for s in STACKS.values() if s.name == "typescript")
    project = tmp_path / "repo"
    shutil.copytree(render(**stack.answers), project, symlinks=True)
    path = project / ".github" / "CODEOWNERS"
    # A stack's tool config (eslint.config.js) dropped from the platform's list.
    text = path.read_text()
    assert "/eslint.config.js @acme/platform\n" in text
    path.write_text(text.replace("/eslint.config.js @acme/platform\n", ""))
    problems = ownership_problems(project, stack)
    assert problems == ["eslint.config.js (platform-owned) is owned by None"]


@pytest.mark.parametrize("team", ["@acme/release-eng", "@octocat"])
def test_the_answer_names_the_owner(render: RenderFn, team: str) -> None:
    text = codeowners(render(platform_team=team))
    assert owners_of(text, "local.mk") == [team]
    assert owners_of(text, "deploy/overlays/production/custom/kustomization.yaml") == [team]
    assert "@acme/platform" not in text.replace(team, "")


def test_the_resolver_follows_last_match_wins() -> None:
    # The two tests above are only as good as this resolver.
    text = (
        "/deploy/ @a/x\n/deploy/overlays/*/custom/ @a/y\n/migrations/ @a/x\n/migrations/versions/\n"
    )
    assert owners_of(text, "deploy/rollout.sh") == ["@a/x"]
    assert owners_of(text, "deploy/overlays/staging/custom/k.yaml") == ["@a/y"]
    assert owners_of(text, "migrations/versions/0001.py") == []
    assert owners_of(text, "src/app.py") is None
