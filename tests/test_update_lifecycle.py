"""`copier update` end to end: upgrades arrive, team work survives, conflicts are loud.

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

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
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
from tests.conftest import RenderFn
from tests.support.deploy import ENVS, build, load_docs

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("update")]

ROOT = Path(__file__).resolve().parent.parent
NEW_NAME, OLD_NAME = "deploy_strategy", "rollout_strategy"
OLD_PARAGRAPH = "Release 0.1.0 said this about updates; 0.2.0 dropped it.\n"
OLD_TRAILER = "# Release 0.1.0 ended this file with this line.\n"
WORKFLOW = ".github/workflows/template-update.yml"
RETIRED = "RETIRED-IN-0.2.0.md"
SERVICE_MARK = "service line from release 0.1.0"
CONFLICT_RE = re.compile(rb"^(<<<<<<<|>>>>>>>)( |$)", re.MULTILINE)
PY = sys.executable


# Service-owned paths that platform files include: an update creates them when
# missing, and otherwise never changes them (copier.yml `_skip_if_exists`).
SERVICE_OWNED_IF_MISSING = tuple(f"deploy/overlays/{env}/custom/" for env in ENVS)


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


def _stack_case(stack: Stack) -> StackCase:
    profile = stack_profile(stack.tool, stack.name)
    return StackCase(
        answers=stack.answers,
        comment=profile["comment"],
        owned_dirs=tuple(p.rstrip("/") for p in profile["service_owned"] if p.endswith("/")),
        migrations_dir=profile["migrations_dir"].rstrip("/"),
        team_migration=profile["team_migration_example"],
        service_owned=(*service_owned(stack.tool, stack.name), *SERVICE_OWNED_IF_MISSING),
    )


# Every stack the registry ships.
STACKS = {name: _stack_case(stack) for name, stack in CONFORMANCE_STACKS.items()}
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
CASES = [pytest.param(stack, combo, id=f"{stack}-{combo}") for stack in STACKS for combo in COMBOS]


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


def _rendered_top_level(template: Path, stack: str, wanted: str) -> Path:
    """The template/ entry whose (conditional) name renders to `wanted` for a stack."""
    env = Environment()
    for entry in template.iterdir():
        try:
            name = env.from_string(entry.name).render(stack=stack)
        except TemplateError:  # names built from other context values
            continue
        if name == wanted:
            return entry
    raise AssertionError(f"template/ has no entry rendering to {wanted!r} for {stack}")


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
    for component in SERVICE_OWNED_IF_MISSING:
        shutil.rmtree(template / component)
        overlay = template / Path(component).parent / "kustomization.yaml.jinja"
        text = overlay.read_text()
        assert "  - custom\n" in text, f"{overlay} no longer lists its custom component"
        overlay.write_text(text.replace("  - custom\n", ""))

    pre_commit = template / ".pre-commit-config.yaml"
    assert pre_commit.is_file(), "the template lost .pre-commit-config.yaml"
    pre_commit.unlink()

    for stack, case in STACKS.items():
        head, _, rest = case.migrations_dir.partition("/")
        migrations = _rendered_top_level(template, stack, head) / rest
        owned = [_rendered_top_level(template, stack, d) for d in case.owned_dirs]
        for folder in (*owned, migrations):
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                with path.open("a", encoding="utf-8") as handle:
                    handle.write(f"{case.comment} {SERVICE_MARK}\n")


def _add_migration_step(tree: Path) -> None:
    steps_file = tree / "extensions" / "migrations.yml"
    data = yaml.safe_load(steps_file.read_text()) or {}
    data.setdefault("steps", []).append({"version": "0.2.0", "rename": {OLD_NAME: NEW_NAME}})
    steps_file.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture(scope="session")
def update_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return git_env(tmp_path_factory.mktemp("git-home"))


@pytest.fixture(scope="session")
def template_repo(
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


def make_team_edits(repo: Path, stack: str) -> TeamEdits:
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


@pytest.fixture(scope="session")
def updated(
    template_repo: Path, update_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str, str], Updated]:
    """Copy 0.1.0, commit team edits, `make template-update` to 0.2.0 (once per case)."""
    cache: dict[tuple[str, str], Updated] = {}

    def _updated(stack: str, combo: str) -> Updated:
        if (stack, combo) not in cache:
            answers = {**STACKS[stack].answers, **COMBOS[combo]}
            repo = tmp_path_factory.mktemp(f"updated-{stack}-{combo}") / "service"
            generate(template_repo, repo, update_env, "0.1.0", old_answers(answers))
            edits = make_team_edits(repo, stack)
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


# --- the upgrade path ---------------------------------------------------------


@pytest.mark.parametrize(("stack", "combo"), CASES)
def test_update_succeeds_and_the_upgrade_arrives(
    updated: Callable[[str, str], Updated], stack: str, combo: str
) -> None:
    run = updated(stack, combo)
    assert run.result.returncode == 0, run.result.stdout + run.result.stderr
    repo = run.repo
    assert read_answers(repo)["_commit"] == "0.2.0"
    assert (repo / ".pre-commit-config.yaml").is_file(), "a file new in 0.2.0 did not arrive"
    assert not (repo / RETIRED).exists(), "a platform file 0.2.0 deleted is still there"
    assert OLD_PARAGRAPH not in (repo / "README.md").read_text()
    assert OLD_TRAILER not in (repo / "Makefile").read_text()
    assert OLD_TRAILER not in (repo / WORKFLOW).read_text()


@pytest.mark.parametrize(("stack", "combo"), CASES)
def test_every_team_edit_survives(
    updated: Callable[[str, str], Updated], stack: str, combo: str
) -> None:
    run = updated(stack, combo)
    repo = run.repo
    for rel, content in {**run.edits.edited, **run.edits.added}.items():
        assert (repo / rel).read_text() == content, f"the team's {rel} changed"
    for rel in run.edits.deleted:
        assert not (repo / rel).exists(), f"{rel}, deleted by the team, came back"
    readme = (repo / "README.md").read_text()
    assert readme.endswith(run.edits.readme_notes), "the team's README notes were lost"


@pytest.mark.parametrize(("stack", "combo"), CASES)
def test_service_owned_files_are_never_touched(
    updated: Callable[[str, str], Updated], stack: str, combo: str
) -> None:
    """Release 0.2.0 changed every service-owned file; none of that arrives."""
    run = updated(stack, combo)
    after = files_of(run.repo)
    owned_before = {rel: data for rel, data in run.before.items() if is_service_owned(rel, stack)}
    assert owned_before, "no service-owned files were generated"
    for rel, data in owned_before.items():
        assert rel in after, f"the update deleted the service's {rel}"
        assert after[rel].read_bytes() == data, f"the update changed the service's {rel}"
    initial = [r for r in owned_before if r.startswith(STACKS[stack].migrations_dir + "/")]
    assert len(initial) >= 2, "expected the initial migration and the team's second one"
    assert all(SERVICE_MARK.encode() in owned_before[r] for r in initial if "team" not in r)


@pytest.mark.parametrize(("stack", "combo"), CASES)
def test_the_update_creates_the_custom_components_older_repos_lack(
    updated: Callable[[str, str], Updated], render: RenderFn, stack: str, combo: str
) -> None:
    """0.2.0's overlays include components a 0.1.0 repo does not have: the
    update must create them, or the overlays would no longer build."""
    run = updated(stack, combo)
    fresh = render(**run.answers)
    for component in SERVICE_OWNED_IF_MISSING:
        rel = f"{component}kustomization.yaml"
        assert rel not in run.before
        assert (run.repo / rel).read_bytes() == (fresh / rel).read_bytes()
    for env in ENVS:
        kinds = {d["kind"] for d in load_docs(build(run.repo, env))}
        assert {"Rollout", "HorizontalPodAutoscaler"} <= kinds


@pytest.mark.parametrize(("stack", "combo"), CASES)
def test_no_conflicts_are_left(
    updated: Callable[[str, str], Updated], update_env: dict[str, str], stack: str, combo: str
) -> None:
    run = updated(stack, combo)
    assert conflict_leftovers(run.repo) == []
    assert git(run.repo, update_env, "diff", "--name-only", "--diff-filter=U") == ""
    check = make(run.repo, update_env, "check-conflicts")
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize(("stack", "combo"), CASES)
def test_platform_files_equal_a_fresh_copy(
    updated: Callable[[str, str], Updated], render: RenderFn, stack: str, combo: str
) -> None:
    run = updated(stack, combo)
    fresh = files_of(render(**run.answers))
    after = files_of(run.repo)

    stale = sorted(rel for rel in set(after) - set(fresh) if not is_service_owned(rel, stack))
    assert stale == [], f"files a fresh 0.2.0 copy does not have: {stale}"
    for rel, fresh_path in fresh.items():
        if is_service_owned(rel, stack):
            continue
        assert rel in after, f"{rel} is missing after the update"
        got, want = after[rel].read_bytes(), fresh_path.read_bytes()
        if rel == ".copier-answers.yml":
            drop = {"_commit", "_src_path"}
            got_answers = {k: v for k, v in read_answers(run.repo).items() if k not in drop}
            want_answers = {k: v for k, v in yaml.safe_load(want).items() if k not in drop}
            assert got_answers == want_answers
        elif rel == "README.md":
            assert got == want + run.edits.readme_notes.encode()
        else:
            assert got == want, f"{rel} differs from a fresh 0.2.0 copy"
        assert os.access(after[rel], os.X_OK) == os.access(fresh_path, os.X_OK), rel


def test_check_update_reports_what_the_workflow_reads(
    updated: Callable[[str, str], Updated], update_env: dict[str, str]
) -> None:
    """The template-update workflow parses exactly these keys with jq."""
    run = updated(ANY_STACK, "defaults")
    done = subprocess.run(
        [PY, "-m", "copier", "check-update", "--output-format", "json"],
        cwd=run.repo,
        env=update_env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout) == {
        "update_available": True,
        "current_version": "0.2.0",
        "latest_version": "0.3.0",
    }


# --- answer migrations ----------------------------------------------------------


def test_the_renamed_answer_is_migrated_from_0_1_0(updated: Callable[[str, str], Updated]) -> None:
    run = updated(ANY_STACK, "canary-ecr")
    answers = read_answers(run.repo)
    assert answers[NEW_NAME] == "canary", "the team's old answer fell back to the default"
    assert OLD_NAME not in answers
    output = run.result.stdout + run.result.stderr
    assert f"0.2.0: renamed answer '{OLD_NAME}' to '{NEW_NAME}'" in output


def test_the_migration_does_not_run_again_after_0_2_0(
    updated: Callable[[str, str], Updated],
    update_env: dict[str, str],
    tmp_path: Path,
) -> None:
    run = updated(ANY_STACK, "canary-ecr")
    repo = writable_copy(run.repo, tmp_path / "service")
    commit_all(repo, update_env, "Take Slipway 0.2.0")

    result = template_update(repo, update_env, "--vcs-ref", "0.3.0")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "0.2.0 -> 0.3.0: nothing to migrate" in output
    assert "renamed answer" not in output
    answers = read_answers(repo)
    assert answers["_commit"] == "0.3.0"
    assert answers[NEW_NAME] == "canary"
    assert (repo / "Makefile").read_text().endswith("# Release 0.3.0 added this line.\n")


# --- switching answers through an update --------------------------------------


TEAM_COMPONENT = """\
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
patches:
  - target: {kind: Rollout, name: demo-service}
    patch: |-
      - op: add
        path: /spec/template/spec/containers/0/env/-
        value: {name: LOG_LEVEL, value: debug}
