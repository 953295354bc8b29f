"""With CI=true every way a test can be skipped fails the run (tests/support/ci_skips.py).

A throwaway pytest project, run as a subprocess with the same hooks, skips in
each way pytest allows: inside a test, in a fixture, by an empty
parametrization, and for a whole module at collection (`allow_module_level`,
`importorskip`), the last two being what a missing optional tool looks like.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SAMPLES = {
    "conftest.py": "from tests.support.ci_skips import *  # noqa: F403\n",
    "test_in_test.py": "import pytest\n\ndef test_a():\n    pytest.skip('reason-in-test')\n",
    "test_in_fixture.py": (
        "import pytest\n\n@pytest.fixture\ndef tool():\n    pytest.skip('reason-in-fixture')\n\n"
        "def test_b(tool):\n    pass\n"
    ),
    "test_empty_params.py": (
        "import pytest\n\n@pytest.mark.parametrize('x', [])\ndef test_c(x):\n    pass\n"
    ),
    "test_module_skip.py": (
        "import pytest\n\npytest.skip('reason-module', allow_module_level=True)\n\n"
        "def test_d():\n    pass\n"
    ),
    "test_importorskip.py": (
        "import pytest\n\npytest.importorskip('slipway_no_such_tool')\n\ndef test_e():\n    pass\n"
    ),
    "test_xfail.py": (
        "import pytest\n\n@pytest.mark.xfail(reason='known', strict=True)\n"
        "def test_f():\n    assert False\n"
    ),
    "test_passes.py": "def test_g():\n    pass\n",
}
REASONS = (
    "reason-in-test",
    "reason-in-fixture",
    "got empty parameter set",
    "reason-module",
    "slipway_no_such_tool",
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ci-skips")
    for name, text in SAMPLES.items():
        (root / name).write_text(text)
    return root


def run_pytest(project: Path, ci: bool, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(ROOT)
    # Only the hooks under test (and xdist, by -p): the suite's other pytest
    # plugins (pytest-copie, hypothesis, anyio) take seconds to import in each
    # process and play no part in how a skip is reported.
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    if ci:
        env["CI"] = "true"
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", *args]
    return subprocess.run(
        cmd, cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_outside_ci_the_skips_are_skips(project: Path) -> None:
    result = run_pytest(project, ci=False)
    assert result.returncode == 0, result.stdout
    assert re.search(r"\b1 passed, 5 skipped, 1 xfailed\b", result.stdout), result.stdout


@pytest.mark.parametrize(
    "workers", [[], ["-p", "xdist.plugin", "-n", "2"]], ids=["in-process", "xdist"]
)
def test_in_ci_every_skip_fails_the_run(project: Path, workers: list[str]) -> None:
    # Collection errors would stop the run before the tests' own skips show.
    result = run_pytest(project, True, "--continue-on-collection-errors", *workers)
    assert result.returncode == 1, result.stdout + result.stderr
    assert not re.search(r"\d+ skipped", result.stdout), result.stdout
    assert re.search(r"\b1 passed\b", result.stdout), result.stdout
    assert re.search(r"\b1 xfailed\b", result.stdout), "an expected failure is no skip"
    for reason in REASONS:
        pattern = rf"skipped in CI \(CI=true makes every skip a failure\): .*{re.escape(reason)}"
        assert re.search(pattern, result.stdout), f"{reason}:\n{result.stdout}"
