"""A rendered project deploying to the suite's cluster through its own entry points.

The only changes to the generated repo are what a team would do itself, in
the overlay's service-owned custom component (deploy/overlays/<env>/custom/):

- the web analysis calls a local instance of the generated service instead of
  `<service>.<namespace>.svc.cluster.local` (the controller runs on the host,
  where cluster DNS does not resolve, and kwok pods run nothing);
- the Prometheus analysis queries the suite's Prometheus (its
  `prometheus-address` argument), queries unchanged;
- measurement intervals, the Prometheus metrics' initial delay and timed
  canary pauses are seconds, not minutes.

Counts, failure limits, success conditions, steps and promotion gates stay as
generated. The namespace line of the overlay is the test's own namespace, so
every test deploys into a fresh one.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.cluster.control_plane import Cluster

# How often the controller measures, and how long a timed canary pause lasts,
# in tests (the generated values are 15 s-1 min and 1-5 min).
INTERVAL = "2s"
PAUSE = "3s"
# The Prometheus metrics' initialDelay (generated: 2m, one full query window):
# long enough for Prometheus to discover the new pods (its discovery batches
# updates every 5 s) and scrape them twice, the least `rate()` needs.
PROMETHEUS_DELAY = "8s"
# kwok's chaos stage fails a running pod carrying this label.
KWOK_FAIL_LABEL = "pod-container-running-failed.stage.kwok.x-k8s.io"
MAKE_TIMEOUT = 420.0


@dataclass(frozen=True)
class AnalysisTargets:
    healthy: str  # base URL of a generated service with its database
    broken: str  # base URL of one whose database is unreachable (503s)


def digest_image(app: str, n: int) -> str:
    """A distinct, well-formed image reference per version number."""
    return f"ghcr.io/acme/{app}@sha256:{n:064x}"


@dataclass
class DeployProject:
    root: Path
    env: str
    namespace: str
    cluster: Cluster
    targets: AnalysisTargets
    app: str = ""
    prometheus: str | None = None  # URL of the suite's Prometheus, for its analysis
    _custom: dict[str, Any] = field(default_factory=dict)
    _pauses: list[int] = field(default_factory=list)

    # --- setup -----------------------------------------------------------
    def prepare(self) -> None:
        answers = yaml.safe_load((self.root / ".copier-answers.yml").read_text())
        self.app = str(answers["project_slug"])
        overlay = self.root / "deploy" / "overlays" / self.env / "kustomization.yaml"
        text, count = re.subn(
            r"^namespace: .*$", f"namespace: {self.namespace}", overlay.read_text(), flags=re.M
        )
        assert count == 1, f"{overlay} has no single namespace line"
        overlay.write_text(text)
        self._custom = yaml.safe_load(self._custom_path().read_text())
        rollout = self.built_rollout()
        steps = rollout["spec"]["strategy"].get("canary", {}).get("steps", [])
        self._pauses = [i for i, s in enumerate(steps) if s.get("pause", {}).get("duration")]
        # What the team creates in each namespace before the first deploy (README).
        self._create_namespace()
        self.cluster.kubectl(
            "create", "secret", "generic", f"{self.app}-database", "-n", self.namespace,
            "--from-literal=url=postgresql://app@db.invalid:5432/app",
        )  # fmt: skip
        self.analyse_with(self.targets.healthy)

    def _create_namespace(self) -> None:
        """The generated README's own commands that create and label a namespace
        (the `restricted` Pod Security Standard enforced), run for this test's."""
        staging = f"{self.app}-staging"
        pattern = re.compile(rf"kubectl (create|label) namespace {re.escape(staging)} ")
        readme = (self.root / "README.md").read_text()
        commands = [line for line in readme.splitlines() if pattern.match(line + " ")]
        assert [c.split()[1] for c in commands] == ["create", "label"], commands
        for command in commands:
            argv = shlex.split(command.replace(staging, self.namespace))
            self.cluster.kubectl(*argv[1:])

    def _custom_path(self) -> Path:
        return self.root / "deploy" / "overlays" / self.env / "custom" / "kustomization.yaml"

    def built_rollout(self) -> dict[str, Any]:
        out = self.run_script("manifests", self.env).stdout
        return next(d for d in yaml.safe_load_all(out) if d and d["kind"] == "Rollout")

    def analyse_with(self, base_url: str) -> None:
        """Point every web metric of the AnalysisTemplates at `base_url` (path kept),
        and every Prometheus metric at `self.prometheus` (when set)."""
        patches = list(self._custom.get("patches") or [])
        analysis = self.root / "deploy" / "base" / "analysis.yaml"
        for template in yaml.safe_load_all(analysis.read_text()):
            if not template:
                continue
            ops = []
            for i, metric in enumerate(template["spec"]["metrics"]):
                web = metric["provider"].get("web")
                if web is not None:
                    url = re.sub(r"^https?://[^/]+", base_url, web["url"])
                    assert url != web["url"], f"unexpected analysis URL {web['url']}"
                    ops.append(
                        {
                            "op": "replace",
                            "path": f"/spec/metrics/{i}/provider/web/url",
                            "value": url,
                        }
                    )
                if "prometheus" in metric["provider"] and "initialDelay" in metric:
                    ops.append(
                        {
                            "op": "replace",
                            "path": f"/spec/metrics/{i}/initialDelay",
                            "value": PROMETHEUS_DELAY,
                        }
                    )
                ops.append(
                    {"op": "replace", "path": f"/spec/metrics/{i}/interval", "value": INTERVAL}
                )
            args = [a["name"] for a in template["spec"].get("args", [])]
            if self.prometheus and "prometheus-address" in args:
                ops.append(
                    {
                        "op": "replace",
                        "path": f"/spec/args/{args.index('prometheus-address')}/value",
                        "value": self.prometheus,
                    }
                )
            name = template["metadata"]["name"]
            patches.append(
                {"target": {"kind": "AnalysisTemplate", "name": name}, "patch": yaml.safe_dump(ops)}
            )
        if self._pauses:
            ops = [
                {
                    "op": "replace",
                    "path": f"/spec/strategy/canary/steps/{i}/pause/duration",
                    "value": PAUSE,
                }
                for i in self._pauses
            ]
            patches.append(
                {"target": {"kind": "Rollout", "name": self.app}, "patch": yaml.safe_dump(ops)}
            )
        self._custom_path().write_text(yaml.safe_dump({**self._custom, "patches": patches}))

    def fail_migrations(self) -> None:
        """Make the migration Job's pods fail (kwok's chaos stage), as a broken migration would."""
        kustomization = self.root / "deploy" / "migrate" / "kustomization.yaml"
        data = yaml.safe_load(kustomization.read_text())
        ops = [
            {
                "op": "add",
                "path": f"/spec/template/metadata/labels/{KWOK_FAIL_LABEL.replace('/', '~1')}",
                "value": "true",
            }
        ]
        data["patches"] = [{"target": {"kind": "Job"}, "patch": yaml.safe_dump(ops)}]
        kustomization.write_text(yaml.safe_dump(data))

    # --- entry points ----------------------------------------------------
    def _env(self, **extra: str) -> dict[str, str]:
        env = self.cluster.env()
        for name in ("ENV", "IMAGE", "TO", "MAKEFLAGS", "MAKELEVEL"):
            env.pop(name, None)
        env.update(
            ENV=self.env,
            # Watch in short slices so gates are promoted within seconds.
            ROLLOUT_POLL="2",
            ROLLOUT_TIMEOUT="300",
            MIGRATE_POLL="1",
            MIGRATE_TIMEOUT="120",
            **extra,
        )
        return env

    def make(self, target: str, **variables: str) -> subprocess.CompletedProcess[str]:
        """`make <target>` in the project, variables passed as the workflows do (environment)."""
        return subprocess.run(
            ["make", "--no-print-directory", target],
            cwd=self.root,
            env=self._env(**variables),
            capture_output=True,
            text=True,
            timeout=MAKE_TIMEOUT,
            check=False,
        )

    def run_script(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.root / "deploy" / "rollout.sh"), *args],
            cwd=self.root,
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done

    # --- what the cluster says ------------------------------------------
    def get(self, *args: str) -> Any:
        out = self.cluster.kubectl("get", *args, "-n", self.namespace, "-o", "json").stdout
        return json.loads(out)

    def rollout(self) -> dict[str, Any]:
        return self.get("rollout", self.app)  # type: ignore[no-any-return]

    def rollout_image(self) -> str:
        return str(self.rollout()["spec"]["template"]["spec"]["containers"][0]["image"])

    def replica_sets(self) -> dict[str, dict[str, Any]]:
        """ReplicaSets of the service by pod-template hash."""
        items = self.get("replicasets", "-l", f"app.kubernetes.io/name={self.app}")["items"]
        return {rs["metadata"]["labels"]["rollouts-pod-template-hash"]: rs for rs in items}

    def selected_image(self, service: str) -> str:
        """The image of the ReplicaSet a Service selects (Argo Rollouts sets its hash)."""
        selector = self.get("service", service)["spec"]["selector"]
        hash_ = selector.get("rollouts-pod-template-hash")
        assert hash_, f"Service {service} selects no ReplicaSet: {selector}"
        rs = self.replica_sets()[hash_]
        return str(rs["spec"]["template"]["spec"]["containers"][0]["image"])

    def ready_pods(self, image: str) -> int:
        pods = self.get("pods", "-l", f"app.kubernetes.io/name={self.app}")["items"]
        return sum(
            1
            for p in pods
            if p["spec"]["containers"][0]["image"] == image
            and not p["metadata"].get("deletionTimestamp")
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p["status"].get("conditions", [])
            )
        )

    def analysis_runs(self) -> list[dict[str, Any]]:
        runs = self.get("analysisruns")["items"]
        return sorted(runs, key=lambda r: r["metadata"]["creationTimestamp"])

    def diagnostics(self) -> str:
        parts = [f"=== namespace {self.namespace} ({self.root})"]
        for args in (
            ("get", "rollout,rs,pods,svc,analysisrun,job", "-n", self.namespace, "-o", "wide"),
            ("get", "rollout", self.app, "-n", self.namespace, "-o", "yaml"),
            ("get", "events", "-n", self.namespace, "--sort-by=.lastTimestamp"),
        ):
            done = self.cluster.kubectl(*args, check=False)
            parts.append(f"$ kubectl {' '.join(args)}\n{done.stdout}{done.stderr}")
        for process in self.cluster.processes:
            if process.name == "rollouts-controller":
                lines = [
                    line
                    for line in process.log.read_text(errors="replace").splitlines()
                    if self.namespace in line
                ]
                parts.append(
                    "--- rollouts-controller (this namespace) ---\n" + "\n".join(lines[-60:])
                )
        return "\n".join(parts)

    def cleanup(self) -> None:
        self.cluster.kubectl("delete", "namespace", self.namespace, "--wait=false", check=False)


def explain(done: subprocess.CompletedProcess[str], project: DeployProject) -> str:
    """An assertion message: the command's output and the cluster's view."""
    return (
        f"exit {done.returncode}\n--- stdout ---\n{done.stdout[-6000:]}\n"
        f"--- stderr ---\n{done.stderr[-4000:]}\n{project.diagnostics()}"
    )
