"""deploy/rollout.sh's fast negative paths and races, against a stand-in kubectl.

The working paths (deploy, promotion at gates, abort-and-undo on a failed
analysis, rollbacks, the migration Job) run against a real control plane and
the real Argo Rollouts controller in tests/cluster/. What stays here is what a
real cluster cannot produce on demand in seconds: timeouts, a timed pause
ending between two calls, client log noise, a rollout left aborted, refused
input.

The stand-in (tests/support/fake_kubectl.py) plays back what the Argo Rollouts
v1.9.1 plugin prints and returns (pkg/kubectl-argo-rollouts/cmd/status: the
status line on stdout, `Error: ...` on stderr, exit 1 for a degraded rollout
or an expired --timeout) and records every call, so each test asserts the
exact order of commands. `kubectl kustomize` is the real one: what the script
applies is the real build.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RenderFn
from tests.support.deploy import IMAGE, load_docs
from tests.support.fake_kubectl import Reply, Rule, calls, install
from tests.support.tools import VENV_BIN, tool_env

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("deploy-manifests")]

APP = "demo-service"
TIMEOUT_ERR = "Error: Rollout status watch exceeded timeout\n"
ABORTED = (
    "RolloutAborted: Rollout aborted update to revision 2: "
    'Metric "ready" assessed Failed due to failed (1) > failureLimit (0)'
)
# What the controller sets when a rollout's first ReplicaSet never becomes
# available (utils/conditions: TimedOutReason, ReplicaSetTimeOutMessage).
TIMED_OUT = f'ProgressDeadlineExceeded: ReplicaSet "{APP}-6d4f9c7b8" has timed out progressing.'


def healthy() -> Reply:
    return Reply(out="Healthy\n")


def still(status: str) -> Reply:
    """A status watch whose --timeout ran out while the rollout was in `status`."""
    return Reply(out=f"{status}\n", err=TIMEOUT_ERR, rc=1)


def degraded(message: str = ABORTED) -> Reply:
    return Reply(
        out=f"Degraded - {message}\n",
        err=f"Error: The rollout is in a degraded state with message: {message}\n",
        rc=1,
    )


ANALYSIS_OUT = (
    f'{APP}-6d4f9c7b8-2-pre  Failed  Metric "ready" assessed Failed due to failed (1) > '
    "failureLimit (0)\n    ready: Failed (successful 0, failed 1, errors 0) \n"
)
COMMON = [
    Rule(["apply"], [Reply(out=f"rollout.argoproj.io/{APP} configured\n")]),
    Rule(["argo", "rollouts", "promote"], [Reply(out=f"rollout '{APP}' promoted\n")]),
    Rule(["argo", "rollouts", "abort"], [Reply(out=f"rollout '{APP}' aborted\n")]),
    Rule(["argo", "rollouts", "undo"], [Reply(out=f"rollout '{APP}' undo\n")]),
    Rule(["get", "analysisruns"], [Reply(out=ANALYSIS_OUT)]),
    # Never aborted: the field is absent, and kubectl's jsonpath prints nothing.
    Rule(["jsonpath={.status.abort}"], [Reply(out="")]),
]


def status(*replies: Reply) -> Rule:
    return Rule(["argo", "rollouts", "status"], list(replies))


def verb(argv: list[str]) -> str:
    if argv[0] == "argo":
        return f"argo {argv[2]}"
    if argv[0] in {"get", "delete"}:
        return f"{argv[0]} {argv[1]}"
    return argv[0]


class Run:
    def __init__(self, result: subprocess.CompletedProcess[str], recorded: list[dict[str, Any]]):
        self.rc = result.returncode
        self.out = result.stdout
        self.err = result.stderr
        self.calls = recorded
        self.verbs = [verb(c["argv"]) for c in recorded]

    def applied(self) -> list[dict[str, Any]]:
        return [d for c in self.calls if "stdin" in c for d in load_docs(c["stdin"])]

    def argv(self, wanted: str) -> list[list[str]]:
        return [c["argv"] for c in self.calls if verb(c["argv"]) == wanted]


def run(
    project: Path,
    tmp_path: Path,
    args: list[str],
    rules: list[Rule],
    make: bool = False,
    **env: str,
) -> Run:
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    install(bin_dir, state, VENV_BIN / "kubectl", rules)
    environment = tool_env(bin_dir)
    environment.update({"ROLLOUT_POLL": "5", "MIGRATE_POLL": "0", **env})
    cmd = (
        ["make", "--no-print-directory", *args]
        if make
        else [str(project / "deploy" / "rollout.sh"), *args]
    )
    result = subprocess.run(
        cmd, cwd=project, capture_output=True, text=True, env=environment, check=False, timeout=60
    )
    return Run(result, calls(state))


@pytest.fixture(scope="module")
def blue_green(render: RenderFn) -> Path:
    return render(deploy_strategy="blue-green", migration_runner="job")


@pytest.fixture(scope="module")
def canary(render: RenderFn) -> Path:
    return render(deploy_strategy="canary", traffic_router="none", migration_runner="job")


def test_shellcheck_passes(blue_green: Path) -> None:
    result = subprocess.run(
        [str(VENV_BIN / "shellcheck"), "--severity=style", "deploy/rollout.sh"],
        cwd=blue_green,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def production_canary_steps(canary: Path) -> list[dict[str, Any]]:
    text = subprocess.run(
        [str(canary / "deploy" / "rollout.sh"), "manifests", "production", IMAGE],
        capture_output=True,
        text=True,
        env=tool_env(),
        check=True,
    ).stdout
    rollout = next(d for d in load_docs(text) if d["kind"] == "Rollout")
    return list(rollout["spec"]["strategy"]["canary"]["steps"])


def step_lookups(steps: list[dict[str, Any]], *indexes: int) -> list[Rule]:
    """`kubectl get rollout -o jsonpath=...` answered from the real steps, as
    kubectl prints them: a map as compact JSON, a missing field as nothing.
    Both `.pause` and `.pause.duration` are answered, so a check that looks at
    the duration alone (empty for a gate and for a step that is no pause)
    runs, and fails the tests, instead of stopping at an unknown call."""
    rules = [Rule(["jsonpath={.status.currentStepIndex}"], [Reply(out=str(i)) for i in indexes])]
    for i, s in enumerate(steps):
        pause = s.get("pause")
        printed = "" if pause is None else json.dumps(pause, separators=(",", ":"))
        duration = str((pause or {}).get("duration", ""))
        path = f"{{.spec.strategy.canary.steps[{i}].pause"
        rules.append(Rule([f"jsonpath={path}}}"], [Reply(out=printed)]))
        rules.append(Rule([f"jsonpath={path}.duration}}"], [Reply(out=duration)]))
    return rules


def test_canary_gate_is_promoted_but_timed_pauses_are_not(canary: Path, tmp_path: Path) -> None:
    """Step lookups are answered from the production overlay's real steps."""
    steps = production_canary_steps(canary)
    timed = next(i for i, s in enumerate(steps) if s.get("pause", {}).get("duration"))
    gate = next(i for i, s in enumerate(steps) if s.get("pause") == {})
    watch = status(still("Paused - CanaryPauseStep"), still("Paused - CanaryPauseStep"), healthy())
    rules = [*COMMON, *step_lookups(steps, timed, gate), watch]
    r = run(canary, tmp_path, ["deploy", "production", IMAGE], rules)
    assert r.rc == 0, r.err
    assert r.verbs == [
        "kustomize", "apply", "get rollout",
        "argo status", "get rollout", "get rollout",  # timed pause: wait
        "argo status", "get rollout", "get rollout", "argo promote",  # gate: promote
        "argo status",
    ]  # fmt: skip


