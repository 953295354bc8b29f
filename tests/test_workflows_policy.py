"""The CI/CD skill's rules, checked on every rendered combo's workflows.

One named test per row of the skill's anti-pattern table and per item of its
Critical/Major/Minor tier table (several rows name the same rule, so they
share a checker), then the hardening rules of issue 3. Each checker returns
the violations it found, per combo, so a failure names the combo and the job.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from extensions.slipway import load_pins
from tests.conftest import RenderFn
from tests.support.combos import (
    WORKFLOWS,
    Rendered,
    make_calls,
    render_all,
    runs,
    steps,
)

pytestmark = pytest.mark.xdist_group("workflows")

ENVIRONMENTS = ("staging", "production")
# The parallel quality gates ci.yml must have (issue 3).
GATES = (
    "lint",
    "typecheck",
    "unit",
    "integration",
    "migrations",
    "contract",
    "audit",
    "secret-scan",
    "image-scan",
    "pipeline",
    "conflicts",
)
SHA_PIN = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+)(?:/[\w./-]+)?@(?P<sha>[0-9a-f]{40})$")
CLOUD_OF = {"ecr": "aws", "gar": "gcp", "acr": "azure", "eks": "aws", "gke": "gcp", "aks": "azure"}
# The only secrets a combo may use, each a documented long-lived credential.
ALLOWED_SECRETS = {
    ("registry", "dockerhub"): {"DOCKERHUB_TOKEN", "DOCKERHUB_READ_TOKEN"},
    ("cluster", "kubeconfig"): {"KUBECONFIG"},
    ("migration_runner", "runner"): {"DATABASE_URL"},
}
Checker = Callable[[Rendered], Iterator[str]]


@pytest.fixture(scope="module")
def rendered(render: RenderFn) -> list[Rendered]:
    return render_all(render)


def assert_holds(rendered: list[Rendered], *checkers: Checker) -> None:
    problems = [f"{r.id}: {p}" for r in rendered for check in checkers for p in check(r)]
    assert not problems, "\n".join(problems)


def jobs(r: Rendered, workflow: str) -> dict[str, dict[str, Any]]:
    return dict(r.workflow(workflow)["jobs"])


def all_jobs(r: Rendered) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for wf in WORKFLOWS:
        for name, job in jobs(r, wf).items():
            yield wf, name, job


def all_steps(r: Rendered) -> Iterator[tuple[str, dict[str, Any]]]:
    for wf, name, job in all_jobs(r):
        for step in steps(job):
            yield f"{wf}/{name}", step
    for step in r.setup_action()["runs"]["steps"]:
        yield "setup action", step


def calls(job: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    return [c for run in runs(job) for c in make_calls(run)]


def targets(job: dict[str, Any]) -> list[str]:
    return [t for t, _ in calls(job)]


def clouds(r: Rendered, *questions: str) -> set[str]:
    return {CLOUD_OF[r.answer(q)] for q in questions if r.answer(q) in CLOUD_OF}


def rollout_docs(r: Rendered) -> list[dict[str, Any]]:
    path = r.root / "deploy/base/rollout.yaml"
    return [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "Rollout"]


# --- checkers -----------------------------------------------------------------


def migration_gate_before_deploy(r: Rendered) -> Iterator[str]:
    # One job per environment runs the gate, then the rollout (issue 12: one
    # lock across both); a failing gate step stops the job before `deploy`.
    deploy = r.workflow("deploy")
    gate = "migrate-job" if r.answer("migration_runner") == "job" else "migrate"
    for env in ENVIRONMENTS:
        job = deploy["jobs"][f"deploy-{env}"]
        got = targets(job)
        if got != [gate, "deploy"]:
            yield f"deploy-{env} runs make {got}, expected [{gate}, deploy]"
        for step in steps(job):
            skippable = "if" in step or "continue-on-error" in step
            if "make " in str(step.get("run", "")) and skippable:
                yield f"deploy-{env}: step {step.get('name')!r} may be skipped or may fail on"
        if job.get("environment") != env:
            yield f"deploy-{env} is not scoped to the {env} environment"


def no_migrations_at_startup(r: Rendered) -> Iterator[str]:
    # The image's entry point, the service code and the Rollout's containers
    # never run migrations: only the gated step does.
    dockerfile = (r.root / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if re.match(r"\s*(ENTRYPOINT|CMD)\b", line) and re.search(r"alembic|migrat", line, re.I):
            yield f"Dockerfile starts with migrations: {line.strip()}"
    for path in (r.root / "src").rglob("*.py"):
        text = path.read_text()
        if re.search(
            r"^\s*(from alembic|import alembic)|command\.upgrade|create_all\(", text, re.M
        ):
            yield f"{path.relative_to(r.root)} migrates or creates the schema"
    for doc in rollout_docs(r):
        pod = doc["spec"]["template"]["spec"]
        for c in pod.get("initContainers", []) + pod.get("containers", []):
            if re.search(r"alembic|migrat", " ".join(c.get("command", []) + c.get("args", []))):
                yield f"Rollout container {c['name']} runs migrations"


def sha_tagged_images(r: Rendered) -> Iterator[str]:
    build = jobs(r, "deploy")["build"]
    push = next(s for s in steps(build) if "build-push-action" in str(s.get("uses")))
    tags = str(push["with"]["tags"]).split(",")
    if tags != ["${{ steps.registry.outputs.image }}:${{ github.sha }}"]:
        yield f"the pushed image is tagged {tags}, not with the commit SHA only"
    if build["outputs"]["image"] != (
        "${{ steps.registry.outputs.image }}@${{ steps.build.outputs.digest }}"
    ):
        yield "the build job does not hand on the image by digest"
    for wf in WORKFLOWS:
        text = r.workflow_path(wf).read_text()
        for n, line in enumerate(text.splitlines(), 1):
            if re.search(r"\blatest\b", line.split("#")[0]):
                yield f"{wf}.yml:{n} mentions latest: {line.strip()}"
    for wf, name, job in all_jobs(r):
        for svc in (job.get("services") or {}).values():
            if not re.search(r"@sha256:[0-9a-f]{64}$", str(svc["image"])):
                yield f"{wf}/{name} service image {svc['image']} is not pinned by digest"


def deploys_by_digest(r: Rendered) -> Iterator[str]:
    deploy = r.workflow("deploy")
    for name, job in deploy["jobs"].items():
        for step in steps(job):
            for target, args in make_calls(str(step.get("run", ""))):
                if target in ("deploy", "migrate-job"):
                    env = step.get("env") or {}
                    if args:
                        yield f"{name}: make {target} takes {sorted(args)} on its command line"
                    if env.get("IMAGE") != "${{ needs.build.outputs.image }}":
                        yield f"{name}: make {target} IMAGE is {env.get('IMAGE')}"
                    if env.get("ENV") != name.split("-", 1)[1]:
                        yield f"{name}: make {target} ENV={env.get('ENV')}"


def rollback_path(r: Rendered) -> Iterator[str]:
    wf = r.workflow("rollback")
    inputs = wf["on"]["workflow_dispatch"]["inputs"]
    if inputs["environment"].get("options") != list(ENVIRONMENTS):
        yield f"rollback environments are {inputs['environment'].get('options')}"
    if inputs["to"].get("required"):
        yield "the rollback target must be optional (empty: previous revision)"
    (job,) = wf["jobs"].values()
    if job.get("environment") != "${{ inputs.environment }}":
        yield "the rollback job is not scoped to the chosen environment"
    rollback = [(s, t, a) for s in steps(job) for t, a in make_calls(str(s.get("run", "")))]
    if [(t, a) for _, t, a in rollback] != [("rollback", {})]:
        yield f"rollback runs {[(t, a) for _, t, a in rollback]}"
    elif rollback[0][0]["env"] != {"ENV": "${{ inputs.environment }}", "TO": "${{ inputs.to }}"}:
        yield "make rollback does not take the dispatch inputs through env"
    text = r.workflow_path("rollback").read_text()
    if not re.search(r"forward-only", text) or "expand/contract" not in text:
        yield "rollback.yml does not document forward-only, expand/contract migrations"
    for env in ENVIRONMENTS:
        if "deploy" not in targets(jobs(r, "deploy")[f"deploy-{env}"]):
            yield f"deploy-{env} does not roll out through make deploy (the undo path)"


def health_gated_switch(r: Rendered) -> Iterator[str]:
    for env in ENVIRONMENTS:
        job = jobs(r, "deploy")[f"deploy-{env}"]
        if targets(job)[-1:] != ["deploy"] or "run" not in steps(job)[-1]:
            yield f"deploy-{env}: `make deploy` (which waits for health) is not the last step"
        if "timeout-minutes" not in job:
            yield f"deploy-{env} has no timeout"
    for doc in rollout_docs(r):
        strategy = doc["spec"]["strategy"]
        containers = doc["spec"]["template"]["spec"]["containers"]
        if not all("readinessProbe" in c for c in containers):
            yield "a Rollout container has no readiness probe"
        if "blueGreen" in strategy and "prePromotionAnalysis" not in strategy["blueGreen"]:
            yield "blue-green switches traffic without a pre-promotion analysis"
        if "canary" in strategy:
            canary = strategy["canary"]
            gated = "analysis" in canary or any("analysis" in s for s in canary.get("steps", []))
            if not gated:
                yield "canary shifts traffic without analysis"
            full = [i for i, s in enumerate(canary.get("steps", [])) if s.get("setWeight") == 100]
            first = next(
                (i for i, s in enumerate(canary.get("steps", [])) if "analysis" in s), None
            )
            if full and (first is None or full[0] < first):
                yield "canary sends all traffic before an analysis step"


def parallel_gates(r: Rendered) -> Iterator[str]:
    ci = jobs(r, "ci")
    # The API contract job exists where the stack's Makefile offers the gate
    # (extensions/stacks.yml `contract_gate`).
    offers_contract = re.search(r"^contract:", (r.root / "Makefile").read_text(), re.MULTILINE)
    missing = (set(GATES) if offers_contract else set(GATES) - {"contract"}) - set(ci)
    if missing:
        yield f"ci.yml lacks the gate jobs {sorted(missing)}"
    for name, job in ci.items():
        if job.get("needs"):
            yield f"ci/{name} waits for {job['needs']}: gates must run in parallel"


def cancel_stale_runs(r: Rendered) -> Iterator[str]:
    concurrency = r.workflow("ci").get("concurrency") or {}
    if "github.event.pull_request.number" not in str(concurrency.get("group")):
        yield f"ci concurrency group {concurrency.get('group')!r} is not per pull request"
    if concurrency.get("cancel-in-progress") != "${{ github.event_name == 'pull_request' }}":
        yield "ci does not cancel stale pull-request runs (and only those)"


def least_privilege(r: Rendered) -> Iterator[str]:
    registry = r.answer("registry")
    for wf in WORKFLOWS:
        if r.workflow(wf).get("permissions") != {"contents": "read"}:
            yield f"{wf}.yml top-level permissions are {r.workflow(wf).get('permissions')}"
    for wf, name, job in all_jobs(r):
        perms = job.get("permissions", {})
        if not isinstance(perms, dict):
            yield f"{wf}/{name} uses the shorthand permissions {perms!r}"
            continue
        writes = {k for k, v in perms.items() if v == "write"}
        allowed = set()
        if (wf, name) == ("deploy", "build"):
            allowed = {"id-token"} | ({"packages"} if registry == "ghcr" else set())
        elif (wf, name) == ("deploy", "attest"):
            allowed = {"id-token", "attestations"}
        elif clouds(r, "registry", "cluster") and (wf, name) != ("ci", name):
            allowed = {"id-token"}
        if writes - allowed:
            yield f"{wf}/{name} may write {sorted(writes - allowed)}"
        if perms.get("packages") == "write" and (wf, name) != ("deploy", "build"):
            yield f"{wf}/{name} has packages: write (only the push job may)"


def actions_pinned(r: Rendered) -> Iterator[str]:
    actions = load_pins()["actions"]
    texts = [r.workflow_path(wf).read_text() for wf in WORKFLOWS]
    texts.append((r.root / ".github/actions/setup/action.yml").read_text())
    lines = [line.strip() for text in texts for line in text.splitlines()]
    for where, step in all_steps(r):
        uses = step.get("uses")
        if uses is None or uses.startswith("./"):
            continue
        m = SHA_PIN.match(uses)
        if not m:
            yield f"{where}: `uses: {uses}` is not pinned to a full commit SHA"
            continue
        pin = actions.get(m["repo"], {})
        if m["sha"] != pin.get("sha"):
            yield f"{where}: {uses} is not the SHA pinned in pins.yml"
        if f"uses: {uses} # {pin.get('tag')}" not in lines:
            yield f"{where}: {uses} lacks its `# {pin.get('tag')}` comment"


def no_pull_request_target(r: Rendered) -> Iterator[str]:
    for path in r.workflow_files():  # every workflow, whoever renders it
        on = r.workflow(path.stem).get("on") or []
        triggers = {on} if isinstance(on, str) else set(on)
        if triggers & {"pull_request_target", "workflow_run"}:
            yield f"{path.name} runs on {sorted(triggers)}: secrets reachable from fork code"


def oidc_for_clouds(r: Rendered) -> Iterator[str]:
    allowed = {n for (q, v), names in ALLOWED_SECRETS.items() if r.answer(q) == v for n in names}
    for wf in WORKFLOWS:
        used = set(re.findall(r"secrets\.(\w+)", r.workflow_path(wf).read_text()))
        if used - allowed:
            yield f"{wf}.yml uses the secrets {sorted(used - allowed)}"
    for where, step in all_steps(r):
        inputs = step.get("with") or {}
        uses = str(step.get("uses", ""))
        if "configure-aws-credentials" in uses and (
            "role-to-assume" not in inputs or "aws-access-key-id" in inputs
        ):
            yield f"{where}: AWS sign-in without OIDC"
        if "google-github-actions/auth" in uses and (
            "workload_identity_provider" not in inputs or "credentials_json" in inputs
        ):
            yield f"{where}: Google sign-in without workload identity federation"
        if "Azure/login" in uses and ("client-id" not in inputs or "creds" in inputs):
            yield f"{where}: Azure sign-in without OIDC"
    for wf, name, job in all_jobs(r):
        signs_in = any(
            re.search(r"configure-aws-credentials|google-github-actions/auth|Azure/login", u)
            for u in [str(s.get("uses", "")) for s in steps(job)]
        )
        attests = any("actions/attest" in str(s.get("uses", "")) for s in steps(job))
        has_token = (job.get("permissions") or {}).get("id-token") == "write"
        if has_token != (signs_in or attests):
            yield f"{wf}/{name}: id-token: write is {has_token}, OIDC use is {signs_in or attests}"
    expected = clouds(r, "registry", "cluster")
    signed = {
        cloud
        for _, step in all_steps(r)
        for cloud, action in (
            ("aws", "configure-aws-credentials"),
            ("gcp", "google-github-actions/auth"),
            ("azure", "Azure/login"),
        )
        if action in str(step.get("uses", ""))
    }
    if signed != expected:
        yield f"signs in to {sorted(signed)}, the answers need {sorted(expected)}"


def secret_scan_wired(r: Rendered) -> Iterator[str]:
    job = jobs(r, "ci").get("secret-scan", {})
    checkout = steps(job)[0] if steps(job) else {}
    if (checkout.get("with") or {}).get("fetch-depth") != 0:
        yield "the secret scan does not see the whole history (fetch-depth: 0)"
    if targets(job) != ["secret-scan"]:
        yield f"the secret-scan job runs make {targets(job)}"
    install = " ".join(runs(job))
    if "gitleaks" not in install or "sha256sum --check" not in install:
        yield "gitleaks is not installed checksum-verified"
    if "gitleaks git" not in (r.root / "Makefile").read_text():
        yield "make secret-scan does not run gitleaks over the git history"


def image_scan_wired(r: Rendered) -> Iterator[str]:
    job = jobs(r, "ci").get("image-scan", {})
    uses = [str(s.get("uses", "")).split("@")[0] for s in steps(job)]
    if uses[-2:] != ["docker/build-push-action", "aquasecurity/trivy-action"]:
        yield f"image-scan steps are {uses}: build then trivy expected"
        return
    build, scan = steps(job)[-2]["with"], steps(job)[-1]["with"]
    if scan.get("image-ref") != build.get("tags") or not build.get("load"):
        yield "trivy does not scan the image just built"
    if str(scan.get("exit-code")) != "1":
        yield "trivy findings do not fail the job"
    if scan.get("version") != load_pins()["tools"]["trivy"]:
        yield f"trivy version {scan.get('version')} is not the pinned one"


# --- the anti-pattern table, one test per row ----------------------------------


def test_antipattern_migrations_in_app_startup(rendered: list[Rendered]) -> None:
    """Explicit gated migration step before deploy."""
    assert_holds(rendered, migration_gate_before_deploy, no_migrations_at_startup)


def test_antipattern_latest_image_tag(rendered: list[Rendered]) -> None:
    """SHA-tagged immutable images."""
    assert_holds(rendered, sha_tagged_images, deploys_by_digest)


def test_antipattern_deploy_with_no_rollback_path(rendered: list[Rendered]) -> None:
    """Blue-green / canary with instant rollback."""
    assert_holds(rendered, rollback_path)


def test_antipattern_traffic_switched_before_health_check(rendered: list[Rendered]) -> None:
    """Health-gated traffic shift."""
    assert_holds(rendered, health_gated_switch)


def test_antipattern_sequential_quality_gates(rendered: list[Rendered]) -> None:
    """Parallel quality-gate jobs."""
    assert_holds(rendered, parallel_gates)


def test_antipattern_stale_runs_piling_up(rendered: list[Rendered]) -> None:
    """concurrency: cancel-in-progress."""
    assert_holds(rendered, cancel_stale_runs)


def test_antipattern_default_over_permissioned_token(rendered: list[Rendered]) -> None:
    """Least-privilege permissions: contents: read."""
    assert_holds(rendered, least_privilege)


def test_antipattern_action_on_moving_tag(rendered: list[Rendered]) -> None:
    """Pin to a full commit SHA."""
    assert_holds(rendered, actions_pinned)


def test_antipattern_secrets_via_pull_request_target(rendered: list[Rendered]) -> None:
    """Use pull_request; never pull_request_target."""
    assert_holds(rendered, no_pull_request_target)


def test_antipattern_long_lived_cloud_keys(rendered: list[Rendered]) -> None:
    """OIDC federation to the cloud."""
    assert_holds(rendered, oidc_for_clouds)


# --- the tier table, one test per item ---------------------------------------------


def test_critical_no_rollback_path(rendered: list[Rendered]) -> None:
    assert_holds(rendered, rollback_path, health_gated_switch)


def test_critical_migrations_unsafe_on_startup_without_gate(rendered: list[Rendered]) -> None:
    assert_holds(rendered, no_migrations_at_startup, migration_gate_before_deploy)


def test_critical_secrets_not_scanned(rendered: list[Rendered]) -> None:
    assert_holds(rendered, secret_scan_wired)


def test_critical_secrets_exposed_via_pull_request_target(rendered: list[Rendered]) -> None:
    assert_holds(rendered, no_pull_request_target)


def test_major_latest_tags(rendered: list[Rendered]) -> None:
    assert_holds(rendered, sha_tagged_images)


def test_major_no_health_gated_traffic_switch(rendered: list[Rendered]) -> None:
    assert_holds(rendered, health_gated_switch)


def test_major_default_over_permissioned_token(rendered: list[Rendered]) -> None:
    assert_holds(rendered, least_privilege)


def test_major_third_party_actions_on_moving_tags(rendered: list[Rendered]) -> None:
    assert_holds(rendered, actions_pinned)


def test_minor_sequential_ci_jobs(rendered: list[Rendered]) -> None:
    assert_holds(rendered, parallel_gates)


def test_minor_image_scan_not_wired(rendered: list[Rendered]) -> None:
    assert_holds(rendered, image_scan_wired)


def test_minor_no_cancel_in_progress(rendered: list[Rendered]) -> None:
    assert_holds(rendered, cancel_stale_runs)


# --- the checkers can fail --------------------------------------------------------


def broken_copy(r: Rendered, tmp_path: Path, edits: dict[str, list[tuple[str, str]]]) -> Rendered:
    """A copy of a render with textual edits applied to some of its files."""
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


@pytest.mark.parametrize(
    ("checker", "edits"),
    [
        (
            migration_gate_before_deploy,
            {".github/workflows/deploy.yml": [("run: make migrate-job\n", "run: echo skipped\n")]},
        ),
        (
            no_migrations_at_startup,
            {"Dockerfile": [("ENTRYPOINT [", 'ENTRYPOINT ["alembic", "upgrade", "head", ')]},
        ),
        (
            sha_tagged_images,
            {".github/workflows/deploy.yml": [(":${{ github.sha }}", ":latest")]},
        ),
        (
            deploys_by_digest,
            {
                ".github/workflows/deploy.yml": [
                    ("IMAGE: ${{ needs.build.outputs.image }}", "IMAGE: app:${{ github.sha }}")
                ]
            },
        ),
        (
            rollback_path,
            {
                ".github/workflows/rollback.yml": [
                    ("run: make rollback\n", 'run: make rollback TO="$TO"\n')
                ]
            },
        ),
        (
            health_gated_switch,
            {"deploy/base/rollout.yaml": [("readinessProbe:", "readinessProbeX:")]},
        ),
        (
            parallel_gates,
            {
                ".github/workflows/ci.yml": [
                    ("    name: Type-check\n", "    name: Type-check\n    needs: lint\n")
                ]
            },
        ),
        (
            cancel_stale_runs,
            {".github/workflows/ci.yml": [("github.event_name == 'pull_request'", "false")]},
        ),
        (
            least_privilege,
            {
                ".github/workflows/ci.yml": [
                    ("permissions:\n  contents: read", "permissions: write-all")
                ]
            },
        ),
        (
            actions_pinned,
            {".github/workflows/ci.yml": [("actions/checkout@", "actions/checkout@v7 # ")]},
        ),
        (
            no_pull_request_target,
            {".github/workflows/ci.yml": [("  pull_request:\n", "  pull_request_target:\n")]},
        ),
        (
            oidc_for_clouds,
            {".github/workflows/deploy.yml": [("role-to-assume", "aws-access-key-id")]},
        ),
        (
            secret_scan_wired,
            {".github/workflows/ci.yml": [("          fetch-depth: 0\n", "")]},
        ),
        (
            image_scan_wired,
            {".github/workflows/ci.yml": [('exit-code: "1"', 'exit-code: "0"')]},
        ),
    ],
    ids=lambda v: v.__name__ if callable(v) else "",
)
def test_the_checker_finds_a_planted_violation(
    render: RenderFn, tmp_path: Path, checker: Checker, edits: dict[str, list[tuple[str, str]]]
) -> None:
    # An EKS/ECR combo has every step the edits touch (AWS sign-in included).
    answers = {"registry": "ecr", "cluster": "eks", "migration_runner": "job"}
    good = Rendered(answers, render(**answers))
    assert list(checker(good)) == []
    assert list(checker(broken_copy(good, tmp_path, edits))) != []