"""

# Blue-green to canary and GHCR to ECR change files' content; the NGINX router
# adds a file and the runner migration gate removes a folder, so the switch
# also has to create and delete.
SWITCH = {
    NEW_NAME: "canary",
    "traffic_router": "nginx",
    "registry": "ecr",
    "migration_runner": "runner",
}


def test_switching_strategy_and_registry_leaves_no_stale_files(
    updated: Callable[[str, str], Updated],
    render: RenderFn,
    update_env: dict[str, str],
    tmp_path: Path,
) -> None:
    run = updated(ANY_STACK, "defaults")
    repo = writable_copy(run.repo, tmp_path / "service")
    commit_all(repo, update_env, "Take Slipway 0.2.0")
    # The team customises staging and deletes production's component.
    staging, production = (repo / f"{c}kustomization.yaml" for c in SERVICE_OWNED_IF_MISSING)
    staging.write_text(TEAM_COMPONENT)
    production.unlink()
    commit_all(repo, update_env, "Customise the deploy")
    cluster = read_answers(repo)["cluster"]  # kept: only what is passed changes
    before = files_of(repo)

    data = [f"--data={key}={value}" for key, value in SWITCH.items()]
    result = template_update(repo, update_env, "--vcs-ref", "0.2.0", *data)
    assert result.returncode == 0, result.stdout + result.stderr

    fresh = files_of(render(**SWITCH, cluster=cluster))
    after = files_of(repo)
    platform_fresh = {r for r in fresh if not is_service_owned(r, ANY_STACK)}
    assert {r for r in after if not is_service_owned(r, ANY_STACK)} == platform_fresh
    assert set(before) - set(after), "the switch should have removed the old variant's files"
    assert set(after) - set(before), "the switch should have added the new variant's files"
    for rel in platform_fresh - {"README.md", ".copier-answers.yml"}:
        assert after[rel].read_bytes() == fresh[rel].read_bytes(), f"{rel} kept the old variant"
    assert after["README.md"].read_bytes() == (
        fresh["README.md"].read_bytes() + run.edits.readme_notes.encode()
    )
    answers = read_answers(repo)
    assert {key: answers[key] for key in SWITCH} == SWITCH
    for rel, content in run.edits.edited.items():
        assert (repo / rel).read_text() == content
    assert conflict_leftovers(repo) == []

    # The team's component is kept as is (not the canary/NGINX variant a fresh
    # copy gets); the deleted one is re-created, as the overlay includes it.
    assert staging.read_text() == TEAM_COMPONENT
    production_rel = production.relative_to(repo).as_posix()
    assert after[production_rel].read_bytes() == fresh[production_rel].read_bytes()
    staged = load_docs(build(repo, "staging"))
    (rollout,) = [d for d in staged if d["kind"] == "Rollout"]
    assert {"name": "LOG_LEVEL", "value": "debug"} in rollout["spec"]["template"]["spec"][
        "containers"
    ][0]["env"]
    assert "canary" in rollout["spec"]["strategy"]
    assert "kind: Ingress" in production.read_text()  # rendered for the new answers
    assert [d for d in load_docs(build(repo, "production")) if d["kind"] == "Ingress"]


# --- bad input -------------------------------------------------------------------


def test_an_invalid_answer_fails_clearly_and_leaves_the_tree_as_it_was(
    template_repo: Path, update_env: dict[str, str], tmp_path: Path
) -> None:
    """The answer migration has already rewritten the answers file when Copier
    refuses the value: the target must put everything back."""
    repo = generate(template_repo, tmp_path / "service", update_env, "0.1.0", {})
    before = (repo / ".copier-answers.yml").read_text()
    result = template_update(repo, update_env, "--vcs-ref", "0.2.0", "--data=registry=nope")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Invalid choice for 'registry': 'nope' is not in" in output
    assert "the tree is back as it was" in output
    assert git(repo, update_env, "status", "--porcelain") == ""
    assert (repo / ".copier-answers.yml").read_text() == before


def test_a_dirty_tree_is_refused_and_left_alone(
    updated: Callable[[str, str], Updated], update_env: dict[str, str], tmp_path: Path
) -> None:
    run = updated(ANY_STACK, "defaults")
    repo = writable_copy(run.repo, tmp_path / "service")  # the update is not committed
    status = git(repo, update_env, "status", "--porcelain")
    assert status
    result = template_update(repo, update_env, "--vcs-ref", "0.3.0")
    assert result.returncode != 0
    assert "commit or stash your changes first; nothing was changed" in result.stderr
    assert git(repo, update_env, "status", "--porcelain") == status
    assert read_answers(repo)["_commit"] == "0.2.0"


# --- conflicts ------------------------------------------------------------------


@pytest.fixture
def conflicted(
    template_repo: Path, update_env: dict[str, str], tmp_path: Path
) -> Iterator[tuple[Path, subprocess.CompletedProcess[str]]]:
    """A 0.1.0 repo whose team edited the paragraph that 0.2.0 deletes, updated.

    The team also deleted a platform file that 0.2.0 changed."""
    # Stack-neutral: the conflict is in the README every stack shares.
    answers = old_answers(next(iter(STACKS.values())).answers)
    repo = generate(template_repo, tmp_path / "service", update_env, "0.1.0", answers)
    readme = repo / "README.md"
    edited = OLD_PARAGRAPH.replace("0.2.0 dropped it", "our team reworded it")
    readme.write_text(readme.read_text().replace(OLD_PARAGRAPH, edited))
    # A team that wants no automatic update PRs deletes that workflow.
    (repo / WORKFLOW).unlink()
    commit_all(repo, update_env, "Reword a platform paragraph, drop a workflow")
    yield repo, template_update(repo, update_env, "--vcs-ref", "0.2.0")


def test_a_conflicting_edit_fails_the_update_loudly(
    conflicted: tuple[Path, subprocess.CompletedProcess[str]], update_env: dict[str, str]
) -> None:
    repo, result = conflicted
    output = result.stdout + result.stderr
    assert result.returncode != 0, "make template-update passed despite a conflict"
    assert "README.md" in output and "check-conflicts" in output
    assert conflict_leftovers(repo) == ["README.md"]
    assert not (repo / WORKFLOW).exists(), "a platform file the team deleted came back"
    # What the template-update workflow reads to list conflicts in its PR.
    unmerged = git(repo, update_env, "diff", "--name-only", "--diff-filter=U").split()
    assert unmerged == ["README.md"]

    check = make(repo, update_env, "check-conflicts")
    assert check.returncode != 0
    assert "README.md" in check.stdout

    # Resolving (here: taking the template's side) makes the gate pass again.
    text = (repo / "README.md").read_text()
    resolved = re.sub(
        r"^<<<<<<< before updating\n.*?^=======\n(.*?)^>>>>>>> after updating\n",
        r"\1",
        text,
        flags=re.MULTILINE | re.DOTALL,
    )
    assert resolved != text
    (repo / "README.md").write_text(resolved)
    check = make(repo, update_env, "check-conflicts")
    assert check.returncode == 0, check.stdout + check.stderr


# --- the template-update workflow's own steps, run for real -------------------------


def run_workflow_step(
    render: RenderFn, repo: Path, step: str, tmp_path: Path, **env: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, str], Path]:
    """Run one `run:` step of the rendered workflow the way a runner does."""
    workflow = yaml.safe_load((render() / WORKFLOW).read_text())
    [script] = [s["run"] for s in workflow["jobs"]["update"]["steps"] if s.get("name") == step]
    outputs, summary = tmp_path / "output", tmp_path / "summary"
    outputs.write_text("")
    runner_env = {
        **os.environ,
        **{k: str(v) for k, v in workflow["env"].items()},
        "GITHUB_OUTPUT": str(outputs),
        "GITHUB_STEP_SUMMARY": str(summary),
        "RUNNER_TEMP": str(tmp_path),
        **env,
    }
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=repo,
        env=runner_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    values = dict(line.split("=", 1) for line in outputs.read_text().splitlines() if "=" in line)
    return done, values, summary


def test_workflow_lists_conflicts_for_its_pull_request(
    conflicted: tuple[Path, subprocess.CompletedProcess[str]],
    render: RenderFn,
    update_env: dict[str, str],
    tmp_path: Path,
) -> None:
    repo, _ = conflicted
    done, outputs, _ = run_workflow_step(
        render, repo, "Look for conflicts", tmp_path, CURRENT="0.1.0", LATEST="0.2.0"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert outputs["found"] == "true"
    body = (tmp_path / "pr-body.md").read_text()
    assert "0.1.0 → 0.2.0" in body
    assert "## Conflicts to resolve before merging\n\n- `README.md`\n" in body
    # The pull request can still be opened, markers and all: the action's
    # first git command (create-pull-request v8, create-or-update-branch.ts)
    # is this checkout, which git refuses while any index entry is unmerged.
    git(repo, update_env, "checkout", "--progress", "-B", "pr-temp", "HEAD", "--")
    assert " M README.md" in git(repo, update_env, "status", "--porcelain").splitlines()
    assert CONFLICT_RE.search((repo / "README.md").read_bytes())


def test_workflow_finds_no_conflicts_after_a_clean_update(
    updated: Callable[[str, str], Updated], render: RenderFn, tmp_path: Path
) -> None:
    run = updated(ANY_STACK, "defaults")
    done, outputs, _ = run_workflow_step(
        render, run.repo, "Look for conflicts", tmp_path, CURRENT="0.1.0", LATEST="0.2.0"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert outputs["found"] == "false"
    assert "Conflicts" not in (tmp_path / "pr-body.md").read_text()


def test_workflow_stops_when_an_update_changes_workflows(
    updated: Callable[[str, str], Updated], render: RenderFn, tmp_path: Path
) -> None:
    """0.2.0 changed the template-update workflow: GITHUB_TOKEN could not push it."""
    run = updated(ANY_STACK, "defaults")
    step = "Stop if the update changes workflows"
    done, _, summary = run_workflow_step(render, run.repo, step, tmp_path, LATEST="0.2.0")
    assert done.returncode == 1
    assert "GITHUB_TOKEN cannot push" in done.stdout
    assert f"    M {WORKFLOW}" in summary.read_text()
    assert "make template-update" in summary.read_text()


def test_workflow_goes_on_when_no_workflow_changes(
    updated: Callable[[str, str], Updated],
    render: RenderFn,
    update_env: dict[str, str],
    tmp_path: Path,
) -> None:
    run = updated(ANY_STACK, "defaults")
    repo = writable_copy(run.repo, tmp_path / "service")
    commit_all(repo, update_env, "Take Slipway 0.2.0")
    (repo / "Makefile").write_text((repo / "Makefile").read_text() + "# an update's change\n")
    step = "Stop if the update changes workflows"
    done, _, summary = run_workflow_step(render, repo, step, tmp_path, LATEST="0.3.0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not summary.exists()
