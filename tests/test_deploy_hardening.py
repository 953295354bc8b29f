"""Issue 12, cluster half: what the built manifests let through.

Each checker reads the manifests `deploy/rollout.sh manifests` builds (real
`kubectl kustomize`) for every answer set that changes deploy/, and each is
shown to fail on a copy with the pre-issue-12 shape planted back.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RenderFn
from tests.support.combos import values
from tests.support.deploy import ENVS, build_render, combo_id, load_docs, manifest_combos

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("deploy-manifests")]

COMBOS = manifest_combos()
NAN = float("nan")


@dataclass
class Built:
    answers: dict[str, str]
    project: Path
    docs: dict[str, list[dict[str, Any]]]  # environment -> objects

    def objects(self, env: str, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs[env] if d["kind"] == kind]


Checker = Callable[[Built], Iterator[str]]


@pytest.fixture(scope="module")
def builds(render: RenderFn) -> dict[str, Built]:
    result = {}
    for answers in COMBOS:
        project = render(**answers)
        docs = {env: load_docs(build_render(project, env)) for env in ENVS}
        result[combo_id(answers)] = Built(answers, project, docs)
    return result


def pod_specs(built: Built, env: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for rollout in built.objects(env, "Rollout"):
        yield "Rollout", rollout["spec"]["template"]["spec"]
    for job in built.objects(env, "Job"):
        yield "Job", job["spec"]["template"]["spec"]


# --- 10. Prometheus analysis fails closed ---------------------------------------------


def argo_phase(metric: dict[str, Any], result: Any) -> str:
    """Argo Rollouts' verdict on one measurement (utils/evaluate, v1.9.1):
    failureCondition first, then successCondition; with both set and neither
    true the measurement is Inconclusive, with only a successCondition a
    false one is Failed. The expressions are the expr-lang subset the
    templates use, evaluated by Python with Argo's helper functions."""

    def holds(condition: str) -> bool:
        python = condition.replace("&&", " and ").replace("||", " or ")
        python = re.sub(r"!(?!=)", " not ", python)
        scope = {"result": result, "isNaN": math.isnan, "len": len}
        # eval of the template's own expressions, no builtins: never of input.
        return bool(eval(python, {"__builtins__": {}}, scope))

    success = metric.get("successCondition")
    failure = metric.get("failureCondition")
    failed = holds(failure) if failure else (not holds(success) if success else False)
    succeeded = holds(success) if success else not failed
    if failed:
        return "Failed"
    return "Successful" if succeeded else "Inconclusive"


def missing_series(query: str) -> Any:
    """What Prometheus hands Argo when no series matches: `scalar()` of an
    empty vector is NaN; a bare vector query returns an empty vector."""
    return NAN if query.strip().startswith("scalar(") else []


def prometheus_fails_closed(built: Built) -> Iterator[str]:
    for env in ENVS:
        for template in built.objects(env, "AnalysisTemplate"):
            args = {a["name"]: a.get("value") for a in template["spec"].get("args", [])}
            for metric in template["spec"]["metrics"]:
                prometheus = metric.get("provider", {}).get("prometheus")
                if not prometheus:
                    continue
                where = f"{env} {template['metadata']['name']}/{metric['name']}"
                if not (metric.get("successCondition") and metric.get("failureCondition")):
                    yield f"{where}: needs both a successCondition and a failureCondition"
                query = prometheus["query"]
                phase = argo_phase(metric, missing_series(query))
                if phase == "Successful":
                    yield f"{where}: a missing series passes the measurement"
                minimum = re.search(r">=\s*\{\{\s*args\.min-requests\s*\}\}", query)
                if not minimum or int(args.get("min-requests") or 0) < 1:
                    yield f"{where}: no minimum request count before the rate counts"


# --- 11. NGINX Ingress serves HTTPS only ----------------------------------------------


