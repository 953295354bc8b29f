"""`make secret-scan` (CI's secret-scan job) runs the pinned gitleaks for real.

gitleaks is built from its Go module at the pinned version (the Go checksum
database vouches for it; CI downloads the release archive instead). Without
the module proxy the test is skipped, saying so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from extensions.slipway import load_pins
from tests.conftest import RenderFn
from tests.support.tools import require_go_module

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("workflows")]

MODULE = "github.com/zricethezav/gitleaks/v8"  # the module path kept its old owner
# Built at run time so that no scanner flags this file: an AWS access key id
# shape (not an AWS example key, which gitleaks allows).
FAKE_KEY = "AKIA" + "Q3RZ7XK2M5W4JH6T"


@pytest.fixture(scope="module")
def gitleaks_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    module = f"{MODULE}@v{load_pins()['tools']['gitleaks']}"
    require_go_module(module, "gitleaks is built from its Go module here")
    bin_dir = tmp_path_factory.mktemp("gitleaks-bin")
    built = subprocess.run(
        ["go", "install", module],
        env={**os.environ, "GOBIN": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    return bin_dir


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=Dev", "-c", "user.email=dev@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def secret_scan(repo: Path, gitleaks_bin: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{gitleaks_bin}:{os.environ.get('PATH', '')}"}
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(repo), "secret-scan"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.fixture
def repo(render: RenderFn, tmp_path: Path) -> Path:
    """A generated repo committed as a team's first commit."""
    root = tmp_path / "service"
    shutil.copytree(render(registry="dockerhub", cluster="kubeconfig"), root, symlinks=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "Initial commit from Slipway")
    return root


def test_a_freshly_generated_repo_passes_the_secret_scan(repo: Path, gitleaks_bin: Path) -> None:
    # Example credentials in the README, compose file and CI must not turn
    # every new repo's first CI run red.
    result = secret_scan(repo, gitleaks_bin)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_a_secret_anywhere_in_the_history_fails_the_scan_redacted(
    repo: Path, gitleaks_bin: Path
) -> None:
    (repo / "settings.ini").write_text(f"aws_access_key_id = {FAKE_KEY}\n")
    git(repo, "add", "settings.ini")
    git(repo, "commit", "-q", "-m", "Add settings")
    git(repo, "rm", "-q", "settings.ini")
    git(repo, "commit", "-q", "-m", "Remove settings")  # gone from the tree, not the history
    result = secret_scan(repo, gitleaks_bin)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "aws-access-token" in output
    assert "settings.ini" in output
    assert FAKE_KEY not in output, "make secret-scan printed the secret (no --redact)"
