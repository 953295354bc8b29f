"""The Prometheus analysis provider, end to end: a real Prometheus (the pinned
cluster.prometheus, built from the Go module proxy) discovers the test
namespace's pods through `kubernetes_sd_configs` against the suite's API
server, relabels them as the generated README asks (pod labels copied with a
labelmap, plus `namespace`) and scrapes them every second; the real Argo
Rollouts controller runs the generated AnalysisTemplates' unchanged queries
against it during the generated `make deploy` of a canary.

Covered: the success-rate template (the canary's background analysis) and the
latency template (its step analysis), with real traffic through the generated
service (promoted), with no user traffic, only probes and scrapes
(fail-closed: every measurement is NaN, the run fails, the controller aborts,
the script undoes), and with traffic that gets 503s (the success rate
measures below its minimum: aborted, undone). Before the queries left probe
and scrape routes out, the no-user-traffic deploy was promoted here.

Not covered, and why:
- the pods' metrics are not their own: kwok pods run no process, so the
  scrape address of every pod in the namespace is rewritten (test-only
  relabel rule) to one locally running generated service, which stands in for
  all of them; the series carry each pod's labels, but a difference between
  the canary's and the stable pods' behaviour cannot be shown;
- the timings: a test-only patch shortens the metrics' initialDelay (2m, one
  query window) to seconds and their interval to 2 s; the 2-minute windows,
  counts, limits and conditions are as generated;
- blue-green's post-promotion analysis runs these same two templates but is
  not deployed here (its pre-promotion gate is the web provider's, covered
  by tests/cluster/test_blue_green.py), to keep the suite's wall time down;
- the kubelet's probes: kwok runs no kubelet, so the test sends the probe
  requests itself, more often than the generated periods, as the analysis
  runs in seconds instead of minutes;
- the in-cluster default address (prometheus-server.monitoring) and the
  NetworkPolicy's `monitoring` namespace rule: there is no cluster network;
- Prometheus' web UI (not built: the tests use its HTTP API only).
"""

from __future__ import annotations

import math
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import yaml

from tests.cluster.checks import (
    assert_aborted_and_undone,
    assert_aborted_by_the_controller,
    deploy_ok,
    first_release,
)
from tests.cluster.conftest import CLUSTER, PROMETHEUS_CANARY, ProjectFn
from tests.conftest import RenderFn
from tests.support.cluster.project import DeployProject, digest_image, explain
from tests.support.cluster.prometheus import Prometheus, scrape_job, traffic

pytestmark = CLUSTER

# The generated templates' thresholds (extensions/rollout.yml).
_ANALYSIS = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "extensions" / "rollout.yml").read_text()
)["analysis"]
MINIMUM_SUCCESS_RATE = float(_ANALYSIS["success_rate"]["minimum"])
P95_BELOW_SECONDS = float(_ANALYSIS["latency"]["p95_below_seconds"])
MIN_REQUESTS = int(_ANALYSIS["min_requests"])


def _project(deploy_project: ProjectFn, prometheus: Prometheus) -> DeployProject:
    project = deploy_project("staging", **PROMETHEUS_CANARY)
    project.prometheus = prometheus.url
    project.analyse_with(project.targets.healthy)
    prometheus.route(project.namespace, project.targets.healthy)
    return project


