"""Node at the pinned version (tools.node), from the npm registry's `node` package.

The machine's own Node may be older than the generated service's runtime; the
`node` package ships the official binary for this platform, so an npm install
into a per-version cache directory gives the exact Node that CI's setup-node and
the image's build stage use. Shared by scripts/relock-typescript and the tests.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
PINS = ROOT / "extensions" / "pins.yml"


def pins() -> dict[str, Any]:
    data = yaml.safe_load(PINS.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{PINS} is not a mapping"
    return data


def pinned(tool: str) -> str:
    return str(pins()["tools"][tool])


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "slipway"


def node_bin(version: str | None = None) -> Path:
    """The folder holding `node` at `version` (default: tools.node); installed once."""
    version = version or pinned("node")
    prefix = cache_root() / f"node-{version}"
    bin_dir = prefix / "node_modules" / ".bin"
    if _reports(bin_dir, version):
        return bin_dir
    prefix.mkdir(parents=True, exist_ok=True)
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm not found: a Node with npm is needed to install the pinned Node")
    # Concurrent test workers: one installs, the others wait and reuse it.
    with (prefix / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _reports(bin_dir, version):
            subprocess.run(
                [npm, "install", "--no-save", "--no-audit", "--no-fund", f"node@{version}"],
                cwd=prefix,
                check=True,
                capture_output=True,
                text=True,
            )
    if not _reports(bin_dir, version):
        raise RuntimeError(f"installing node@{version} into {prefix} did not give Node {version}")
    return bin_dir


def _reports(bin_dir: Path, version: str) -> bool:
    node = bin_dir / "node"
    if not node.exists():
        return False
    result = subprocess.run([str(node), "--version"], capture_output=True, text=True, check=False)
    return result.stdout.strip() == f"v{version}"
