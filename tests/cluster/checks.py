"""Assertions shared by the cluster tests: what the cluster must show after an entry point ran."""

from __future__ import annotations

import subprocess
from typing import Any

from tests.support.cluster.project import DeployProject, digest_image, explain


def wait_healthy(project: DeployProject, timeout: int = 120) -> None:
    done = project.cluster.kubectl(
        "wait", f"rollout/{project.app}", "-n", project.namespace,
        "--for=jsonpath={.status.phase}=Healthy", f"--timeout={timeout}s",
        check=False, timeout=timeout + 10,
    )  # fmt: skip
    assert done.returncode == 0, f"rollout never became Healthy: {done.stderr}\n" + (
        project.diagnostics()
    )


def deploy_ok(project: DeployProject, image: str) -> subprocess.CompletedProcess[str]:
    done = project.make("deploy", IMAGE=image)
    assert done.returncode == 0, explain(done, project)
    assert "Rollout is healthy" in done.stdout, explain(done, project)
    rollout = project.rollout()
    assert rollout["status"]["phase"] == "Healthy", explain(done, project)
    assert project.rollout_image() == image
    assert project.ready_pods(image) >= 1, explain(done, project)
    return done


def first_release(project: DeployProject) -> tuple[str, str]:
    """Two image digests of the app, the first deployed and serving."""
    v1, v2 = digest_image(project.app, 1), digest_image(project.app, 2)
    first = deploy_ok(project, v1)
    assert project.selected_image(project.app) == v1, explain(first, project)
    return v1, v2


def assert_rolls_back_and_forward(project: DeployProject, previous: str, current: str) -> None:
    """`make rollback` returns to the previous release; `TO=<digest>` to any."""
    back = project.make("rollback")
    assert back.returncode == 0, explain(back, project)
    assert project.selected_image(project.app) == previous, explain(back, project)
    assert project.rollout_image() == previous
    to_digest = project.make("rollback", TO=current)
    assert to_digest.returncode == 0, explain(to_digest, project)
    assert project.selected_image(project.app) == current, explain(to_digest, project)


def _runs_by_type(project: DeployProject) -> dict[str, list[dict[str, Any]]]:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for run in project.analysis_runs():
        kind = run["metadata"].get("labels", {}).get("rollout-type", "?")
        by_type.setdefault(kind, []).append(run)
    return by_type


def assert_analysis_passed(
    project: DeployProject, done: subprocess.CompletedProcess[str], kinds: set[str]
) -> None:
    """The controller ran the real templates against the healthy service and they passed."""
    by_type = _runs_by_type(project)
    assert kinds <= set(by_type), f"AnalysisRuns by type: {sorted(by_type)}\n" + explain(
        done, project
    )
    for kind in kinds:
        run = by_type[kind][-1]
        assert run["status"]["phase"] == "Successful", explain(done, project)
        values = [
            m.get("value")
            for result in run["status"]["metricResults"]
            for m in result.get("measurements", [])
        ]
        # The service's own answers as the controller records them (JSON):
        # /readyz's status and /items' limit.
        assert values and set(values) <= {'"ready"', "1"}, values


def assert_aborted_and_undone(
    project: DeployProject,
    done: subprocess.CompletedProcess[str],
    stable: str,
    service: str,
) -> None:
    assert done.returncode != 0, explain(done, project)
    assert "the rollout failed; see the analysis results above" in done.stderr, explain(
        done, project
    )
    # The failed run and its metric, as the script prints them.
    runs = [r for r in project.analysis_runs() if r["status"]["phase"] in {"Failed", "Error"}]
    assert runs, explain(done, project)
    printed = done.stdout.split("==> Analysis results", 1)
    assert len(printed) == 2, explain(done, project)
    assert any(r["metadata"]["name"] in printed[1] for r in runs), explain(done, project)
    assert "(successful 0" in printed[1] or "errors" in printed[1], explain(done, project)
    # Traffic never left the stable version, and the desired state is it again.
    assert project.selected_image(service) == stable, explain(done, project)
    assert project.rollout_image() == stable, explain(done, project)
    wait_healthy(project)
    assert project.selected_image(service) == stable


def assert_aborted_by_the_controller(
    project: DeployProject, done: subprocess.CompletedProcess[str]
) -> list[str]:
    """The controller itself aborted the rollout because an analysis failed
    (before the script's own `abort`, which adds no reason): its RolloutAborted
    event names the metric, and the plugin's watch printed the aborted state.
    Returns the event messages."""
    events = project.get(
        "events",
        "--field-selector",
        f"involvedObject.kind=Rollout,involvedObject.name={project.app},reason=RolloutAborted",
    )["items"]
    messages = [str(e["message"]) for e in events]
    assert any(
        m.startswith("Rollout aborted update to revision ") and ': Metric "' in m for m in messages
    ), f"RolloutAborted events: {messages}\n" + explain(done, project)
    assert "Degraded - RolloutAborted" in done.stdout, explain(done, project)
    return messages