def test_a_timed_pause_that_just_ended_is_not_promoted(canary: Path, tmp_path: Path) -> None:
    """The watch ended on a timed pause, which then ended by itself: the
    current step is the next one, and promoting a rollout that is not paused
    skips its current step (v1.9.1 cmd/promote: currentStepIndex + 1)."""
    steps = production_canary_steps(canary)
    after = next(
        i + 1
        for i, s in enumerate(steps[:-1])
        if s.get("pause", {}).get("duration") and "pause" not in steps[i + 1]
    )
    watch = status(still("Paused - CanaryPauseStep"), healthy())
    rules = [*COMMON, *step_lookups(steps, after), watch]
    r = run(canary, tmp_path, ["deploy", "production", IMAGE], rules)
    assert r.rc == 0, r.err
    assert "argo promote" not in r.verbs
    assert r.verbs == [
        "kustomize", "apply", "get rollout", "argo status", "get rollout", "get rollout",
        "argo status",
    ]  # fmt: skip


def test_client_log_lines_do_not_hide_the_gate(blue_green: Path, tmp_path: Path) -> None:
    """The plugin's client-go logs go to stderr (klog at INFO, v1.9.1 main.go),
    after the status line and before the final error: still a gate."""
    klog = (
        "W1126 10:00:00.000000       1 reflector.go:470] watch of *v1.Pod ended with: "
        'an error on the server ("unable to decode an event from the watch stream")\n'
    )
    paused = Reply(out="Paused - BlueGreenPause\n", err=klog + TIMEOUT_ERR, rc=1)
    r = run(
        blue_green, tmp_path, ["deploy", "production", IMAGE], [*COMMON, status(paused, healthy())]
    )
    assert r.rc == 0, r.err
    assert r.verbs == [
        "kustomize", "apply", "get rollout", "argo status", "argo promote", "argo status",
    ]  # fmt: skip


