"""A real Prometheus on 127.0.0.1, discovering the suite cluster's pods.

It runs the scrape job the generated README asks of a cluster's Prometheus:
pods found through `kubernetes_sd_configs` against the suite's API server,
kept when annotated `prometheus.io/scrape: "true"`, scraped at their
annotated path and port, every pod label copied into the series (labelmap:
`app_kubernetes_io_name`, `rollouts_pod_template_hash`) plus `namespace`.

One rule is the test's own: kwok pods run no process, so the target address
of every pod in a routed namespace is rewritten to a locally running instance
of the generated service, which answers for them. Scrapes every second, so
an analysis sees new pods within seconds; stopped with the test session (and
killed with the test process, like the cluster's components).
"""

from __future__ import annotations

import contextlib
import itertools
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

from tests.support.cluster.build import Versions, ensure_prometheus
from tests.support.cluster.control_plane import (
    STARTUP_TIMEOUT,
    Cluster,
    ClusterError,
    Process,
    die_with_parent,
)
from tests.support.postgres import free_port

SCRAPE_INTERVAL = "1s"


def scrape_job(kubeconfig: Path, routes: dict[str, str]) -> dict[str, Any]:
    """The README's `kubernetes-pods` job over the routed namespaces, each pod's
    address rewritten to the local service standing in for it."""
    relabel: list[dict[str, Any]] = [
        {
            "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
            "action": "keep",
            "regex": "true",
        },
        {
            "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_path"],
            "regex": "(.+)",
            "target_label": "__metrics_path__",
        },
        {
            "source_labels": ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
            "regex": r"([^:]+)(?::\d+)?;(\d+)",
            "replacement": "$1:$2",
            "target_label": "__address__",
        },
        {"action": "labelmap", "regex": "__meta_kubernetes_pod_label_(.+)"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
    ]
    # Test only: the pods' own address (kwok's fake IP) reaches nothing.
    relabel += [
        {
            "source_labels": ["__meta_kubernetes_namespace"],
            "regex": namespace,
            "target_label": "__address__",
            "replacement": address,
        }
        for namespace, address in sorted(routes.items())
    ]
    return {
        "job_name": "kubernetes-pods",
        "kubernetes_sd_configs": [
            {
                "role": "pod",
                "kubeconfig_file": str(kubeconfig),
                "namespaces": {"names": sorted(routes)},
            }
        ],
        "relabel_configs": relabel,
    }


@dataclass
class Prometheus:
    url: str
    workdir: Path
    kubeconfig: Path
    process: Process | None = None
    routes: dict[str, str] = field(default_factory=dict)

    @property
    def config_file(self) -> Path:
        return self.workdir / "prometheus.yml"

    def write_config(self) -> None:
        # No namespaces listed would mean all of them: no job until one is routed.
        jobs = [scrape_job(self.kubeconfig, self.routes)] if self.routes else []
        config = {
            "global": {
                "scrape_interval": SCRAPE_INTERVAL,
                "scrape_timeout": SCRAPE_INTERVAL,
                "evaluation_interval": SCRAPE_INTERVAL,
            },
            "scrape_configs": jobs,
        }
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))

    def route(self, namespace: str, base_url: str) -> None:
        """Scrape the pods of `namespace` from the service at `base_url` (reloads)."""
        self.routes[namespace] = urlsplit(base_url).netloc
        self.write_config()
        # Answers once the new configuration is applied, 500 with the reason if not.
        done = httpx.post(f"{self.url}/-/reload", timeout=30)
        assert done.status_code == 200, f"Prometheus refused its configuration: {done.text}"

    def api(self, path: str, **params: str) -> Any:
        done = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = done.json()
        assert body.get("status") == "success", f"{path} {params}: {done.status_code} {body}"
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        return list(self.api("query", query=promql)["result"])

    def targets(self, namespace: str) -> list[dict[str, Any]]:
        active = self.api("targets", state="active")["activeTargets"]
        return [t for t in active if t["labels"].get("namespace") == namespace]

    def tail(self) -> str:
        return self.process.tail() if self.process else "(Prometheus not started)"

    def assert_alive(self) -> None:
        if self.process is None or self.process.popen.poll() is not None:
            raise ClusterError("Prometheus is not running\n" + self.tail())

    def start(self, binary: Path) -> None:
        self.write_config()
        log = self.workdir / "prometheus.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [
                    str(binary),
                    f"--config.file={self.config_file}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address={urlsplit(self.url).netloc}",
                    # POST /-/reload: each test routes its namespace.
                    "--web.enable-lifecycle",
                    "--log.level=info",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                preexec_fn=die_with_parent,
            )
        self.process = Process("prometheus", popen, log)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if popen.poll() is not None:
                raise ClusterError(f"prometheus exited {popen.returncode}\n" + self.tail())
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise ClusterError(f"prometheus: not ready within {STARTUP_TIMEOUT:.0f} s\n" + self.tail())


@contextlib.contextmanager
def running_prometheus(
    workdir: Path, cluster: Cluster, versions: Versions | None = None
) -> Iterator[Prometheus]:
    """Build or restore Prometheus, start it against `cluster`, stop it on exit."""
    binary = ensure_prometheus(versions)
    workdir.mkdir(parents=True, exist_ok=True)
    prometheus = Prometheus(
        url=f"http://127.0.0.1:{free_port()}", workdir=workdir, kubeconfig=cluster.kubeconfig
    )
    try:
        prometheus.start(binary)
        yield prometheus
    finally:
        if prometheus.process is not None:
            prometheus.process.stop()


@contextlib.contextmanager
def traffic(
    base_url: str, paths: tuple[str, ...] = ("/items?limit=1",), every: float = 0.05
) -> Iterator[None]:
    """GET requests to `base_url` (about 20 a second, cycling through `paths`) in a
    thread, while the block runs."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def send() -> None:
        with httpx.Client(base_url=base_url, timeout=5) as client:
            for path in itertools.cycle(paths):
                if stop.is_set():
                    break
                try:
                    client.get(path)
                except httpx.HTTPError as error:  # reported after the block
                    errors.append(error)
                stop.wait(every)

    thread = threading.Thread(target=send, name="analysis-traffic", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not errors, f"the traffic to {base_url} failed: {errors[:3]}"
