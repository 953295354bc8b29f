"""README.md's first commands exist as written, and CI runs the README's test command."""

from __future__ import annotations

import re
import shlex
import subprocess
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
