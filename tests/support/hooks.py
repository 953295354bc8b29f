"""Running a generated copy's pre-commit hooks, shared by the first-hour and
the golang-migrate pairs' tests."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from extensions.slipway import load_stacks
from tests.conformance.stacks import STACKS

STEP_TIMEOUT = 1200.0  # bounds a hang (first hook install builds actionlint); never a speed claim


def run(
    root: Path, env: dict[str, str], *argv: str, timeout: float = STEP_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), cwd=root, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def assert_hooks_pass(root: Path, stack: str, env: dict[str, str]) -> None:
    """`make hooks` passes every hook on a fresh copy; `make hooks-ci` runs
    exactly the hooks no other CI job runs."""
    done = run(root, env, "make", "--no-print-directory", "hooks")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    config = yaml.safe_load((root / ".pre-commit-config.yaml").read_text())
    outcome = dict(re.findall(r"^(.+?)\.{3,}(?:\(no files to check\))?(\w+)$", done.stdout, re.M))
    for hook in (h for repo in config["repos"] for h in repo["hooks"]):
        status = outcome.get(hook["name"])
        # A fresh copy has no *.rej file for that hook to look at; every
        # other hook has files to check and must pass them.
        expected = "Skipped" if hook["id"] == "no-rejected-hunks" else "Passed"
        assert status == expected, f"{hook['id']}: {status}\n{done.stdout[-4000:]}"

    # CI's hooks job: the hooks the lint and pipeline jobs run are skipped,
    # and what is left needs neither the stack's toolchain nor Go.
    ci = run(root, env, "make", "--no-print-directory", "hooks-ci")
    assert ci.returncode == 0, ci.stdout[-6000:] + ci.stderr[-3000:]
    outcome = dict(re.findall(r"^(.+?)\.{3,}(?:\(no files to check\))?(\w+)$", ci.stdout, re.M))
    skipped = set(load_stacks()["stacks"][STACKS[stack].name]["lint_hooks"])
    skipped |= {"actionlint", "zizmor", "yamllint", "hadolint"}
    for hook in (h for repo in config["repos"] for h in repo["hooks"]):
        ran = outcome.get(hook["name"]) not in (None, "Skipped")
        assert ran == (hook["id"] not in skipped | {"no-rejected-hunks"}), (hook["id"], ci.stdout)
        if ran:
            assert hook["language"] in {"python", "pygrep", "fail"}, hook


def link_node_modules(source: Path, root: Path) -> None:
    """`root`'s node_modules: a link to `source`'s, if it has one (the hooks
    only read it; copying it costs seconds of disk writes per copy)."""
    if (source / "node_modules").is_dir():
        (root / "node_modules").symlink_to(source / "node_modules")
        # .gitignore's `node_modules/` matches folders, not this link.
        with (root / ".git" / "info" / "exclude").open("a") as exclude:
            exclude.write("/node_modules\n")
