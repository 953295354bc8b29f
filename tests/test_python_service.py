"""The default (Python) render passes its own `make ci` against a real PostgreSQL.

`make setup` runs once per worker (the `prepared_service` fixture, shared with
tests/conformance/, which then runs the HTTP contract against the same copy).
"""

from __future__ import annotations

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


def test_make_ci_needs_a_database(
    prepared_service: Callable[[str], Path], service_env: dict[str, str]
) -> None:
    # without DATABASE_URL the integration gates must fail loudly, not skip to green
    result = run_make(prepared_service("python"), "test-integration", service_env)
    assert result.returncode != 0, result.stdout[-4000:]
