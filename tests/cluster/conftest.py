"""Fixtures for deploying generated repos to the suite's real cluster.

One cluster per test session, owned by one pytest-xdist worker: every test
module here sets `pytestmark = CLUSTER` (the `cluster` xdist group; `make
test` runs `--dist loadgroup`), so this package's tests run together. The
cluster, its Prometheus and the analysis targets are package-scoped: they
stop after the package's last test, not when the worker's session ends (it
goes on with other groups, and an idle control plane still takes CPU).
Each test gets its own namespace and its own copy of a rendered project.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from extensions.slipway import derive, load_pins
from tests.conformance.service import RunningService, run_service
from tests.conftest import PreparedFn, RenderFn
from tests.support.cluster.build import ClusterBuildError, ensure_binaries, ensure_prometheus
from tests.support.cluster.control_plane import Cluster, running_cluster
from tests.support.cluster.project import AnalysisTargets, DeployProject
from tests.support.cluster.prometheus import Prometheus, running_prometheus
from tests.support.postgres import PostgresServer


@pytest.fixture(scope="package")
def cluster() -> Iterator[Cluster]:
    try:
        ensure_binaries()
    except ClusterBuildError as error:
        # Never a skip: a suite that cannot build its cluster has not tested deploys.
        pytest.fail(f"the suite's Kubernetes cluster cannot be built: {error}", pytrace=False)
    # Outside pytest's base temp: another pytest run prunes old base temps.
    with (
        tempfile.TemporaryDirectory(prefix="slipway-cluster-", ignore_cleanup_errors=True) as tmp,
        running_cluster(Path(tmp)) as running,
    ):
        yield running


@pytest.fixture(scope="package")
def prometheus(cluster: Cluster) -> Iterator[Prometheus]:
    """A real Prometheus discovering the cluster's pods (tests route their namespace)."""
    try:
        ensure_prometheus()
    except ClusterBuildError as error:
        pytest.fail(f"the suite's Prometheus cannot be built: {error}", pytrace=False)
    with (
        tempfile.TemporaryDirectory(prefix="slipway-prom-", ignore_cleanup_errors=True) as tmp,
        running_prometheus(Path(tmp), cluster) as running,
    ):
        yield running


@pytest.fixture(scope="package")
def analysis_targets(
    prepared_service: PreparedFn,
    postgres: PostgresServer,
    service_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[AnalysisTargets]:
    """Two instances of the generated Python service for the controller's web
    analysis to call: one healthy, one whose database is unreachable (its
    /readyz and /items answer 503, as a broken new version's would)."""
    root = prepared_service("python")
    answers = yaml.safe_load((root / ".copier-answers.yml").read_text())
    package = str(derive(answers, load_pins())["package_name"])

    def start(name: str) -> contextlib.AbstractContextManager[RunningService]:
        return run_service(
            root, "python", package, postgres, service_env, tmp_path_factory.mktemp(name)
        )

    with start("analysis-ok") as healthy, start("analysis-broken") as broken:
        broken.proxy.cut()
        with broken.client() as client:
            status = client.get("/readyz").status_code
        assert status == 503, f"a service without its database answered /readyz {status}"
        with healthy.client() as client:
            assert client.get("/items", params={"limit": 1}).json()["limit"] == 1
        yield AnalysisTargets(healthy=healthy.base_url, broken=broken.base_url)


# Every test module here: one worker runs them all, against one cluster.
CLUSTER = [pytest.mark.slow, pytest.mark.xdist_group("cluster")]

_namespaces = itertools.count(1)

ProjectFn = Callable[..., DeployProject]

# The delivery answers the deploy tests render with (web analysis: it calls
# the real service, no Prometheus needed).
BLUE_GREEN = {
    "deploy_strategy": "blue-green",
    "analysis_provider": "web",
    "migration_runner": "job",
}
CANARY = {**BLUE_GREEN, "deploy_strategy": "canary", "traffic_router": "none"}
# Background success rate and step latency, both from Prometheus.
PROMETHEUS_CANARY = {**CANARY, "analysis_provider": "prometheus"}


@pytest.fixture
def deploy_project(
    cluster: Cluster,
    render: RenderFn,
    analysis_targets: AnalysisTargets,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[ProjectFn]:
    """A factory: a writable copy of a render, deploying into a fresh namespace."""
    cluster.assert_alive()
    made: list[DeployProject] = []

    def _make(env: str = "staging", **answers: Any) -> DeployProject:
        root = tmp_path / f"project-{len(made)}"
        shutil.copytree(render(**answers), root, symlinks=True)
        namespace = f"t{next(_namespaces)}-{env}"
        project = DeployProject(root, env, namespace, cluster, analysis_targets)
        project.prepare()
        made.append(project)
        return project

    yield _make
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        for project in made:
            print(project.diagnostics())
    for project in made:
        project.cleanup()
    cluster.assert_alive()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report
