"""The update-test harness: a temporary template repository with three releases,
repos generated from it, team edits, and `make template-update` between them.

One temporary template repository per session, built from the working tree:

- 0.1.0: an older release. The question `deploy_strategy` is still called
  `rollout_strategy`; README and Makefile carry lines 0.2.0 removed; a retired
  platform file exists; `.pre-commit-config.yaml` does not exist yet; every
  service-owned file has an extra line 0.2.0 dropped; the overlays have no
  custom components yet (0.2.0 adds them).
- 0.2.0: the working tree as is, plus the answer migration for the rename.
- 0.3.0: one more platform change, to check the migration does not run again.

Every update goes through the generated repo's own `make template-update`
(the command the template-update workflow and developers run), with the
suite's Copier instead of `uv tool run`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from copier import run_copy
from jinja2 import Environment, TemplateError

from extensions.slipway import service_owned, stack_profile
from tests.conformance.stacks import STACKS as CONFORMANCE_STACKS
from tests.conformance.stacks import Stack
from tests.support.deploy import ENVS

ROOT = Path(__file__).resolve().parents[2]
NEW_NAME, OLD_NAME = "deploy_strategy", "rollout_strategy"
OLD_PARAGRAPH = "Release 0.1.0 said this about updates; 0.2.0 dropped it.\n"
OLD_TRAILER = "# Release 0.1.0 ended this file with this line.\n"
WORKFLOW = ".github/workflows/template-update.yml"
RETIRED = "RETIRED-IN-0.2.0.md"
SERVICE_MARK = "service line from release 0.1.0"
OLD_TOOL_SETTING = "tool setting from release 0.1.0"
CONFLICT_RE = re.compile(rb"^(<<<<<<<|>>>>>>>)( |$)", re.MULTILINE)
PY = sys.executable


# Service-owned paths that platform files include: an update creates them when
# missing, and otherwise never changes them (copier.yml `_skip_if_exists`).
CUSTOM_COMPONENTS = tuple(f"deploy/overlays/{env}/custom/" for env in ENVS)
# The API document the contract gates read, which `make openapi` rewrites.
SERVICE_OWNED_IF_MISSING = (*CUSTOM_COMPONENTS, "openapi.yaml")


@dataclass(frozen=True)
class StackCase:
    """What the tests need to know about a stack's service-owned layout
    (from extensions/stacks.yml)."""

    answers: dict[str, Any]
    comment: str  # line-comment prefix of the service's source files
    owned_dirs: tuple[str, ...]  # code and tests, rendered on copy only
    migrations_dir: str  # holds the initial migration; the team adds the rest
    team_migration: str  # a file name the stack's migration tool would accept
    service_owned: tuple[str, ...]  # every path an update must leave alone
    dependency_files: tuple[str, ...]  # manifests and locks: the team's
    tool_configs: tuple[str, ...]  # the platform's tool settings: kept current


def _stack_case(stack: Stack) -> StackCase:
    profile = stack_profile(stack.tool, stack.name)
    return StackCase(
        answers=stack.answers,
        comment=profile["comment"],
        owned_dirs=tuple(p.rstrip("/") for p in profile["service_owned"] if p.endswith("/")),
        migrations_dir=profile["migrations_dir"].rstrip("/"),
        team_migration=profile["team_migration_example"],
        service_owned=(*service_owned(stack.tool, stack.name), *SERVICE_OWNED_IF_MISSING),
        dependency_files=(*profile["manifests"], *profile["locks"]),
        tool_configs=tuple(profile["tool_configs"]),
    )


# Every stack the registry ships.
STACKS = {name: _stack_case(stack) for name, stack in CONFORMANCE_STACKS.items()}
# The pair `copier copy --defaults` renders (no answer selects it).
DEFAULT_PAIR = next(name for name, stack in CONFORMANCE_STACKS.items() if not stack.answers)
# Scenarios that need one service, whichever stack renders it.
ANY_STACK = next(iter(STACKS))

COMBOS = {
    "defaults": {},
    "canary-ecr": {NEW_NAME: "canary", "registry": "ecr"},
    "nginx-gar-runner-prometheus": {
        NEW_NAME: "canary",
        "traffic_router": "nginx",
        "registry": "gar",
        "migration_runner": "runner",
        "analysis_provider": "prometheus",
    },
}
# The defaults for every (tool, stack) pair; the other delivery combos for the
# default pair only. The delivery answers change platform-owned files that
# read the same for every stack (workflows call make targets; manifests take
# the stack's values from the registry), and a stack or tool changes the
# service-owned layout, which the defaults show.
CASES = [
    pytest.param(stack, combo, id=f"{stack}-{combo}")
    for stack in STACKS
    for combo in COMBOS
    if combo == "defaults" or stack == DEFAULT_PAIR
]


# --- git and make -------------------------------------------------------------


def git_env(home: Path) -> dict[str, str]:
    """An isolated git identity: no user config leaks into the repos."""
    config = home / "gitconfig"
    if not config.exists():
        config.write_text(
            "[user]\n\tname = Slipway Tests\n\temail = tests@slipway.invalid\n"
            "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"
        )
    return {**os.environ, "GIT_CONFIG_GLOBAL": str(config), "GIT_CONFIG_NOSYSTEM": "1"}


def git_only(env: dict[str, str]) -> dict[str, str]:
    """The isolated git identity of `git_env`, to add to another environment."""
    return {k: v for k, v in env.items() if k.startswith("GIT_CONFIG")}


def git(cwd: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout


def commit_all(repo: Path, env: dict[str, str], message: str) -> None:
    git(repo, env, "add", "-A")
    git(repo, env, "commit", "-q", "--allow-empty", "-m", message)


def make(repo: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def template_update(
    repo: Path, env: dict[str, str], *copier_args: str
) -> subprocess.CompletedProcess[str]:
    return make(
        repo,
        env,
        "template-update",
        f"COPIER={PY} -m copier",
        f"COPIER_ARGS={' '.join(copier_args)}",
    )


# --- the temporary template repository ---------------------------------------


def _rendered_entry(template: Path, stack: str, wanted: str) -> Path:
    """The template/ entry whose (conditional) path renders to `wanted` (a path
    relative to the generated repo) for a case of STACKS."""
    env = Environment()
    context = {
        "stack": CONFORMANCE_STACKS[stack].name,
        "migration_tool": CONFORMANCE_STACKS[stack].tool,
    }
    found = template
    for part in wanted.split("/"):
        for entry in found.iterdir():
            try:
                name = env.from_string(entry.name).render(**context)
            except TemplateError:  # names built from other context values
                continue
            if name.removesuffix(".jinja") == part:
                found = entry
                break
        else:
            raise AssertionError(f"template/ has no entry rendering to {wanted!r} for {stack}")
    return found


def _rename_answer(tree: Path) -> None:
    """Release 0.1.0 called the question by its old name everywhere."""
    word = re.compile(rf"\b{NEW_NAME}\b")
    rendered = [p for d in ("template", "partials") for p in (tree / d).rglob("*") if p.is_file()]
    files = [tree / "copier.yml", *rendered]
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:  # binary files cannot name a question
            continue
        if word.search(text):
            path.write_text(word.sub(OLD_NAME, text), encoding="utf-8")
    # Conditional file names spell the answer too; deepest paths first.
    for path in sorted((tree / "template").rglob("*"), key=lambda p: -len(p.parts)):
        if word.search(path.name):
            path.rename(path.with_name(word.sub(OLD_NAME, path.name)))


def _make_older_release(tree: Path) -> None:
    template = tree / "template"
    _rename_answer(tree)

    readme = template / "README.md.jinja"
    text = readme.read_text()
    assert "## Template updates\n" in text, "README.md.jinja lost its updates section"
    readme.write_text(
        text.replace("## Template updates\n", f"{OLD_PARAGRAPH}\n## Template updates\n")
    )

    for platform_file in (template / "Makefile.jinja", template / f"{WORKFLOW}.jinja"):
        platform_file.write_text(platform_file.read_text() + OLD_TRAILER)

    (template / RETIRED).write_text("A platform file that release 0.2.0 deleted.\n")

    # Repos generated before the custom components existed: no component, and
    # overlays that do not include one.
    for component in CUSTOM_COMPONENTS:
        shutil.rmtree(template / component)
        overlay = template / Path(component).parent / "kustomization.yaml.jinja"
        text = overlay.read_text()
        assert "  - custom\n" in text, f"{overlay} no longer lists its custom component"
        overlay.write_text(text.replace("  - custom\n", ""))

    pre_commit = template / ".pre-commit-config.yaml.jinja"
    assert pre_commit.is_file(), "the template lost .pre-commit-config.yaml.jinja"
    pre_commit.unlink()

    # Cases of one stack share template files (python and python-golang-migrate
    # share src/): each file is marked once.
    marked: set[Path] = set()
    for stack, case in STACKS.items():
        migrations = _rendered_entry(template, stack, case.migrations_dir)
        owned = [_rendered_entry(template, stack, d) for d in case.owned_dirs]
        files = [p for folder in (*owned, migrations) for p in folder.rglob("*") if p.is_file()]
        # A lock format without comments stays as rendered: the team's tool
        # must still read it (`go get` refuses a go.sum with a foreign line).
        files += [
            _rendered_entry(template, stack, f)
            for f in case.dependency_files
            if Path(f).name not in UNCOMMENTED_LOCKS
        ]
        for path in sorted(set(files) - marked):
            _mark(path, case.comment, SERVICE_MARK)
        marked.update(files)
        # 0.2.0 changes the platform's tool settings.
        for config in case.tool_configs:
            path = _rendered_entry(template, stack, config)
            if path not in marked:
                _mark(path, case.comment, OLD_TOOL_SETTING)
                marked.add(path)


UNCOMMENTED_LOCKS = frozenset({"go.sum"})
_JSON_NAME = re.compile(r"\.json(\{% endif %\})?(\.jinja)?$")


def _mark(path: Path, comment: str, line: str) -> None:
    """Add `line` to a template file as a comment; JSON has no comments, so
    there it is a "//" key (the convention npm and tsc accept)."""
    text = path.read_text(encoding="utf-8")
    if _JSON_NAME.search(path.name):
        assert "{\n" in text, f"{path.name} has no object to mark"
        path.write_text(text.replace("{\n", f'{{\n  "//": "{line}",\n', 1), encoding="utf-8")
    else:
        path.write_text(text + f"{comment} {line}\n", encoding="utf-8")


def _add_migration_step(tree: Path) -> None:
    steps_file = tree / "extensions" / "migrations.yml"
    data = yaml.safe_load(steps_file.read_text()) or {}
    data.setdefault("steps", []).append({"version": "0.2.0", "rename": {OLD_NAME: NEW_NAME}})
    steps_file.write_text(yaml.safe_dump(data, sort_keys=False))


def build_template_repo(
    template_snapshot: Path, tmp_path_factory: pytest.TempPathFactory, update_env: dict[str, str]
) -> Path:
    """Tags 0.1.0, 0.2.0 (= the snapshot other tests render) and 0.3.0."""
    repo = tmp_path_factory.mktemp("slipway-template") / "slipway"
    shutil.copytree(template_snapshot, repo)
    git(repo, update_env, "init", "-q")

    pristine = tmp_path_factory.mktemp("pristine") / "tree"
    shutil.copytree(repo, pristine, ignore=shutil.ignore_patterns(".git"))

    _make_older_release(repo)
    commit_all(repo, update_env, "release 0.1.0")
    git(repo, update_env, "tag", "0.1.0")

    # 0.2.0: the snapshot again (deletions included), plus the migration step.
    for entry in repo.iterdir():
        if entry.name != ".git":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    shutil.copytree(pristine, repo, dirs_exist_ok=True)
    _add_migration_step(repo)
    commit_all(repo, update_env, "release 0.2.0")
    git(repo, update_env, "tag", "0.2.0")

    makefile = repo / "template" / "Makefile.jinja"
    makefile.write_text(makefile.read_text() + "# Release 0.3.0 added this line.\n")
    commit_all(repo, update_env, "release 0.3.0")
    git(repo, update_env, "tag", "0.3.0")
    return repo


# --- generated repos ----------------------------------------------------------


def old_answers(answers: dict[str, Any]) -> dict[str, Any]:
    return {OLD_NAME if k == NEW_NAME else k: v for k, v in answers.items()}


def files_of(root: Path) -> dict[str, Path]:
    return {
        p.relative_to(root).as_posix(): p
        for p in root.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def is_service_owned(relpath: str, stack: str) -> bool:
    owned = STACKS[stack].service_owned
    return any(relpath == o or (o.endswith("/") and relpath.startswith(o)) for o in owned)


def generate(
    template_repo: Path, dst: Path, env: dict[str, str], ref: str, answers: dict[str, Any]
) -> Path:
    run_copy(
        str(template_repo),
        str(dst),
        data=answers,
        vcs_ref=ref,
        defaults=True,
        unsafe=True,
        quiet=True,
    )
    git(dst, env, "init", "-q")
    commit_all(dst, env, f"Generated from Slipway {ref}")
    return dst


def conflict_leftovers(root: Path) -> list[str]:
    found = []
    for rel, path in files_of(root).items():
        if rel.endswith(".rej") or CONFLICT_RE.search(path.read_bytes()):
            found.append(rel)
    return found


@dataclass
class TeamEdits:
    """What the team did in the generated repo before updating."""

    edited: dict[str, str]  # relpath -> content after the edit
    deleted: list[str]
    added: dict[str, str]
    readme_notes: str


@dataclass(frozen=True)
class TeamDependency:
    """A small package the team adds with the stack's own tool, from the
    registries this machine reaches; `name` is how its manifest and lock spell it."""

    name: str
    command: tuple[str, ...]
    code: dict[str, str]  # files that use it, written before the command


TEAM_DEPENDENCIES = {
    "python": TeamDependency("tomli-w", ("uv", "add", "--no-sync", "tomli-w"), {}),
    "typescript": TeamDependency(
        "kleur", ("npm", "install", "--package-lock-only", "--no-audit", "--no-fund", "kleur"), {}
    ),
    # Imported by the team's code first, so `go get` records a direct requirement.
    "go": TeamDependency(
        "github.com/google/uuid",
        ("go", "get", "github.com/google/uuid@v1.6.0"),
        {
            "internal/teamid/teamid.go": (
                "// Package teamid is the team's code, on a dependency the team added.\n"
                "package teamid\n\n"
                'import "github.com/google/uuid"\n\n'
                "// New returns a random id.\n"
                "func New() string { return uuid.NewString() }\n"
            )
        },
    ),
}

# (stack, the dependency files before) -> after: every delivery combo of a
# stack renders the same manifests and locks, so the tool runs once per stack.
_added: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, str]] = {}


def add_team_dependency(repo: Path, stack: str, env: dict[str, str]) -> dict[str, str]:
    """Run the stack's own tool in `repo`; the dependency files it leaves."""
    case = STACKS[stack]
    dependency = TEAM_DEPENDENCIES[CONFORMANCE_STACKS[stack].name]
    for rel, text in dependency.code.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    key = (stack, tuple((rel, (repo / rel).read_text()) for rel in case.dependency_files))
    if key not in _added:
        done = subprocess.run(
            dependency.command,
            cwd=repo,
            env=CONFORMANCE_STACKS[stack].env(env),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, f"{' '.join(dependency.command)}:\n{done.stderr[-3000:]}"
        _added[key] = {rel: (repo / rel).read_text() for rel in case.dependency_files}
    for rel, text in _added[key].items():
        (repo / rel).write_text(text)
    return _added[key]


def make_team_edits(repo: Path, stack: str, tool_env: dict[str, str]) -> TeamEdits:
    case = STACKS[stack]
    edits = TeamEdits(edited={}, deleted=[], added={}, readme_notes="")
    for folder in case.owned_dirs:
        owned = sorted(p for p in (repo / folder).rglob("*") if p.is_file())
        assert len(owned) >= 2, f"expected the {stack} service to ship files under {folder}/"
        first, last = owned[0], owned[-1]
        first.write_text(first.read_text() + f"{case.comment} the team's change\n")
        edits.edited[first.relative_to(repo).as_posix()] = first.read_text()
        last.unlink()
        edits.deleted.append(last.relative_to(repo).as_posix())

    edits.edited.update(add_team_dependency(repo, stack, tool_env))
    edits.added.update(TEAM_DEPENDENCIES[CONFORMANCE_STACKS[stack].name].code)

    migration = f"{case.migrations_dir}/{case.team_migration}"
    edits.added[migration] = f"{case.comment} the team's second migration\n"
    edits.added["local.mk"] = "team-target:\n\t@echo team\n"
    for rel, content in edits.added.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)  # e.g. one folder per migration
        (repo / rel).write_text(content)

    edits.readme_notes = "\n## Team notes\n\nThe on-call rota lives in the team wiki.\n"
    readme = repo / "README.md"
    readme.write_text(readme.read_text() + edits.readme_notes)
    return edits


