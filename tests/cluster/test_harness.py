"""The harness leaves no process behind, even when the test run itself is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.cluster.conftest import CLUSTER
from tests.support.cluster.control_plane import Cluster

ROOT = Path(__file__).resolve().parents[2]

# Starts a second cluster, prints its component PIDs, then waits to be killed.
_HOLDER = """
import json, sys, time
from pathlib import Path
from tests.support.cluster.control_plane import running_cluster
with running_cluster(Path(sys.argv[1])) as cluster:
    print(json.dumps(cluster.pids()), flush=True)
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


def test_a_killed_test_run_leaves_no_component_running(cluster: Cluster, tmp_path: Path) -> None:
    # `cluster` first: the binaries exist, so the holder only starts processes.
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
        assert len(pids) == 6 and all(_alive(p) for p in pids)
    finally:
        holder.send_signal(signal.SIGKILL)  # no finaliser, no atexit: only the kernel
        holder.wait()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p for p in pids if _alive(p)] == []