def ingress_tls(built: Built) -> Iterator[str]:
    for env in ENVS:
        for ingress in built.objects(env, "Ingress"):
            annotations = ingress["metadata"].get("annotations") or {}
            if annotations.get("nginx.ingress.kubernetes.io/ssl-redirect") != "true":
                yield f"{env}: the Ingress does not redirect HTTP to HTTPS"
            hosts = {rule["host"] for rule in ingress["spec"]["rules"]}
            tls = ingress["spec"].get("tls") or []
            covered = {h for entry in tls if entry.get("secretName") for h in entry["hosts"]}
            if not tls or hosts - covered:
                yield f"{env}: hosts {sorted(hosts - covered)} have no TLS certificate"
        custom = built.project / "deploy/overlays" / env / "custom/kustomization.yaml"
        if built.objects(env, "Ingress") and "/spec/tls/0/secretName" not in custom.read_text():
            yield f"{env}: the service-owned custom component does not set the certificate"


# --- 12. a crash-looping pod never blocks a node drain --------------------------------


def pdb_evicts_unhealthy_pods(built: Built) -> Iterator[str]:
    for env in ENVS:
        for pdb in built.objects(env, "PodDisruptionBudget"):
            policy = pdb["spec"].get("unhealthyPodEvictionPolicy")
            if policy != "AlwaysAllow":
                yield f"{env}: PodDisruptionBudget unhealthyPodEvictionPolicy is {policy}"


# --- 14. ephemeral storage bounded; the Job pulls like the Rollout ---------------------


SECRET_REGISTRIES = ("ghcr", "dockerhub")


def storage_and_pull_credentials(built: Built) -> Iterator[str]:
    for env in ENVS:
        pulls = {}
        for kind, pod in pod_specs(built, env):
            pulls[kind] = pod.get("imagePullSecrets")
            for container in pod["containers"]:
                for bound in ("requests", "limits"):
                    if "ephemeral-storage" not in container["resources"].get(bound, {}):
                        yield f"{env} {kind}/{container['name']}: no ephemeral-storage {bound}"
        if "Job" in pulls and pulls["Job"] != pulls["Rollout"]:
            yield f"{env}: the Job pulls with {pulls['Job']}, the Rollout with {pulls['Rollout']}"
        # GHCR and Docker Hub images may be private: the pods pull with the
        # Secret the README has the team create. Cloud registries are read
        # with the nodes' identity: no Secret to create, none referenced.
        registry = built.answers.get("registry", "ghcr")
        if registry in SECRET_REGISTRIES and not pulls.get("Rollout"):
            yield f"{env}: no image pull Secret for a private {registry} image"
        if registry not in SECRET_REGISTRIES and any(pulls.values()):
            yield f"{env}: {registry} images pull with the nodes' identity, not {pulls}"


CHECKERS: list[Checker] = [
    prometheus_fails_closed,
    ingress_tls,
    pdb_evicts_unhealthy_pods,
    storage_and_pull_credentials,
]


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda c: c.__name__)
def test_every_build_holds(builds: dict[str, Built], checker: Checker) -> None:
    found = [f"{combo}: {p}" for combo, built in builds.items() for p in checker(built)]
    assert not found, "\n".join(found)


def test_the_checked_builds_have_what_the_checkers_look_at(builds: dict[str, Built]) -> None:
    kinds = {d["kind"] for b in builds.values() for env in ENVS for d in b.docs[env]}
    assert {"Ingress", "PodDisruptionBudget", "Job", "Rollout", "AnalysisTemplate"} <= kinds
    assert any(b.answers["analysis_provider"] == "prometheus" for b in builds.values())


# --- planted violations -----------------------------------------------------------------


def planted(built: Built, edit: Callable[[dict[str, Any]], None]) -> Built:
    docs = copy.deepcopy(built.docs)
    for env_docs in docs.values():
        for doc in env_docs:
            edit(doc)
    return Built(built.answers, built.project, docs)


def old_success_rate(doc: dict[str, Any]) -> None:
    # The pre-issue-12 metric: a bare vector, empty results pass.
    if doc["kind"] == "AnalysisTemplate":
        for metric in doc["spec"]["metrics"]:
            if "prometheus" in metric.get("provider", {}):
                metric.pop("failureCondition", None)
                metric["successCondition"] = (
                    "len(result) == 0 || isNaN(result[0]) || result[0] >= 0.99"
                )
                query = metric["provider"]["prometheus"]["query"]
                metric["provider"]["prometheus"]["query"] = query.strip()[len("scalar(") :]


def no_tls(doc: dict[str, Any]) -> None:
    if doc["kind"] == "Ingress":
        doc["spec"].pop("tls", None)
        doc["metadata"].pop("annotations", None)