def _measurements(run: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {
        result["name"]: result.get("measurements", []) for result in run["status"]["metricResults"]
    }


def _runs(project: DeployProject, kind: str) -> list[dict[str, Any]]:
    return [
        r
        for r in project.analysis_runs()
        if r["metadata"].get("labels", {}).get("rollout-type") == kind
    ]


def test_the_docs_describe_the_scrape_job_these_tests_run(render: RenderFn) -> None:
    """What the generated docs ask of a cluster's Prometheus is what the
    suite's Prometheus does (bar the test-only address rewrite)."""
    root = render(**PROMETHEUS_CANARY)
    readme = " ".join((root / "docs" / "deploying.md").read_text().split())
    rollout = yaml.safe_load((root / "deploy" / "base" / "rollout.yaml").read_text())
    annotations = rollout["spec"]["template"]["metadata"]["annotations"]
    rules = scrape_job(Path("kubeconfig"), {})["relabel_configs"]
    assert "`kubernetes_sd_configs` (role `pod`)" in readme
    for name in ("scrape", "path", "port"):
        meta = f"__meta_kubernetes_pod_annotation_prometheus_io_{name}"
        assert any(meta in rule.get("source_labels", []) for rule in rules), name
        assert f"prometheus.io/{name}" in readme and f"prometheus.io/{name}" in annotations
    (labelmap,) = [rule for rule in rules if rule.get("action") == "labelmap"]
    assert f"`regex: {labelmap['regex']}`" in readme
    assert {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"} in rules
    assert "namespace as the `namespace` label" in readme


def test_real_traffic_passes_the_analysis_and_promotes(
    deploy_project: ProjectFn, prometheus: Prometheus
) -> None:
    project = _project(deploy_project, prometheus)
    app = project.app
    _, v2 = first_release(project)

    with traffic(project.targets.healthy):
        second = deploy_ok(project, v2)
    assert project.selected_image(app) == v2, explain(second, project)

    # Prometheus found the new version's pods and labelled their series as the queries expect.
    new_hash = next(h for h, rs in project.replica_sets().items() if v2 in str(rs["spec"]))
    series = prometheus.query(
        f'http_requests_total{{namespace="{project.namespace}", app_kubernetes_io_name="{app}",'
        f' rollouts_pod_template_hash="{new_hash}", route="/items", status="200"}}'
    )
    assert series, prometheus.targets(project.namespace)

    # The controller measured real numbers, and they met the targets.
    (background,) = _runs(project, "Background")
    step = _runs(project, "Step")[-1]
    rates = _values(background, "success-rate", second, project)
    assert all(rate >= MINIMUM_SUCCESS_RATE for rate in rates), rates
    latencies = _values(step, "p95-latency", second, project)
    assert all(p95 < P95_BELOW_SECONDS for p95 in latencies), latencies


def _values(
    run: dict[str, Any], metric: str, done: CompletedProcess[str], project: DeployProject
) -> list[float]:
    """A successful run's measured values: real numbers, every one a success."""
    assert run["status"]["phase"] == "Successful", explain(done, project)
    measured = _measurements(run)[metric]
    assert measured and {m["phase"] for m in measured} == {"Successful"}, measured
    values = [float(m["value"]) for m in measured]
    assert not any(math.isnan(v) for v in values), measured
    return values


def test_the_analysis_fails_closed_without_traffic_and_fails_on_5xx(
    deploy_project: ProjectFn, prometheus: Prometheus
) -> None:
    project = _project(deploy_project, prometheus)
    app = project.app
    v1, v2 = first_release(project)

    # No user traffic. A real pod still gets requests: the kubelet's probes (the
    # generated periods make 36 a pod in a 2-minute window) and Prometheus'
    # scrapes. kwok runs no kubelet, so the test probes, compressed in time like
    # the analysis: none of these requests may count as the version's traffic.
    with traffic(project.targets.healthy, paths=("/readyz", "/healthz")):
        quiet = project.make("deploy", IMAGE=v2)
    assert_aborted_and_undone(project, quiet, stable=v1, service=app)
    assert_aborted_by_the_controller(project, quiet)
    # The new version was scraped, probes and all: more than enough requests,
    # none of them a user's.
    v2_hash = next(h for h, rs in project.replica_sets().items() if v2 in str(rs["spec"]))
    probed = prometheus.query(
        f'sum(increase(http_requests_total{{namespace="{project.namespace}",'
        f' rollouts_pod_template_hash="{v2_hash}", route=~"/healthz|/readyz|/metrics"}}[2m]))'
    )
    assert probed and float(probed[0]["value"][1]) >= MIN_REQUESTS, probed
    failed = [r for r in project.analysis_runs() if r["status"]["phase"] == "Failed"]
    assert failed, explain(quiet, project)
    measured = [m for r in failed for ms in _measurements(r).values() for m in ms]
    # Fail-closed: the queries found too few requests and answered NaN, which fails.
    failing = [m for m in measured if m["phase"] == "Failed"]
    assert failing and all(m["value"] == "NaN" for m in failing), measured

    # 503s: the version's clients get errors, so its success rate is below the minimum.
    prometheus.route(project.namespace, project.targets.broken)
    with traffic(project.targets.broken):
        erring = project.make("deploy", IMAGE=digest_image(app, 3))
    assert_aborted_and_undone(project, erring, stable=v1, service=app)
    background = _runs(project, "Background")[-1]
    assert background["status"]["phase"] == "Failed", explain(erring, project)
    rates = [
        float(m["value"])
        for m in _measurements(background)["success-rate"]
        if m["phase"] == "Failed"
    ]
    assert rates and all(rate < MINIMUM_SUCCESS_RATE for rate in rates), rates
