"""A release whose analysis fails: the real controller aborts the rollout,
and the generated `make deploy` undoes it, prints the analysis and exits
non-zero, whatever the strategy."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cluster.checks import (
    assert_aborted_and_undone,
    assert_aborted_by_the_controller,
    first_release,
)
from tests.cluster.conftest import BLUE_GREEN, CANARY, CLUSTER, ProjectFn

pytestmark = CLUSTER


@pytest.mark.parametrize("answers", [BLUE_GREEN, CANARY], ids=["blue-green", "canary"])
def test_failed_analysis_aborts_undoes_and_reports(
    deploy_project: ProjectFn, answers: dict[str, Any]
) -> None:
    project = deploy_project("staging", **answers)
    v1, v2 = first_release(project)

    project.analyse_with(project.targets.broken)
    failed = project.make("deploy", IMAGE=v2)
    assert_aborted_and_undone(project, failed, stable=v1, service=project.app)
    # The abort itself: the controller's, on the failed metric of the broken service.
    messages = assert_aborted_by_the_controller(project, failed)
    assert any('"ready"' in m or '"list-items"' in m for m in messages), messages
    # The failed release is scaled away (or never got traffic and the stable one is back).
    assert project.ready_pods(v2) == 0 or project.rollout()["status"]["phase"] == "Healthy"
