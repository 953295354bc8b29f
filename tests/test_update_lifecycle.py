"""`copier update` end to end: upgrades arrive, team work survives, conflicts are loud.

The three template releases and how each update runs are described in
tests/support/update.py, the harness these tests drive.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.conformance.stacks import STACKS as CONFORMANCE_STACKS
from tests.conftest import RenderFn
from tests.support.deploy import ENVS, build, load_docs
from tests.support.update import (
    ANY_STACK,
    CASES,
    CONFLICT_RE,
    CUSTOM_COMPONENTS,
    NEW_NAME,
    OLD_NAME,
    OLD_PARAGRAPH,
    OLD_TOOL_SETTING,
    OLD_TRAILER,
    PY,
    RETIRED,
    SERVICE_MARK,
    STACKS,
    TEAM_DEPENDENCIES,
    WORKFLOW,
    Updated,
    commit_all,
    conflict_leftovers,
    files_of,
    generate,
    git,
    is_service_owned,
    make,
    old_answers,
    read_answers,
    template_update,
    writable_copy,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("update")]


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
    for component in CUSTOM_COMPONENTS:
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


@pytest.mark.parametrize(("stack", "combo"), CASES)
def test_a_team_dependency_survives_and_new_tool_settings_arrive(
    updated: Callable[[str, str], Updated], render: RenderFn, stack: str, combo: str
) -> None:
    """Manifests and locks are the team's; the platform's tool settings live in
    files of their own, so 0.2.0's new settings arrive without a conflict."""
    run = updated(stack, combo)
    assert run.result.returncode == 0, run.result.stdout + run.result.stderr
    case = STACKS[stack]
    fresh = render(**run.answers)
    dependency = TEAM_DEPENDENCIES[CONFORMANCE_STACKS[stack].name].name
    for rel in case.dependency_files:
        text = (run.repo / rel).read_text()
        assert dependency in run.edits.edited[rel], f"the team's tool did not add it to {rel}"
        assert dependency in text, f"the team's dependency left {rel}"
        assert text == run.edits.edited[rel], f"the update changed the team's {rel}"
    for rel in case.tool_configs:
        assert OLD_TOOL_SETTING in run.before[rel].decode(), f"0.1.0's {rel} was not older"
        assert (run.repo / rel).read_bytes() == (fresh / rel).read_bytes(), f"{rel} is not 0.2.0's"
    assert conflict_leftovers(run.repo) == []


# What shows the team's package installed from the kept lock, per stack.
INSTALLED = {
    "python": [".venv/bin/python", "-c", "import tomli_w"],
    "typescript": ["node", "-e", "require.resolve('kleur')"],
    "go": ["go", "build", "./internal/teamid/"],
}


@pytest.mark.slow
@pytest.mark.parametrize("stack", list(STACKS))
def test_the_kept_lock_still_installs_after_the_update(
    updated: Callable[[str, str], Updated],
    service_env: dict[str, str],
    tmp_path: Path,
    stack: str,
) -> None:
    """The team's manifest and lock, kept through the update, still install
    (`make setup` refuses a lock out of step with its manifest) and meet the
    new release (`make platform-check`)."""
    run = updated(stack, "defaults")
    repo = writable_copy(run.repo, tmp_path / "service")
    # CI=true: setup installs no git hooks (their environments are another
    # test's); the dependencies are what this test is about.
    env = {**CONFORMANCE_STACKS[stack].env(service_env), "CI": "true"}
    for target in ("setup", "platform-check"):
        result = make(repo, env, target)
        assert result.returncode == 0, (
            f"make {target}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    probe = subprocess.run(
        INSTALLED[CONFORMANCE_STACKS[stack].name],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr[-3000:]


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
    staging, production = (repo / f"{c}kustomization.yaml" for c in CUSTOM_COMPONENTS)
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
