"""Template refactors must not change what `copier copy`/`copier update` see.

Renders the pairwise delivery answer sets plus every choice of every question
from a baseline commit and from the working tree, and requires byte-identical
output (content and executable bit) except for the changes listed in INTENDED.

Moving the baseline: once a branch whose intended changes are listed here is
merged, set BASELINE to the merge commit (`git rev-parse HEAD` on main) and
empty INTENDED. The baseline must be in the clone (CI checks out full history).
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.support.answers import ROOT, context_for, every_choice, expected_refusal
from tests.support.combos import combos
from tests.support.render import RenderFn, renderer

# Shares the working tree's every-choice renders with tests/test_render.py.
pytestmark = pytest.mark.xdist_group("render")

# main after the wave-2 fixes, before the wave-3 session's first output change.
BASELINE = "c116dcc0090f24c272e138b5702f9a3b496dc5f0"


# eq=False: entries hash by identity (the `when` dict is unhashable), which is
# all test_every_intended_change_happens needs to collect them in a set.
@dataclass(frozen=True, eq=False)
class Intended:
    """A change the working tree makes on purpose, relative to BASELINE."""

    path: str  # fnmatch pattern of the rendered path
    why: str
    when: dict[str, str] = field(default_factory=dict)  # limited to these answers (resolved)


INTENDED: tuple[Intended, ...] = (
    *(
        Intended(
            path,
            f"runner migrations run before any cloud sign-in (issue 12 gap): {why}",
            {"migration_runner": "runner"},
        )
        for path, why in (
            (".github/workflows/deploy.yml", "make setup and make migrate come first"),
            ("README.md", "the residual OIDC risk"),
            ("docs/pipeline.md", "the order and the residual risk"),
        )
    ),
    Intended("Makefile", "`make hooks-ci`: the hooks no other CI job runs"),
    Intended(".github/workflows/ci.yml", "the hooks job skips the linters other jobs run"),
    Intended(".pre-commit-config.yaml", "its header says where CI runs the linters"),
    Intended("docs/service.md", "the API contract link points at docs/api.md", {"stack": "python"}),
    Intended(
        "cmd/*/main.go", "requests cut at shutdown are logged before the exit", {"stack": "go"}
    ),
    Intended(
        ".github/workflows/ci.yml",
        "the contract job's openapi-check step has a name true for every stack",
        {"stack": "python"},
    ),
    *(
        Intended(path, f"Go meets the contract gate (issue 11): {why}", {"stack": "go"})
        for path, why in (
            ("Makefile", "openapi-check and contract, in make ci"),
            (".github/workflows/ci.yml", "the API contract job"),
            ("go.mod", "kin-openapi for openapi-check"),
            ("go.sum", "kin-openapi for openapi-check"),
            ("cmd/contract/main.go", "make contract"),
            ("internal/api/openapi_test.go", "make openapi-check"),
            ("internal/api/items.go", "an unknown field named '' is reported as body"),
            ("internal/api/api_test.go", "an unknown field named '' is reported as body"),
            ("openapi.yaml", "the header says the file is the source"),
            ("docs/service.md", "the gates table lists openapi-check and contract"),
            ("docs/api.md", "openapi-check holds the handlers to the file"),
            ("README.md", "openapi.yaml is the handlers' source"),
        )
    ),
    Intended(
        "Makefile",
        "TypeScript: require-database-url gets its `make help` line; openapi, openapi-check "
        "and contract (issue 11)",
        {"stack": "typescript"},
    ),
    *(
        Intended(path, "TypeScript meets the contract gate (issue 11)", {"stack": "typescript"})
        for path in (
            ".github/workflows/ci.yml",
            ".gitignore",
            "docs/api.md",
            "docs/service.md",
            "package.json",
            "package-lock.json",
            "scripts/contract.ts",
            "scripts/openapi.ts",
            "src/app.ts",
            "src/items/input.ts",
            "src/openapi.ts",
            "src/schemas.ts",
            "tests/unit/http.test.ts",
            "tests/unit/input.test.ts",
        )
    ),
    Intended(
        "Dockerfile",
        "TypeScript heap ceiling at half the container's memory limit (issue 15)",
        {"stack": "typescript"},
    ),
    *(
        Intended(
            f"src/*/{module}",
            f"Python service speed (issue 15): {why}",
            {"stack": "python"},
        )
        for module, why in (
            ("db.py", "pool of 10 without overflow, own database threads, session in UTC"),
            ("deps.py", "database work on the pool's own threads"),
            ("app.py", "the database threads end with the app"),
            ("health.py", "readiness ping on the database threads"),
            ("items.py", "statements built once"),
            ("schemas.py", "created_at written by pydantic (UTC session)"),
        )
    ),
    Intended("docs/pipeline.md", "CI's hooks job runs `make hooks-ci`, not `make hooks`"),
    Intended(".editorconfig", "ruff's line length is in ruff.toml", {"stack": "python"}),
    Intended(".editorconfig", "prettier's line length, 100", {"stack": "typescript"}),
    Intended(
        "Makefile",
        "a second `make setup` skips `npm ci` while node_modules matches the lock",
        {"stack": "typescript"},
    ),
    Intended("README.md", "the repo map names the tool settings files", {"stack": "python"}),
    *(
        Intended(
            path, f"issue 8: platform settings leave pyproject.toml: {why}", {"stack": "python"}
        )
        for path, why in (
            ("pyproject.toml", "no [tool.uv], no [tool.alembic]"),
            ("Makefile", "make setup checks the minimum uv"),
            (".github/CODEOWNERS", "the new platform-owned config files"),
            ("docs/service.md", "names alembic.ini; [tool.uv] is the team's"),
        )
    ),
    *(
        Intended(
            path,
            f"issue 8: Alembic's settings in alembic.ini: {why}",
            {"migration_tool": "alembic"},
        )
        for path, why in (
            ("alembic.ini", "the settings"),
            ("Dockerfile", "the migration Job's image has alembic.ini"),
            (".dockerignore", "alembic.ini in the build context"),
            ("tests/integration/conftest.py", "migrations read alembic.ini"),
            ("scripts/migrate_check.py", "migrations read alembic.ini"),
            ("scripts/migration_sql.py", "migrations read alembic.ini"),
            ("scripts/contract.py", "migrations read alembic.ini"),
        )
    ),
    Intended(
        "*",
        "issue 10: Python + golang-migrate ships (plain SQL migrations, no Alembic)",
        {"migration_tool": "golang-migrate", "stack": "python"},
    ),
    Intended(
        "*",
        "issue 10: TypeScript + golang-migrate ships (plain SQL migrations, Prisma as client)",
        {"migration_tool": "golang-migrate", "stack": "typescript"},
    ),
    Intended(
        "deploy/base/analysis.yaml",
        "Prometheus queries: probes and scrapes are not traffic; an all-5xx version measures 0",
        {"analysis_provider": "prometheus"},
    ),
    Intended(
        "README.md",
        "the Prometheus analysis: where its scrape job is described, what fails closed",
        {"analysis_provider": "prometheus"},
    ),
    Intended(
        "docs/deploying.md",
        "the scrape job the Prometheus analysis needs, spelled out",
        {"analysis_provider": "prometheus"},
    ),
    # The README stays a ten-minute read in every combination.
    Intended("README.md", "the deploy identity's rights move to docs/deploying.md"),
    Intended("docs/deploying.md", "the deploy identity's rights, moved from the README"),
)


def _answer_sets() -> list[tuple[str, dict[str, Any]]]:
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for name, answers in [*every_choice(), *((f"pairwise-{i}", a) for i, a in enumerate(combos()))]:
        if expected_refusal(answers):
            continue
        found.setdefault(json.dumps(answers, sort_keys=True), (name, answers))
    return list(found.values())


ANSWER_SETS = _answer_sets()


@pytest.fixture(scope="session")
def baseline_render(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> RenderFn:
    """Renders of BASELINE, kept in pytest's cache across runs: a commit's
    renders never change, so only the first run pays for them."""
    tree = tmp_path_factory.mktemp("baseline") / "slipway"
    tree.mkdir()
    done = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", BASELINE],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, (
        f"cannot read baseline {BASELINE} from the clone (shallow? fetch full history): "
        f"{done.stderr.decode(errors='replace')}"
    )
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as archive:
        archive.extractall(tree, filter="tar")
    fresh = renderer(tree, lambda: tmp_path_factory.mktemp("baseline-render"))
    store = request.config.cache.mkdir(f"render-baseline-{BASELINE[:12]}")

    def _render(**answers: Any) -> Path:
        key = json.dumps(answers, sort_keys=True)
        kept = store / hashlib.sha256(key.encode()).hexdigest()[:16]
        if not kept.is_dir():
            staging = store / f".{kept.name}-{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(fresh(**answers), staging, symlinks=True)
            try:
                staging.rename(kept)  # atomic: a reader never sees half a render
            except OSError:  # another worker stored it first
                shutil.rmtree(staging, ignore_errors=True)
        return kept

    return _render


# The answers file records where the template was (a temporary folder).
_VOLATILE_PREFIX = b"_src_path: "


def snapshot(root: Path) -> dict[str, tuple[bytes, bool]]:
    """relpath -> (content, executable) for every rendered file."""
    files = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        data = path.read_bytes()
        if rel == ".copier-answers.yml":
            data = b"".join(
                line
                for line in data.splitlines(keepends=True)
                if not line.startswith(_VOLATILE_PREFIX)
            )
        files[rel] = (data, os.access(path, os.X_OK))
    return files


def differences(old: Path | None, new: Path) -> dict[str, str]:
    """relpath -> a description of how `new` differs from `old` (None: not rendered)."""
    before = snapshot(old) if old else {}
    after = snapshot(new)
    found = {}
    for rel in sorted(before.keys() | after.keys()):
        if rel not in after:
            found[rel] = "removed"
        elif rel not in before:
            found[rel] = "added"
        elif before[rel][1] != after[rel][1]:
            found[rel] = f"executable bit {before[rel][1]} -> {after[rel][1]}"
        elif before[rel][0] != after[rel][0]:
            diff = difflib.unified_diff(
                before[rel][0].decode(errors="replace").splitlines(),
                after[rel][0].decode(errors="replace").splitlines(),
                "baseline",
                "working tree",
                lineterm="",
                n=1,
            )
            found[rel] = "\n".join(list(diff)[:40])
    return found


def intended_all(answers: dict[str, Any], rel: str) -> list[Intended]:
    """Every entry that covers `rel`: several issues may change one file."""
    context = context_for(answers)
    return [
        entry
        for entry in INTENDED
        if fnmatch.fnmatchcase(rel, entry.path)
        and all(str(context.get(k)) == v for k, v in entry.when.items())
    ]


def intended_for(answers: dict[str, Any], rel: str) -> Intended | None:
    found = intended_all(answers, rel)
    return found[0] if found else None


@pytest.fixture(scope="session")
def compare(render: RenderFn, baseline_render: RenderFn) -> Any:
    @cache
    def _compare(key: str) -> dict[str, str]:
        answers = json.loads(key)
        try:
            old = baseline_render(**answers)
        except ValueError:  # the baseline refused a choice the working tree offers
            old = None
        return differences(old, render(**answers))

    return lambda answers: _compare(json.dumps(answers, sort_keys=True))


@pytest.mark.parametrize("answers", [pytest.param(a, id=i) for i, a in ANSWER_SETS])
def test_render_equals_baseline(compare: Any, answers: dict[str, Any]) -> None:
    unlisted = {rel: how for rel, how in compare(answers).items() if not intended_for(answers, rel)}
    assert not unlisted, (
        f"renders differ from {BASELINE} where INTENDED lists no change:\n"
        + "\n".join(f"--- {rel}: {how}" for rel, how in unlisted.items())
    )


def test_every_intended_change_happens(compare: Any) -> None:
    """A listed change that no render shows is stale: the list must stay exact."""
    # By identity: an entry's `when` is a dict, so entries are not hashable.
    seen = {
        id(entry)
        for _, answers in ANSWER_SETS
        for rel in compare(answers)
        for entry in intended_all(answers, rel)
    }
    stale = [entry for entry in INTENDED if id(entry) not in seen]
    assert not stale, f"INTENDED lists changes no render makes: {stale}"


def test_a_planted_change_is_reported(render: RenderFn, tmp_path: Path) -> None:
    """The comparison itself sees content, executable-bit and file-set changes."""
    original = render()
    copy = tmp_path / "copy"
    shutil.copytree(original, copy, symlinks=True)
    (copy / "Makefile").write_text((copy / "Makefile").read_text() + "# planted\n")
    (copy / "README.md").chmod(0o755)
    (copy / "planted.txt").write_text("x")
    (copy / ".dockerignore").unlink()
    found = differences(original, copy)
    assert set(found) == {"Makefile", "README.md", "planted.txt", ".dockerignore"}
    assert "+# planted" in found["Makefile"]
    assert differences(original, original) == {}
