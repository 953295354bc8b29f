"""The migration gate: the generated `make migrate-job` runs a real Job on a real
control plane (kwok completes or fails its pod), before `make deploy`."""

from __future__ import annotations

from typing import Any

from tests.cluster.checks import deploy_ok
from tests.cluster.conftest import BLUE_GREEN, CLUSTER, ProjectFn
from tests.support.cluster.project import DeployProject, digest_image, explain

pytestmark = CLUSTER


def _job(project: DeployProject, image: str) -> dict[str, Any]:
    name = f"{project.app}-migrate-{image.rsplit(':', 1)[1][:12]}"
    return project.get("job", name)  # type: ignore[no-any-return]


def _conditions(job: dict[str, Any]) -> set[str]:
    return {c["type"] for c in job["status"].get("conditions", []) if c["status"] == "True"}


def test_a_successful_migration_gates_the_deploy(deploy_project: ProjectFn) -> None:
    project = deploy_project("staging", **BLUE_GREEN)
    v1 = digest_image(project.app, 1)

    migrated = project.make("migrate-job", IMAGE=v1)
    assert migrated.returncode == 0, explain(migrated, project)
    assert "Migration complete" in migrated.stdout
    job = _job(project, v1)
    assert "Complete" in _conditions(job), job["status"]
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == v1

    # Retrying the same digest replaces the finished Job (its template is immutable).
    again = project.make("migrate-job", IMAGE=v1)
    assert again.returncode == 0, explain(again, project)
    assert _job(project, v1)["metadata"]["uid"] != job["metadata"]["uid"]

    deploy_ok(project, v1)


def test_a_failed_migration_stops_before_any_rollout_change(deploy_project: ProjectFn) -> None:
    project = deploy_project("staging", **BLUE_GREEN)
    v1, v2 = digest_image(project.app, 1), digest_image(project.app, 2)
    assert project.make("migrate-job", IMAGE=v1).returncode == 0
    deploy_ok(project, v1)
    before = project.rollout()

    project.fail_migrations()
    failed = project.make("migrate-job", IMAGE=v2)
    assert failed.returncode != 0, explain(failed, project)
    assert "failed; nothing was deployed" in failed.stderr, explain(failed, project)
    job = _job(project, v2)
    assert "Failed" in _conditions(job), job["status"]
    # backoffLimit 1: one retry, and both pods failed.
    assert job["status"].get("failed") == 2, job["status"]

    # No rollout change: same pod template, same revision. (Not the
    # generation: the HPA scaling the Rollout to its minimum bumps that.)
    after = project.rollout()
    assert after["spec"]["template"] == before["spec"]["template"]
    revision = "rollout.argoproj.io/revision"
    assert after["metadata"]["annotations"][revision] == before["metadata"]["annotations"][revision]
    assert project.rollout_image() == v1
    images = {
        rs["spec"]["template"]["spec"]["containers"][0]["image"]
        for rs in project.replica_sets().values()
    }
    assert images == {v1}, images
