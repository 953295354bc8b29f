"""A real Kubernetes control plane with the Argo Rollouts controller, on 127.0.0.1.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok (fake
nodes: no kubelet, pods become Ready as kwok's stages say) and
rollouts-controller, each on free ports, started in dependency order and each
waited for. Teardown stops them in reverse order, waiting for each (the API
server hangs on shutdown if etcd goes first), and every process is also tied
to the life of the test process (PR_SET_PDEATHSIG), so a killed test run
leaves nothing running either.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.cluster.build import Versions, bin_dir, ensure_binaries, stages_file
from tests.support.cluster.pki import SERVICE_CIDR, Pki, make_pki, write_kubeconfig
from tests.support.postgres import free_port
from tests.support.tools import VENV_BIN

ROOT = Path(__file__).resolve().parents[3]
STARTUP_TIMEOUT = 120.0  # a deadline against hanging, not a speed requirement
STOP_TIMEOUT = 15.0
NODE = "kwok-node-0"
# The controllers the deploy path needs. No node-lifecycle controller: nothing
# would clear the taints it sets on a kwok node.
CONTROLLERS = (
    "replicaset-controller",
    "job-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "namespace-controller",
    "garbage-collector-controller",
    "root-ca-certificate-publisher-controller",
    "disruption-controller",
    "horizontal-pod-autoscaler-controller",
)


def crd_dir(versions: Versions) -> Path:
    return ROOT / "tests" / "data" / f"argo-rollouts-v{versions.argo_rollouts}"


class ClusterError(RuntimeError):
    """A component failed to start or died; the message carries its log tail."""


def die_with_parent() -> None:
    # Runs in the child between fork and exec: SIGKILL it when the test
    # process dies, however it dies.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {self.name} log ({self.log}) ---\n" + "\n".join(text)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@dataclass
class Cluster:
    workdir: Path
    kubeconfig: Path
    server: str
    pki: Pki
    bin_dir: Path
    processes: list[Process] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """The environment for kubectl and the deploy script: this cluster, the
        Argo Rollouts plugin and the suite's kubectl on PATH."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["PATH"] = os.pathsep.join([str(self.bin_dir), str(VENV_BIN), env.get("PATH", "")])
        return env

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(VENV_BIN / "kubectl"), *args],
            input=stdin,
            env=self.env(),
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} exited {done.returncode}: {done.stderr}")
        return done

    def assert_alive(self) -> None:
        dead = [p for p in self.processes if p.popen.poll() is not None]
        if dead:
            raise ClusterError(
                "cluster component(s) died: "
                + ", ".join(f"{p.name} (exit {p.popen.returncode})" for p in dead)
                + "\n"
                + "\n".join(p.tail() for p in dead)
            )

    def pids(self) -> list[int]:
        return [p.popen.pid for p in self.processes]

    def stop(self) -> None:
        # Reverse start order: clients first, etcd last.
        for process in reversed(self.processes):
            process.stop()

    def _start(self, name: str, *argv: str) -> Process:
        log = self.workdir / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [str(self.bin_dir / argv[0]), *argv[1:]],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                preexec_fn=die_with_parent,
            )
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def _wait(self, process: Process, what: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                raise ClusterError(
                    f"{process.name} exited {process.popen.returncode} before {what}\n"
                    + process.tail()
                )
            with contextlib.suppress(httpx.HTTPError, ClusterError, subprocess.TimeoutExpired):
                if ready():
                    return
            time.sleep(0.2)
        raise ClusterError(
            f"{process.name}: no {what} within {STARTUP_TIMEOUT:.0f} s\n" + process.tail()
        )

    def _api_get(self, path: str) -> httpx.Response:
        return httpx.get(
            self.server + path,
            headers={"Authorization": f"Bearer {self.pki.token}"},
            verify=ssl.create_default_context(cafile=str(self.pki.ca_cert)),
            timeout=5,
        )

    def _boot(self, versions: Versions) -> None:
        etcd_client, etcd_peer = free_port(), free_port()
        etcd = self._start(
            "etcd",
            "etcd",
            "--name=test",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{etcd_client}",
            f"--advertise-client-urls=http://127.0.0.1:{etcd_client}",
            f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
            f"--initial-cluster=test=http://127.0.0.1:{etcd_peer}",
            # Throwaway data: durability buys nothing and costs the shared disk.
            "--unsafe-no-fsync",
            "--log-level=warn",
        )
        self._wait(
            etcd,
            "/health",
            lambda: '"true"' in httpx.get(f"http://127.0.0.1:{etcd_client}/health", timeout=2).text,
        )
        pki = self.pki
        apiserver = self._start(
            "kube-apiserver",
            "kube-apiserver",
            f"--etcd-servers=http://127.0.0.1:{etcd_client}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.server.rsplit(':', 1)[1]}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            f"--token-auth-file={pki.tokens}",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # Nothing removes the not-ready taint this plugin puts on new
            # nodes without the node-lifecycle controller.
            "--disable-admission-plugins=TaintNodesByCondition",
            "--profiling=false",
            "--v=1",
        )
        self._wait(apiserver, "/readyz", lambda: self._api_get("/readyz").status_code == 200)
        controller_manager = self._start(
            "kube-controller-manager",
            "kube-controller-manager",
            f"--kubeconfig={self.kubeconfig}",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            "--leader-elect=false",
            f"--controllers={','.join(CONTROLLERS)}",
            f"--service-account-private-key-file={pki.sa_key}",
            f"--root-ca-file={pki.ca_cert}",
            "--use-service-account-credentials=false",
            "--v=1",
        )
        scheduler = self._start(
            "kube-scheduler",
            "kube-scheduler",
            f"--kubeconfig={self.kubeconfig}",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            "--leader-elect=false",
            "--v=1",
        )
        kwok = self._start(
            "kwok",
            "kwok",
            f"--kubeconfig={self.kubeconfig}",
            f"--config={stages_file(versions)}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--cidr=10.244.0.0/16",
            "--node-ip=10.1.0.1",
            "--node-lease-duration-seconds=40",
        )
        self.kubectl("apply", "-f", "-", stdin=_node_manifest())
        self.kubectl("apply", "--server-side", "-f", str(crd_dir(versions)))
        self.kubectl(
            "wait", "--for=condition=Established", "--timeout=60s", "-f", str(crd_dir(versions))
        )
        healthz = free_port()
        rollouts = self._start(
            "rollouts-controller",
            "rollouts-controller",
            f"--kubeconfig={self.kubeconfig}",
            "--leader-elect=false",
            f"--metricsPort={free_port()}",
            f"--healthzPort={healthz}",
            "--loglevel=info",
        )
        self._wait(
            rollouts,
            "/healthz",
            lambda: httpx.get(f"http://127.0.0.1:{healthz}/healthz", timeout=2).status_code == 200,
        )
        self._wait(kwok, "a Ready node", self._node_ready)
        self._wait(scheduler, "a running scheduler", lambda: scheduler.popen.poll() is None)
        # The service-account controller works once it creates `default` SAs.
        self._wait(
            controller_manager,
            "the default ServiceAccount",
            lambda: self.kubectl("get", "serviceaccount", "default", check=False).returncode == 0,
        )

    def _node_ready(self) -> bool:
        out = self.kubectl(
            "get",
            "node",
            NODE,
            "-o",
            'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
            check=False,
        ).stdout
        return out.strip() == "True"


def _node_manifest() -> str:
    return f"""apiVersion: v1
kind: Node
metadata:
  name: {NODE}
  annotations:
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/hostname: {NODE}
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    topology.kubernetes.io/zone: zone-a
# ephemeral-storage: the generated pods request it, and a node that does not
# advertise it leaves them Pending (the scheduler finds no room).
status:
  allocatable: {{cpu: "64", memory: 256Gi, pods: "250", ephemeral-storage: 500Gi}}
  capacity: {{cpu: "64", memory: 256Gi, pods: "250", ephemeral-storage: 500Gi}}
"""


@contextlib.contextmanager
def running_cluster(workdir: Path, versions: Versions | None = None) -> Iterator[Cluster]:
    """Build or restore the binaries, start the cluster in `workdir`, stop it on exit."""
    versions = versions or Versions.from_pins()
    ensure_binaries(versions)
    pki = make_pki(workdir / "pki")
    server = f"https://127.0.0.1:{free_port()}"
    cluster = Cluster(
        workdir=workdir,
        kubeconfig=write_kubeconfig(workdir / "kubeconfig", server, pki),
        server=server,
        pki=pki,
        bin_dir=bin_dir(versions),
    )
    try:
        cluster._boot(versions)
        yield cluster
    finally:
        cluster.stop()
