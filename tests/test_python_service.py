"""The default (Python) render passes its own `make ci` against a real PostgreSQL.

`make setup` runs once per worker (the `prepared_service` fixture, shared with
tests/conformance/, which then runs the HTTP contract against the same copy).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conformance.service import run_make
from tests.support.postgres import PostgresServer

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("service-python")]


def test_make_ci_passes_on_a_fresh_database(
    prepared_service: Callable[[str], Path],
    service_env: dict[str, str],
    postgres: PostgresServer,
) -> None:
    root = prepared_service("python")
    database_url = postgres.create_database("ci")
    try:
        result = run_make(root, "ci", {**service_env, "DATABASE_URL": database_url})
    finally:
        postgres.drop_database(database_url)
    assert result.returncode == 0, (
        f"`make ci` exited {result.returncode}\n"
        f"--- stdout (tail) ---\n{result.stdout[-12000:]}\n"
        f"--- stderr (tail) ---\n{result.stderr[-6000:]}"
    )


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
