"""The suite's own tools on PATH, and Go modules some tests build from source."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent  # uv, uvx, kubectl, shellcheck, actionlint


def tool_env(*first: Path) -> dict[str, str]:
    """The environment with `first` (e.g. a stand-in) and then the suite's tools on PATH."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([*map(str, first), str(VENV_BIN), env.get("PATH", "")])
    return env


def require_go_module(module: str, purpose: str) -> None:
    """Skip, saying why, when `module` (path@version) cannot be fetched here.

    In CI a skip is a failure (tests/support/ci_skips.py), so this only
    explains what is missing; it never hides it.
    """
    if shutil.which("go") is None:
        pytest.skip(f"Go is not installed: {purpose}")
    probe = subprocess.run(
        ["go", "mod", "download", "-json", module],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"Go module proxy unreachable, cannot fetch {module}: {probe.stdout[-200:]}")
