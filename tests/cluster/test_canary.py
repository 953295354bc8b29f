"""Canary (replica-weighted, and NGINX): the generated `make deploy` / `make rollback`
on a real control plane with the real Argo Rollouts controller."""

from __future__ import annotations

from tests.cluster.checks import (
    assert_analysis_passed,
    assert_rolls_back_and_forward,
    deploy_ok,
    first_release,
    wait_healthy,
)
from tests.cluster.conftest import CANARY, CLUSTER, ProjectFn
from tests.support.cluster.project import explain

pytestmark = CLUSTER


def test_staging_steps_through_analysis_and_rolls_back(deploy_project: ProjectFn) -> None:
    project = deploy_project("staging", **CANARY)
    app = project.app
    v1, v2 = first_release(project)

    second = deploy_ok(project, v2)
    # Staging has only timed pauses: nothing for the script to promote.
    assert "promoting" not in second.stdout, explain(second, project)
    assert project.selected_image(app) == v2, explain(second, project)
    assert project.selected_image(f"{app}-canary") == v2
    assert_analysis_passed(project, second, {"Step"})
    # The background analysis measured until the rollout completed.
    assert any(
        r["metadata"]["labels"].get("rollout-type") == "Background" for r in project.analysis_runs()
    ), explain(second, project)

    assert_rolls_back_and_forward(project, v1, v2)


def test_production_gate_is_promoted_by_the_script(deploy_project: ProjectFn) -> None:
    project = deploy_project("production", **CANARY)
    _, v2 = first_release(project)

    second = deploy_ok(project, v2)
    assert "Paused - CanaryPauseStep" in second.stdout, explain(second, project)
    assert "promoting" in second.stdout, explain(second, project)
    assert project.selected_image(project.app) == v2
    assert_analysis_passed(project, second, {"Step"})
    wait_healthy(project)


def test_nginx_canary_progresses_without_an_ingress_controller(deploy_project: ProjectFn) -> None:
    project = deploy_project("staging", **{**CANARY, "traffic_router": "nginx"})
    app = project.app
    _, v2 = first_release(project)

    second = deploy_ok(project, v2)
    assert project.selected_image(app) == v2, explain(second, project)
    # The controller managed its canary copy of the stable Ingress.
    ingresses = {i["metadata"]["name"]: i for i in project.get("ingress")["items"]}
    assert app in ingresses, sorted(ingresses)
    canary = [i for n, i in ingresses.items() if n != app]
    assert canary, f"no canary Ingress was created: {sorted(ingresses)}"
    annotations = canary[0]["metadata"].get("annotations", {})
    assert annotations.get("nginx.ingress.kubernetes.io/canary") == "true", annotations
