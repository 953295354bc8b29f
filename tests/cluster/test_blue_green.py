"""Blue-green: the generated `make deploy` / `make rollback` on a real control plane
with the real Argo Rollouts controller, its web analysis calling the real service."""

from __future__ import annotations

from tests.cluster.checks import (
    assert_analysis_passed,
    assert_rolls_back_and_forward,
    deploy_ok,
    first_release,
    wait_healthy,
)
from tests.cluster.conftest import BLUE_GREEN, CLUSTER, ProjectFn
from tests.support.cluster.project import explain

pytestmark = CLUSTER


def test_staging_promotes_after_analysis_and_rolls_back(deploy_project: ProjectFn) -> None:
    project = deploy_project("staging", **BLUE_GREEN)
    app = project.app
    v1, v2 = first_release(project)
    assert project.analysis_runs() == [], "a first deploy has nothing to analyse against"

    second = deploy_ok(project, v2)
    # Staging promotes itself once the pre-promotion analysis passed: the
    # script never had to.
    assert "promoting" not in second.stdout, explain(second, project)
    assert project.selected_image(app) == v2, explain(second, project)
    assert_analysis_passed(project, second, {"PrePromotion", "PostPromotion"})

    assert_rolls_back_and_forward(project, v1, v2)
    assert project.selected_image(f"{app}-preview") == v2


def test_production_pauses_for_the_script_to_promote(deploy_project: ProjectFn) -> None:
    project = deploy_project("production", **BLUE_GREEN)
    app = project.app
    v1, v2 = first_release(project)

    second = deploy_ok(project, v2)
    assert "Paused - BlueGreenPause" in second.stdout, explain(second, project)
    assert "promoting" in second.stdout, explain(second, project)
    assert project.selected_image(app) == v2
    assert_analysis_passed(project, second, {"PrePromotion", "PostPromotion"})

    # Back to revision 1 while its ReplicaSet is still up (scaleDownDelaySeconds):
    # the controller switches the active Service back at once, with no new
    # analysis and no gate (what the real controller does; a stand-in cannot say).
    runs = len(project.analysis_runs())
    back = project.make("rollback", TO="1")
    assert back.returncode == 0, explain(back, project)
    assert "promoting" not in back.stdout, explain(back, project)
    assert project.selected_image(app) == v1, explain(back, project)
    assert len(project.analysis_runs()) == runs
    wait_healthy(project)
