"""One list of gates: extensions/stacks.yml's `makefile_contract` and `ci_gates`.

Every stack's Makefile defines the contract's targets and its `make ci` runs
exactly `ci_gates`; CI's gate jobs run each of them (plus `audit`, which
`make ci` leaves out on purpose); docs/service-contract.md and the policy
tests' job list agree.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from extensions.slipway import load_stacks
from tests.conformance.stacks import STACKS
from tests.conftest import RenderFn
from tests.support.combos import make_calls, render_all, runs
from tests.test_workflows_policy import GATES

pytestmark = pytest.mark.xdist_group("workflows")

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = load_stacks()
CONTRACT = REGISTRY["makefile_contract"]
CI_GATES = REGISTRY["ci_gates"]
# Added by stacks with `contract_gate: true` (issue 11); contract-diff is shared.
CONTRACT_GATES = REGISTRY["contract_gates"]
# Gates `make ci` leaves to CI alone, each for a stated reason (stacks.yml).
CI_ONLY = {"audit"}


def make_targets(makefile: str) -> dict[str, list[str]]:
    """target -> prerequisites, for every rule in a rendered Makefile."""
    rules = re.findall(r"^([a-z][a-z-]*):(?!=)([^#\n]*)", makefile, re.M)
    return {name: prereqs.split() for name, prereqs in rules}


def test_the_lists_are_consistent() -> None:
    assert set(CI_GATES) <= set(CONTRACT)
    assert set(CONTRACT) - set(CI_GATES) >= CI_ONLY
    assert "ci" in CONTRACT and "ci" not in CI_GATES


def test_the_service_contract_lists_the_makefile_contract() -> None:
    text = (ROOT / "docs" / "service-contract.md").read_text()
    section = text.split("## Make targets", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"`([a-z][a-z-]*)`", section)  # target names only
    assert sorted(set(listed)) == sorted({*CONTRACT, *CONTRACT_GATES, "contract-diff"})


def migrate_check_groups() -> dict[str, set[str]]:
    """The contract's two kinds of `migrate-check`: tool names by kind."""
    text = " ".join((ROOT / "docs" / "service-contract.md").read_text().split())
    down = re.search(r"tools with down migrations \(([^)]*)\)", text)
    forward = re.search(r"forward-only ones \(([^)]*)\)", text)
    assert down and forward, "the contract no longer says what migrate-check does per tool"
    return {
        kind: {t.strip() for t in m[1].split(",")}
        for kind, m in (("down", down), ("forward", forward))
    }


@pytest.mark.parametrize("stack", list(STACKS))
def test_the_contract_says_what_each_migrate_check_does(render: RenderFn, stack: str) -> None:
    # Per (tool, stack): down then up again only where the tool has down
    # migrations, as the rendered Makefile's own help says.
    tool = STACKS[stack].tool
    name = REGISTRY["migration_tools"][tool]["label"].split(" (")[0]
    makefile = (render(**STACKS[stack].answers) / "Makefile").read_text()
    help_ = re.search(r"^migrate-check:.*## (.*)$", makefile, re.M)
    assert help_, f"{stack}: no migrate-check help line"
    goes_down = bool(re.search(r"\bdown", help_[1]))
    groups = migrate_check_groups()
    assert name in groups["down" if goes_down else "forward"], (name, help_[1], groups)
    assert name not in groups["forward" if goes_down else "down"]


@pytest.mark.parametrize("stack", list(STACKS))
def test_every_stack_makefile_keeps_the_contract(render: RenderFn, stack: str) -> None:
    targets = make_targets((render(**STACKS[stack].answers) / "Makefile").read_text())
    gated = bool(REGISTRY["stacks"][STACKS[stack].name].get("contract_gate"))
    missing = [t for t in [*CONTRACT, *(CONTRACT_GATES if gated else [])] if t not in targets]
    assert not missing, f"{stack}'s Makefile lacks {missing}"
    assert targets["ci"] == CI_GATES + (CONTRACT_GATES if gated else [])


def test_ci_jobs_run_every_gate_and_only_contract_gates(render: RenderFn) -> None:
    for rendered in render_all(render):
        jobs = rendered.workflow("ci")["jobs"]
        # the API contract job comes with the stack's contract gate (issue 11)
        offers_contract = "contract" in make_targets((rendered.root / "Makefile").read_text())
        expected_jobs = set(GATES) if offers_contract else set(GATES) - {"contract"}
        assert expected_jobs == set(jobs), f"{rendered.id}: the policy tests' job list is stale"
        called = {
            target for job in jobs.values() for run in runs(job) for target, _ in make_calls(run)
        }
        assert set(CI_GATES) | CI_ONLY <= called, rendered.id
        service_gates = called & (set(CONTRACT) | set(CONTRACT_GATES))
        expected = set(CI_GATES) | CI_ONLY | set(CONTRACT_GATES)
        assert service_gates <= expected, (
            f"{rendered.id}: CI runs {sorted(service_gates - expected)} "
            "that neither `make ci` nor CI_ONLY lists"
        )
