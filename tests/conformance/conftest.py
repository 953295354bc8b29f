"""Fixtures: one prepared service per stack, a fresh running instance per module."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Iterator, Mapping
from pathlib import Path

import pytest
import yaml

from extensions.slipway import derive, load_pins
from tests.conformance.service import RunningService, run_service
from tests.conformance.stacks import STACKS
from tests.support.postgres import PostgresServer

# Every (tool, stack) pair the registry ships (a shipped stack without a start
# command fails below instead of dropping out of the suite).
READY_STACKS = sorted(STACKS)
# A stack's first pair (`python`: Alembic). Another pair of the same stack
# runs the same service code on a schema from other migrations
# (tests/conformance/test_pairs.py holds them to that), so it runs only the
# modules whose outcome depends on the schema: those set
# `EVERY_PAIR = True`.
FIRST_PAIRS = sorted(key for key, stack in STACKS.items() if key == stack.name)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One session-wide instance per pair (xdist group `service-<pair>`)."""
    if "conformance_stack" not in metafunc.fixturenames:
        return
    every_pair = getattr(metafunc.module, "EVERY_PAIR", False)
    metafunc.parametrize(
        "conformance_stack",
        [
            pytest.param(s, marks=[pytest.mark.slow, pytest.mark.xdist_group(f"service-{s}")])
            for s in (READY_STACKS if every_pair else FIRST_PAIRS)
        ],
        indirect=True,
        scope="session",
    )


@pytest.fixture(scope="session")
def conformance_stack(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def service_root(conformance_stack: str, prepared_service: Callable[[str], Path]) -> Path:
    return prepared_service(conformance_stack)


StartFn = Callable[..., contextlib.AbstractContextManager[RunningService]]


@pytest.fixture(scope="session")
def start_service(
    conformance_stack: str,
    service_root: Path,
    service_env: dict[str, str],
    postgres: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> StartFn:
    """Start a new instance (fresh database) with optional extra environment."""
    answers = yaml.safe_load((service_root / ".copier-answers.yml").read_text())
    package_name = str(derive(answers, load_pins())["package_name"])

    def _start(
        extra_env: Mapping[str, str] | None = None,
    ) -> contextlib.AbstractContextManager[RunningService]:
        return run_service(
            service_root,
            conformance_stack,
            package_name,
            postgres,
            service_env,
            tmp_path_factory.mktemp("service-run"),
            extra_env,
        )

    return _start


@pytest.fixture(scope="session")
def service(start_service: StartFn) -> Iterator[RunningService]:
    """An instance shared by the tests that only add items (own database).

    Tests that need exact totals, an outage or a shutdown start their own.
    """
    with start_service() as running:
        yield running


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the service's logs to a failing test's report."""
    report = yield
    if report.failed:
        funcargs = getattr(item, "funcargs", {})
        for value in funcargs.values():
            if isinstance(value, RunningService):
                report.sections.append(("service logs", value.logs()))
    return report
