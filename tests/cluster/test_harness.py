"""The harness: every component runs, Pod Security admission is enforced in the
test namespaces, and no process is left behind, even when the test run is killed."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.cluster.conftest import BLUE_GREEN, CLUSTER, ProjectFn
from tests.support.cluster.control_plane import Cluster
from tests.support.cluster.prometheus import Prometheus

ROOT = Path(__file__).resolve().parents[2]

# Starts a second cluster and a Prometheus, prints their PIDs, then waits to be killed.
_HOLDER = """
import json, sys, time
from pathlib import Path
from tests.support.cluster.control_plane import running_cluster
from tests.support.cluster.prometheus import running_prometheus
work = Path(sys.argv[1])
with running_cluster(work) as cluster, running_prometheus(work / "prom", cluster) as prom:
    print(json.dumps([*cluster.pids(), prom.process.popen.pid]), flush=True)
    time.sleep(600)
"""

pytestmark = CLUSTER


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes: it only waits for its parent to reap it.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ", 1)[1][0] != "Z"


def test_every_component_is_running(cluster: Cluster) -> None:
    names = [p.name for p in cluster.processes]
    assert names == [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
        "rollouts-controller",
    ]
    cluster.assert_alive()
    version = cluster.kubectl("version", "-o", "json").stdout
    assert json.loads(version)["serverVersion"]["gitVersion"] == "v1.34.2"
    plugin = cluster.kubectl("argo", "rollouts", "version", "--short").stdout
    assert "1.9.1" in plugin


def test_namespaces_enforce_the_restricted_pod_security_standard(
    deploy_project: ProjectFn,
) -> None:
    """The generated README's namespace commands make the real API server's Pod
    Security admission refuse a privileged pod and admit the generated one."""
    project = deploy_project("staging", **BLUE_GREEN)
    labels = project.get("namespace", project.namespace)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted", labels
    # Pods need their ServiceAccount to exist before admission looks at them.
    deadline = time.monotonic() + 60
    while project.cluster.kubectl(
        "get", "serviceaccount", "default", "-n", project.namespace, check=False
    ).returncode:
        assert time.monotonic() < deadline, "no default ServiceAccount in the namespace"
        time.sleep(0.5)
    spec = project.built_rollout()["spec"]["template"]["spec"]
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "admission-probe", "namespace": project.namespace},
        "spec": {**spec, "serviceAccountName": "default"},
    }

    def dry_run(manifest: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        return project.cluster.kubectl(
            "apply", "--dry-run=server", "-f", "-", stdin=json.dumps(manifest), check=False
        )

    generated = dry_run(pod)
    assert generated.returncode == 0, generated.stderr
    assert "PodSecurity" not in generated.stderr, generated.stderr
    # Planted: what only the restricted standard forbids (the API server itself
    # refuses `privileged`, so that would prove nothing about admission).
    planted = copy.deepcopy(pod)
    planted["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    refused = dry_run(planted)
    assert refused.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in refused.stderr, refused.stderr
    assert "allowPrivilegeEscalation != false" in refused.stderr, refused.stderr


def test_a_killed_test_run_leaves_no_component_running(
    cluster: Cluster, prometheus: Prometheus, tmp_path: Path
) -> None:
    # The fixtures first: the binaries exist, so the holder only starts processes.
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline()
        assert line, (
            f"the holder exited {holder.wait()}: {holder.stderr.read() if holder.stderr else ''}"
        )
        pids = json.loads(line)
        assert len(pids) == 7 and all(_alive(p) for p in pids)
    finally:
        holder.send_signal(signal.SIGKILL)  # no finaliser, no atexit: only the kernel
        holder.wait()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p for p in pids if _alive(p)] == []