def test_timeout_aborts_and_undoes(blue_green: Path, tmp_path: Path) -> None:
    watch = status(still("Progressing - more replicas need to be updated"))
    r = run(
        blue_green, tmp_path, ["deploy", "staging", IMAGE], [*COMMON, watch],
        ROLLOUT_TIMEOUT="3", ROLLOUT_POLL="1",
    )  # fmt: skip
    assert r.rc == 1
    assert r.verbs == [
        "kustomize",
        "apply",
        "get rollout",
        *["argo status"] * 3,
        "argo abort",
        "get analysisruns",
        "argo undo",
    ]
    assert all(argv[-2:] == ["--timeout", "1s"] for argv in r.argv("argo status"))
    assert "not healthy after 3s" in r.out


def test_a_rollout_left_aborted_is_retried_before_the_watch(
    blue_green: Path, tmp_path: Path
) -> None:
    """A failed rollback to a digest leaves the rollout aborted; applying the
    same version again changes nothing, so only `retry` restarts it (else the
    watch reads the old Degraded status and the deploy can never succeed)."""
    ns = f"{APP}-staging"
    rules = [
        Rule(["jsonpath={.status.abort}"], [Reply(out="true")]),
        # The controller clears abortedAt once it has taken the retry up.
        Rule(["jsonpath={.status.abortedAt}"], [Reply(out="2026-11-26T10:00:00Z"), Reply()]),
        Rule(["argo", "rollouts", "retry"], [Reply(out=f"rollout '{APP}' retried\n")]),
        *COMMON,
        status(healthy()),
    ]
    for name, args, before in (
        ("deploy", ["deploy", "staging", IMAGE], ["kustomize", "apply"]),
        ("rollback", ["rollback", "staging", "2"], ["argo undo"]),
    ):
        r = run(blue_green, tmp_path / name, args, rules)
        assert r.rc == 0, r.err
        assert r.verbs == [
            *before, "get rollout", "argo retry", "get rollout", "get rollout", "argo status",
        ]  # fmt: skip
        assert r.argv("argo retry") == [["argo", "rollouts", "retry", "rollout", APP, "-n", ns]]
        assert "retrying it" in r.out


def test_a_failed_first_deploy_says_nothing_was_undone(blue_green: Path, tmp_path: Path) -> None:
    """The first deploy has one revision only: the plugin's undo fails (v1.9.1
    cmd/undo: "no revision found"), and the script says what that means."""
    undo_error = f'Error: no revision found for rollout "{APP}"\n'
    rules = [
        Rule(["argo", "rollouts", "undo"], [Reply(err=undo_error, rc=1)]),
        *COMMON,
        status(degraded(TIMED_OUT)),
    ]
    r = run(blue_green, tmp_path, ["deploy", "production", IMAGE], rules)
    assert r.rc == 1
    assert r.verbs[-3:] == ["argo abort", "get analysisruns", "argo undo"]
    assert TIMED_OUT in r.out and undo_error in r.err
    assert "nothing was undone" in r.err and "first deploy" in r.err
    assert "rollout failed" in r.err


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/acme/demo-service:latest",
        "ghcr.io/acme/demo-service:3f9c2a1",
        "ghcr.io/acme/demo-service",
        "ghcr.io/acme/demo-service@sha256:1234",
        "ghcr.io/acme/demo-service@sha256:" + "A" * 64,
        "ghcr.io/acme/demo-service@sha256:" + "0" * 64,
        "",
    ],
)
def test_image_not_pinned_by_digest_is_refused(
    blue_green: Path, tmp_path: Path, image: str
) -> None:
    for command in ("deploy", "migrate"):
        r = run(blue_green, tmp_path / command, [command, "staging", image], COMMON)
        assert r.rc == 2
        assert "not pinned by digest" in r.err or "placeholder digest" in r.err
        assert r.calls == [], "nothing may reach the cluster"


