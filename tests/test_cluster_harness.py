"""The cluster harness's own promises: pinned, complete, loud when it cannot build."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cluster.build import (
    PINS,
    ClusterBuildError,
    Versions,
    ensure_prometheus,
    prometheus_binary,
)
from tests.support.cluster.control_plane import crd_dir

ROOT = Path(__file__).resolve().parent.parent


def unused_cluster_pins(pins: dict[str, Any]) -> list[str]:
    """Keys of pins.yml's `cluster` section the harness does not read."""
    read = {f.name for f in fields(Versions)}
    return sorted(set(pins.get("cluster") or {}) - read)


def test_every_cluster_pin_is_used() -> None:
    pins = yaml.safe_load(PINS.read_text())
    assert unused_cluster_pins(pins) == []
    versions = Versions.from_pins()
    # Each version reaches the cache key of what it builds, so a bump never
    # reuses old binaries; Prometheus has its own, so bumping it (or the
    # control plane) never rebuilds the other.
    for name in (f.name for f in fields(Versions)):
        key = versions.prometheus_key if name == "prometheus" else versions.key
        assert getattr(versions, name) in key, name
    assert versions.prometheus not in versions.key
    assert versions.argo_rollouts == str(pins["tools"]["argo_rollouts"])
    assert crd_dir(versions).is_dir(), "vendored CRDs must follow tools.argo_rollouts"


def test_an_unread_cluster_pin_is_reported() -> None:
    pins = yaml.safe_load(PINS.read_text())
    pins["cluster"]["coredns"] = "v1.12.0"
    assert unused_cluster_pins(pins) == ["coredns"]


def _module_dir(module: str) -> Path:
    done = subprocess.run(
        ["go", "mod", "download", "-json", module],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, f"cannot fetch {module} (the cluster build needs it too): {done}"
    return Path(json.loads(done.stdout)["Dir"])


@pytest.mark.slow
def test_vendored_crds_are_the_pinned_releases_full_set() -> None:
    """The controller watches every kind of its release: all CRDs, unmodified."""
    versions = Versions.from_pins()
    release = _module_dir(f"github.com/argoproj/argo-rollouts@v{versions.argo_rollouts}")
    upstream = {p.name: p.read_bytes() for p in (release / "manifests" / "crds").glob("*.yaml")}
    upstream.pop("kustomization.yaml", None)
    vendored = {p.name: p.read_bytes() for p in crd_dir(versions).glob("*.yaml")}
    assert sorted(vendored) == sorted(upstream)
    for name, content in upstream.items():
        assert vendored[name] == content, f"{name} differs from the release"


def _build(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.support.cluster.build"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_unobtainable_binaries_are_a_clear_error(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SLIPWAY_CLUSTER_CACHE": str(tmp_path / "cache"),
        "GOMODCACHE": str(tmp_path / "modcache"),
        "GOPROXY": "off",
    }
    done = _build(env)
    assert done.returncode == 1
    assert "cluster binaries unavailable" in done.stderr
    # Which download failed (the first step fetches kwok's stage files), and Go's reason.
    assert f"download sigs.k8s.io/kwok@{Versions.from_pins().kwok} failed" in done.stderr
    assert "module lookup disabled by GOPROXY=off" in done.stderr


def test_unobtainable_prometheus_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLIPWAY_CLUSTER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "modcache"))
    monkeypatch.setenv("GOPROXY", "off")
    versions = Versions.from_pins()
    with pytest.raises(ClusterBuildError) as raised:
        ensure_prometheus(versions)
    message = str(raised.value)
    assert f"download github.com/prometheus/prometheus@{versions.prometheus} failed" in message
    assert "module lookup disabled by GOPROXY=off" in message
    assert not prometheus_binary(versions).exists()


def test_missing_go_is_a_clear_error(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SLIPWAY_CLUSTER_CACHE": str(tmp_path / "cache"),
        "PATH": str(Path(sys.executable).parent),  # python, no go
    }
    done = _build(env)
    assert done.returncode == 1
    assert "Go is not installed" in done.stderr
    assert str(tmp_path / "cache") in done.stderr  # where prebuilt binaries would go