@dataclass
class Updated:
    repo: Path
    answers: dict[str, Any]  # 0.2.0 names
    before: dict[str, bytes]  # every file as committed before the update
    edits: TeamEdits
    result: subprocess.CompletedProcess[str]


def updater(
    template_repo: Path,
    update_env: dict[str, str],
    tool_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str, str], Updated]:
    """Copy 0.1.0, commit team edits, `make template-update` to 0.2.0 (once per case).

    `tool_env` runs the stacks' own tools (uv, npm, go) for the team's dependency."""
    cache: dict[tuple[str, str], Updated] = {}

    def _updated(stack: str, combo: str) -> Updated:
        if (stack, combo) not in cache:
            answers = {**STACKS[stack].answers, **COMBOS[combo]}
            repo = tmp_path_factory.mktemp(f"updated-{stack}-{combo}") / "service"
            generate(template_repo, repo, update_env, "0.1.0", old_answers(answers))
            edits = make_team_edits(repo, stack, {**tool_env, **git_only(update_env)})
            commit_all(repo, update_env, "Team edits")
            before = {rel: p.read_bytes() for rel, p in files_of(repo).items()}
            result = template_update(repo, update_env, "--vcs-ref", "0.2.0")
            cache[(stack, combo)] = Updated(repo, answers, before, edits, result)
        return cache[(stack, combo)]

    return _updated


def read_answers(repo: Path) -> dict[str, Any]:
    data = yaml.safe_load((repo / ".copier-answers.yml").read_text())
    assert isinstance(data, dict)
    return data


def writable_copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst
