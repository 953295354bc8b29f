"""Build (or restore from cache) the binaries of the suite's Kubernetes control plane.

Everything comes from the Go module proxy: `go install` cannot build Kubernetes
or etcd (their go.mod replaces point at sibling directories), so each module is
downloaded, copied somewhere writable, its local replaces pointed at the
published modules of the same release, and built there.

The binaries are cached outside the repository, keyed on the pinned versions
(`cluster` and `tools.argo_rollouts` in extensions/pins.yml) and this recipe's
revision, in $SLIPWAY_CLUSTER_CACHE or ~/.cache/slipway/cluster/<key>/bin.
Prometheus (for the Prometheus analysis provider's tests) has a key of its
own, so bumping it never rebuilds Kubernetes and the other way round; it is
a plain `go install` of its Go module (which has no local replaces), with
only the Kubernetes service discovery compiled in.
Each binary is moved into place only once complete, so an interrupted build
resumes where it stopped. Run `python -m tests.support.cluster.build` to
build ahead of the tests (.ci/run does, so the slow step shows its output).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
PINS = ROOT / "extensions" / "pins.yml"
# Bump when the way binaries are built changes, so old caches are not reused.
RECIPE = 1
PROMETHEUS_RECIPE = 1
CACHE_ENV = "SLIPWAY_CLUSTER_CACHE"


class ClusterBuildError(RuntimeError):
    """The binaries could not be built; the message says which step and why."""


@dataclass(frozen=True)
class Versions:
    kubernetes: str  # v1.34.2
    etcd: str  # v3.6.16
    kwok: str  # v0.8.0
    argo_rollouts: str  # 1.9.1 (no leading v, as tools.argo_rollouts spells it)
    prometheus: str  # v0.316.0: the Go module version of Prometheus 3.16.0

    @classmethod
    def from_pins(cls, path: Path = PINS) -> Versions:
        pins = yaml.safe_load(path.read_text(encoding="utf-8"))
        return cls(
            kubernetes=str(pins["cluster"]["kubernetes"]),
            etcd=str(pins["cluster"]["etcd"]),
            kwok=str(pins["cluster"]["kwok"]),
            argo_rollouts=str(pins["tools"]["argo_rollouts"]),
            prometheus=str(pins["cluster"]["prometheus"]),
        )

    @property
    def key(self) -> str:
        return (
            f"k8s-{self.kubernetes}_etcd-{self.etcd}_kwok-{self.kwok}"
            f"_rollouts-v{self.argo_rollouts}_r{RECIPE}"
        )

    @property
    def prometheus_key(self) -> str:
        return f"prometheus-{self.prometheus}_r{PROMETHEUS_RECIPE}"

    def staging(self) -> str:
        """The v0.x version the Kubernetes staging modules are published at (v1.34.2 -> v0.34.2)."""
        return "v0" + self.kubernetes[2:]


BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "rollouts-controller",
    "kubectl-argo-rollouts",
)


def _cache_base() -> Path:
    return Path(os.environ.get(CACHE_ENV) or str(Path.home() / ".cache" / "slipway" / "cluster"))


def cache_dir(versions: Versions) -> Path:
    return _cache_base() / versions.key


def prometheus_binary(versions: Versions) -> Path:
    return _cache_base() / versions.prometheus_key / "bin" / "prometheus"


def bin_dir(versions: Versions) -> Path:
    return cache_dir(versions) / "bin"


# kwok's own stage definitions from the pinned release: nodes become Ready,
# pods Running and Ready, Job pods complete, deleted pods go; and the chaos
# stage that fails a running pod labelled
# `pod-container-running-failed.stage.kwok.x-k8s.io=true` (how a test makes a
# migration Job fail). Standalone kwok does nothing without stages.
KWOK_STAGES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/general/pod-create.yaml",
    "pod/general/pod-init-container-running.yaml",
    "pod/general/pod-init-container-completed.yaml",
    "pod/general/pod-ready.yaml",
    "pod/general/pod-complete.yaml",
    "pod/general/pod-delete.yaml",
    "pod/chaos/pod-container-running-failed.yaml",
)


def stages_file(versions: Versions) -> Path:
    return cache_dir(versions) / "kwok-stages.yaml"


def missing(versions: Versions) -> list[str]:
    absent = [name for name in BINARIES if not (bin_dir(versions) / name).is_file()]
    if not stages_file(versions).is_file():
        absent.append(stages_file(versions).name)
    return absent


def _log(message: str) -> None:
    print(f"[cluster build] {message}", file=sys.stderr, flush=True)


def _go_env(work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GOWORK="off",
        GOTOOLCHAIN="local",
        CGO_ENABLED="0",
        # -p=2: the machines this runs on have two cores shared with others.
        GOFLAGS="-mod=mod -trimpath -buildvcs=false -p=2",
        TMPDIR=str(work),
    )
    return env


def _run(cmd: list[str], cwd: Path, env: dict[str, str], what: str) -> str:
    started = time.monotonic()
    try:
        done = subprocess.run(
            cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=3600
        )
    except FileNotFoundError as error:
        raise ClusterBuildError(f"{what}: {cmd[0]} is not installed ({error})") from error
    except subprocess.TimeoutExpired as error:
        raise ClusterBuildError(f"{what}: timed out after {error.timeout:.0f} s") from error
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-25:])
        raise ClusterBuildError(f"{what} failed (exit {done.returncode}): {' '.join(cmd)}\n{tail}")
    _log(f"{what}: {time.monotonic() - started:.0f} s")
    return done.stdout


def _fetch(module: str, dest: Path, env: dict[str, str]) -> Path:
    """A writable copy of `module` (path@version): no workspace files, no vendor tree."""
    out = _run(["go", "mod", "download", "-json", module], dest.parent, env, f"download {module}")
    source = Path(json.loads(out)["Dir"])
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest, symlinks=True)
    for path in [dest, *dest.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o200)
    for leftover in ("go.work", "go.work.sum", "vendor"):
        target = dest / leftover
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    return dest


def _repoint(go_mod: Path, pattern: str, replacement: str, expect: int) -> None:
    """Point local `=> ../dir` replaces at published modules; fail loudly if the layout changed."""
    text = go_mod.read_text(encoding="utf-8")
    new, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    if count < expect:
        raise ClusterBuildError(
            f"{go_mod}: expected at least {expect} local replace directives, found {count}; "
            "the module's layout changed, update tests/support/cluster/build.py"
        )
    go_mod.write_text(new, encoding="utf-8")


def _build(src: Path, package: str, out: Path, ldflags: str, env: dict[str, str]) -> None:
    partial = out.with_name(out.name + ".partial")
    _run(
        ["go", "build", "-ldflags", f"-s -w {ldflags}".strip(), "-o", str(partial), package],
        src,
        env,
        f"build {out.name}",
    )
    partial.replace(out)


def _kubernetes(v: Versions, work: Path, bins: Path, env: dict[str, str]) -> None:
    names = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
    if all((bins / n).is_file() for n in names):
        return
    src = _fetch(f"k8s.io/kubernetes@{v.kubernetes}", work / "kubernetes", env)
    _repoint(
        src / "go.mod",
        r"^(\s+)(k8s\.io/[a-z0-9-]+) => \./staging/src/k8s\.io/[a-z0-9-]+$",
        rf"\1\2 => \2 {v.staging()}",
        expect=20,
    )
    major, minor = v.kubernetes[1:].split(".")[:2]
    ldflags = " ".join(
        f"-X {var}"
        for var in (
            f"k8s.io/component-base/version.gitVersion={v.kubernetes}",
            f"k8s.io/component-base/version.gitMajor={major}",
            f"k8s.io/component-base/version.gitMinor={minor}",
            f"k8s.io/client-go/pkg/version.gitVersion={v.kubernetes}",
        )
    )
    for name in names:
        if not (bins / name).is_file():
            _build(src, f"./cmd/{name}", bins / name, ldflags, env)


def _etcd(v: Versions, work: Path, bins: Path, env: dict[str, str]) -> None:
    if (bins / "etcd").is_file():
        return
    src = _fetch(f"go.etcd.io/etcd/server/v3@{v.etcd}", work / "etcd", env)
    _repoint(
        src / "go.mod",
        r"^(\s+)(go\.etcd\.io/etcd/[a-z0-9/]+) => \.\./[a-z0-9/]+$",
        rf"\1\2 => \2 {v.etcd}",
        expect=3,
    )
    _build(src, ".", bins / "etcd", "", env)


def _kwok(v: Versions, work: Path, bins: Path, env: dict[str, str]) -> None:
    if (bins / "kwok").is_file():
        return
    src = _fetch(f"sigs.k8s.io/kwok@{v.kwok}", work / "kwok", env)
    _build(src, "./cmd/kwok", bins / "kwok", "", env)


def _kwok_stages(v: Versions, work: Path, bins: Path, env: dict[str, str]) -> None:
    target = stages_file(v)
    if target.is_file():
        return
    module = f"sigs.k8s.io/kwok@{v.kwok}"
    out = _run(["go", "mod", "download", "-json", module], work, env, f"download {module}")
    stage_dir = Path(json.loads(out)["Dir"]) / "kustomize" / "stage"
    docs = []
    for name in KWOK_STAGES:
        path = stage_dir / name
        if not path.is_file():
            raise ClusterBuildError(f"kwok {v.kwok} has no stage file {name}: update KWOK_STAGES")
        docs.append(
            f"# from sigs.k8s.io/kwok@{v.kwok} kustomize/stage/{name}\n"
            + path.read_text(encoding="utf-8")
        )
    partial = target.with_name(target.name + ".partial")
    partial.write_text("---\n".join(docs), encoding="utf-8")
    partial.replace(target)


def _rollouts(v: Versions, work: Path, bins: Path, env: dict[str, str]) -> None:
    names = ("rollouts-controller", "kubectl-argo-rollouts")
    if all((bins / n).is_file() for n in names):
        return
    # Its replaces point at published modules, which apply because it is built as the main module.
    src = _fetch(
        f"github.com/argoproj/argo-rollouts@v{v.argo_rollouts}", work / "argo-rollouts", env
    )
    ldflags = f"-X github.com/argoproj/argo-rollouts/utils/version.version={v.argo_rollouts}"
    for name in names:
        if not (bins / name).is_file():
            _build(src, f"./cmd/{name}", bins / name, ldflags, env)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder per cache key, across pytest-xdist workers and concurrent runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _require_go(what: str, where: Path) -> None:
    if shutil.which("go") is None:
        raise ClusterBuildError(
            f"Go is not installed: {what} is built from the Go module proxy. "
            f"Install Go, or put the prebuilt binaries in {where}."
        )


def ensure_binaries(versions: Versions | None = None) -> Path:
    """The directory holding every binary, building what is missing. Raises ClusterBuildError."""
    versions = versions or Versions.from_pins()
    bins = bin_dir(versions)
    if not missing(versions):
        return bins
    _require_go(f"the suite's Kubernetes control plane ({', '.join(BINARIES)})", bins)
    key_dir = cache_dir(versions)
    with _locked(key_dir.with_name(key_dir.name + ".lock")):
        if not missing(versions):  # another process built them while we waited
            return bins
        bins.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        _log(f"building {', '.join(missing(versions))} into {bins} (cold: 7-15 min on 2 cores)")
        with tempfile.TemporaryDirectory(prefix="src-", dir=cache_dir(versions)) as tmp:
            work = Path(tmp)
            env = _go_env(work)
            for step in (_kwok_stages, _etcd, _kubernetes, _kwok, _rollouts):
                step(versions, work, bins, env)
        _log(f"done in {time.monotonic() - started:.0f} s")
    still = missing(versions)
    if still:
        raise ClusterBuildError(f"build finished but {', '.join(still)} missing from {bins}")
    return bins


# Only the Kubernetes service discovery the tests use: the other providers'
# SDKs (clouds, Consul, ...) would triple the build. No UI assets either (the
# `builtinassets` tag stays off): the tests need the HTTP API only.
PROMETHEUS_TAGS = "remove_all_sd,enable_kubernetes_sd"


def ensure_prometheus(versions: Versions | None = None) -> Path:
    """The pinned Prometheus server binary, built if missing. Raises ClusterBuildError."""
    versions = versions or Versions.from_pins()
    target = prometheus_binary(versions)
    if target.is_file():
        return target
    _require_go("Prometheus (the Prometheus analysis tests' server)", target.parent)
    key_dir = target.parent.parent
    with _locked(key_dir.with_name(key_dir.name + ".lock")):
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        _log(f"building prometheus {versions.prometheus} into {target.parent} (cold: a few min)")
        with tempfile.TemporaryDirectory(prefix="src-", dir=key_dir) as tmp:
            work = Path(tmp)
            env = _go_env(work)
            # `go install module@version` builds it as released: -mod only applies to a
            # main module, which an install outside one does not have.
            env["GOFLAGS"] = env["GOFLAGS"].replace("-mod=mod ", "")
            env["GOBIN"] = str(work / "bin")
            module = f"github.com/prometheus/prometheus@{versions.prometheus}"
            info = _run(["go", "mod", "download", "-json", module], work, env, f"download {module}")
            release = (Path(json.loads(info)["Dir"]) / "VERSION").read_text().strip()
            ldflags = f"-s -w -X github.com/prometheus/common/version.Version={release}"
            package = f"github.com/prometheus/prometheus/cmd/prometheus@{versions.prometheus}"
            _run(
                ["go", "install", "-tags", PROMETHEUS_TAGS, "-ldflags", ldflags, package],
                work,
                env,
                "build prometheus",
            )
            (work / "bin" / "prometheus").replace(target)
    return target


def main() -> int:
    try:
        bins = ensure_binaries()
        prometheus = ensure_prometheus()
    except ClusterBuildError as error:
        print(f"cluster binaries unavailable: {error}", file=sys.stderr)
        return 1
    print(bins)
    print(prometheus.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
