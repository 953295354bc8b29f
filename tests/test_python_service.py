"""The default (Python) render's `make ci`: what it must contain, and a gate
that must fail without a database. The full `make ci` of a fresh copy runs in
tests/test_first_hour.py (the after-copy steps, run as written).

`make setup` runs once per worker (the `prepared_service` fixture, shared with
tests/conformance/, which then runs the HTTP contract against the same copy).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conformance.service import run_make

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("service-python")]


def test_integration_gate_fails_without_a_database(
    prepared_service: Callable[[str], Path], service_env: dict[str, str]
) -> None:
    # without DATABASE_URL the integration gates must fail loudly, not skip to green
    result = run_make(prepared_service("python"), "test-integration", service_env)
    assert result.returncode != 0, result.stdout[-4000:]
    # ...and fail for that reason, saying how to get one (not on some other error)
    assert "DATABASE_URL is not set" in result.stderr, result.stdout[-2000:] + result.stderr


def test_make_ci_runs_every_service_gate(prepared_service: Callable[[str], Path]) -> None:
    # a green `make ci` means something only if ci still depends on every gate
    # docs/service-contract.md names (make -p prints the rule database)
    database = subprocess.run(
        ["make", "-p", "-n", "-q", "ci"],
        cwd=prepared_service("python"),
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    rule = next((ln for ln in database.splitlines() if ln.startswith("ci:")), "")
    gates = {"lint", "typecheck", "test", "test-integration", "migrate-check", "migration-lint"}
    assert gates <= set(rule.split(":", 1)[-1].split()), rule
