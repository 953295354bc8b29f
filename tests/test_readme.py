"""README.md's first commands exist as written, and CI runs the README's test command."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)


def _first_block() -> list[str]:
    match = FENCE.search((ROOT / "README.md").read_text(encoding="utf-8"))
    assert match, "README.md has no fenced code block"
    return [line.strip() for line in match.group(1).splitlines() if line.strip()]


def _last_command(script: Path) -> str:
    lines = [ln.strip() for ln in script.read_text(encoding="utf-8").splitlines()]
    commands = [ln for ln in lines if ln and not ln.startswith("#")]
    return commands[-1]


def test_readme_starts_with_exactly_the_demo_and_test_commands() -> None:
    assert _first_block() == ["make demo", "make test"]


def test_readme_commands_are_real_make_targets() -> None:
    for line in _first_block():
        argv = shlex.split(line)
        assert argv[0] == "make", line
        # -n: print what would run without running it; fails on an unknown target
        result = subprocess.run(
            ["make", "-n", *argv[1:]], cwd=ROOT, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"{line}: {result.stderr}"
        assert result.stdout.strip(), f"{line}: the target does nothing"


def test_ci_runs_the_readme_test_command() -> None:
    ci = ROOT / ".ci" / "run"
    assert ci.stat().st_mode & 0o111, ".ci/run is not executable"
    assert _last_command(ci) == _first_block()[1]


# --- the tests that need the network, as the README lists them ------------------

NETWORK_SECTION = "Which tests run where"
LISTED = re.compile(r"^- `(tests/[^`]+::[^`]+)`", re.M)


def readme_network_tests(text: str) -> set[str]:
    """The test ids the README's "Which tests run where" paragraph lists."""
    section = text.split(NETWORK_SECTION, 1)[1].split("\n#", 1)[0]
    return set(LISTED.findall(section))


def marked_network_tests() -> set[str]:
    """Every test id marked needs_network, as pytest collects them. A test can
    only carry the marker in a file that names it, so only those are collected."""
    files = sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests").rglob("test_*.py")
        if "needs_network" in p.read_text(encoding="utf-8")
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-n",
            "0",
            "-m",
            "needs_network",
            *files,
        ],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return {line for line in result.stdout.splitlines() if "::" in line}


def test_readme_lists_every_needs_network_test() -> None:
    marked = marked_network_tests()
    assert marked, "no test is marked needs_network: the README's list says otherwise"
    listed = readme_network_tests((ROOT / "README.md").read_text(encoding="utf-8"))
    assert {"unlisted": marked - listed, "stale": listed - marked} == {
        "unlisted": set(),
        "stale": set(),
    }


def test_a_needs_network_test_left_out_of_the_readme_is_found() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    left_out = "tests/test_first_hour.py::test_after_copy_steps_work_as_written[typescript]"
    assert left_out in readme_network_tests(text)
    planted = text.replace(f"- `{left_out}`", f"- {left_out}")
    assert left_out not in readme_network_tests(planted)