def test_unknown_environment_and_usage_are_refused(blue_green: Path, tmp_path: Path) -> None:
    r = run(blue_green, tmp_path / "env", ["deploy", "prod", IMAGE], COMMON)
    assert r.rc == 2 and "unknown environment 'prod'" in r.err and r.calls == []
    r = run(blue_green, tmp_path / "usage", ["launch"], COMMON)
    assert r.rc == 2 and "usage: deploy/rollout.sh deploy" in r.err and r.calls == []


@pytest.mark.parametrize(("name", "value"), [("ROLLOUT_TIMEOUT", "10m"), ("ROLLOUT_POLL", "0")])
def test_bad_timing_settings_are_refused(
    blue_green: Path, tmp_path: Path, name: str, value: str
) -> None:
    settings: dict[str, str] = {name: value}
    r = run(blue_green, tmp_path, ["deploy", "staging", IMAGE], COMMON, False, **settings)
    assert r.rc == 2 and name in r.err and r.calls == []


def job_rules(*conditions: str) -> list[Rule]:
    return [
        *COMMON,
        Rule(["delete", "job"], [Reply()]),
        Rule(["get", "job"], [Reply(out=c) for c in conditions]),
        Rule(["logs"], [Reply(out="[pod/x/migrate] Running upgrade  -> 0001, create items\n")]),
    ]


def test_migrate_fails_after_its_deadline(blue_green: Path, tmp_path: Path) -> None:
    r = run(blue_green, tmp_path, ["migrate", "staging", IMAGE], job_rules(""), MIGRATE_TIMEOUT="0")
    assert r.rc == 1
    assert r.verbs == ["delete job", "kustomize", "apply", "get job", "logs"]
    assert "did not finish within 0s" in r.err


def test_migrate_is_refused_where_the_runner_migrates(render: RenderFn, tmp_path: Path) -> None:
    project = render(deploy_strategy="blue-green", migration_runner="runner")
    r = run(project, tmp_path, ["migrate", "staging", IMAGE], COMMON)
    assert r.rc == 2 and "make migrate" in r.err and r.calls == []


def test_rollback_failures(blue_green: Path, tmp_path: Path) -> None:
    """Rolling back to the previous revision, a revision number and a digest
    works on the real cluster (tests/cluster); these are the failure paths."""
    # A rollback that fails is aborted but never undone (that would return to
    # the version being rolled back from).
    r = run(
        blue_green, tmp_path / "failing", ["rollback", "staging"], [*COMMON, status(degraded())]
    )
    assert r.rc == 1 and r.verbs == [
        "argo undo", "get rollout", "argo status", "argo abort", "get analysisruns",
    ]  # fmt: skip

    r = run(blue_green, tmp_path / "bad", ["rollback", "staging", "latest"], COMMON)
    assert r.rc == 2 and "neither a revision number" in r.err and r.calls == []


def test_make_targets_refuse_bad_input_before_any_call(blue_green: Path, tmp_path: Path) -> None:
    """`make deploy|rollback|migrate-job` against a cluster: tests/cluster."""
    r = run(
        blue_green,
        tmp_path / "tag",
        ["deploy", "ENV=staging", "IMAGE=demo:latest"],
        COMMON,
        make=True,
    )
    assert r.rc != 0 and "not pinned by digest" in r.err and r.calls == []
    # Workflow inputs reach the script as arguments, never as shell code.
    hostile = '3"; echo INJECTED; "'
    args = ["rollback", "ENV=staging", f"TO={hostile}"]
    r = run(blue_green, tmp_path / "hostile", args, COMMON, make=True)
    assert r.rc != 0 and "INJECTED" not in r.out and r.calls == []
    assert f"rollback target '{hostile}'" in r.err


def test_readme_explains_promotion_rollback_and_migrations(render: RenderFn) -> None:
    for answers in ({"deploy_strategy": "blue-green"}, {"deploy_strategy": "canary"}):
        readme = (render(**answers) / "README.md").read_text()
        section = readme.split("## Deploying", 1)[1].split("\n## ", 1)[0]
        assert "slipway:section deploy" not in readme
        for phrase in (
            "What triggers an automatic rollback",
            "Rolling back by hand",
            "make rollback",
        ):
            assert phrase in section
        assert re.search(r"expand/contract", section)
        # `undo` takes the second-newest ReplicaSet revision (v1.9.1 cmd/undo),
        # which after an undone failed deploy is the failed version.
        assert re.search(r"second-newest\s+revision", section)
        assert ("Blue-green" if answers["deploy_strategy"] == "blue-green" else "Canary") in section