def default_pdb(doc: dict[str, Any]) -> None:
    if doc["kind"] == "PodDisruptionBudget":
        doc["spec"].pop("unhealthyPodEvictionPolicy", None)


def job_without_storage_or_secret(doc: dict[str, Any]) -> None:
    if doc["kind"] == "Job":
        pod = doc["spec"]["template"]["spec"]
        pod.pop("imagePullSecrets", None)
        for container in pod["containers"]:
            container["resources"]["limits"].pop("ephemeral-storage", None)


PLANTED = [
    (prometheus_fails_closed, old_success_rate),
    (ingress_tls, no_tls),
    (pdb_evicts_unhealthy_pods, default_pdb),
    (storage_and_pull_credentials, job_without_storage_or_secret),
]


@pytest.mark.parametrize(("checker", "edit"), PLANTED, ids=[c.__name__ for c, _ in PLANTED])
def test_the_checker_finds_a_planted_violation(
    builds: dict[str, Built], checker: Checker, edit: Callable[[dict[str, Any]], None]
) -> None:
    combo = "canary-nginx-prometheus-job"  # has an Ingress, a Job and Prometheus metrics
    good = builds[combo]
    assert list(checker(good)) == []
    assert list(checker(planted(good, edit))) != []


def no_pull_secret(doc: dict[str, Any]) -> None:
    if doc["kind"] in ("Rollout", "Job"):
        doc["spec"]["template"]["spec"].pop("imagePullSecrets", None)


def pull_secret(doc: dict[str, Any]) -> None:
    if doc["kind"] in ("Rollout", "Job"):
        doc["spec"]["template"]["spec"]["imagePullSecrets"] = [{"name": "registry"}]


@pytest.mark.parametrize(
    ("registry", "edit"), [("dockerhub", no_pull_secret), ("ecr", pull_secret)]
)
def test_the_pull_secret_follows_the_registry(
    builds: dict[str, Built], registry: str, edit: Callable[[dict[str, Any]], None]
) -> None:
    (good, *_) = [b for b in builds.values() if b.answers.get("registry") == registry]
    assert list(storage_and_pull_credentials(good)) == []
    assert list(storage_and_pull_credentials(planted(good, edit))) != []


def test_every_registry_meets_both_runners_and_both_strategies() -> None:
    # The registry decides the pull Secret of the Rollout and of the Job.
    for other in ("migration_runner", "deploy_strategy"):
        seen = {(a.get("registry", "ghcr"), a[other]) for a in COMBOS}
        assert seen == {(r, v) for r in values("registry") for v in values(other)}, other


@pytest.mark.parametrize(
    ("metric", "result", "phase"),
    [
        ({"successCondition": "result >= 0.9"}, 0.5, "Failed"),
        (
            {"successCondition": "result >= 0.9", "failureCondition": "result < 0.5"},
            0.7,
            "Inconclusive",
        ),
        ({"successCondition": "!isNaN(result) && result >= 0.99"}, NAN, "Failed"),
        ({"failureCondition": "result > 3"}, 1, "Successful"),
    ],
)
def test_the_verdict_follows_argo_rollouts(metric: dict[str, str], result: Any, phase: str) -> None:
    # The rules quoted in argo_phase, on the cases the Argo docs describe.
    assert argo_phase(metric, result) == phase


# --- 13. namespaces enforce the restricted Pod Security Standard -----------------------


@pytest.mark.parametrize("answers", [{}, {"migration_runner": "runner"}], ids=["job", "runner"])
def test_readme_creates_namespaces_that_enforce_restricted(
    render: RenderFn, answers: dict[str, str]
) -> None:
    readme = (render(**answers) / "README.md").read_text()
    created = re.findall(r"^kubectl create namespace (\S+)$", readme, re.M)
    assert created, "the README no longer shows how to create the namespaces"
    for namespace in created:
        label = re.search(rf"^kubectl label namespace {re.escape(namespace)} (.*)$", readme, re.M)
        labels = dict(item.split("=", 1) for item in (label[1].split() if label else []))
        assert labels.get("pod-security.kubernetes.io/enforce") == "restricted", namespace
    assert "Repeat for `demo-service-production`" in readme
