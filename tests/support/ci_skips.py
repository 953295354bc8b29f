"""In CI a skip is a failure: a tool or service that CI should have installed
but did not must turn the run red, not quietly shrink it.

Two hooks, because pytest reports skips from two places: a test's own phases
(setup, call, teardown: `pytest.skip()`, a skipping fixture, an empty
parametrization) and collection (`pytest.skip(allow_module_level=True)` or
`pytest.importorskip()` at module level, which skips a whole file before any
test exists). Both run wherever collection and tests run, xdist workers
included. tests/conftest.py imports them; tests/test_ci_skips.py runs them.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

PREFIX = "skipped in CI (CI=true makes every skip a failure)"


def _in_ci() -> bool:
    return os.environ.get("CI") == "true"


def _reason(longrepr: object) -> str:
    # A skip's longrepr is (path, line, "Skipped: why").
    return str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if _in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        report.longrepr = f"{PREFIX}: {_reason(report.longrepr)}"
        report.outcome = "failed"
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    if _in_ci() and report.skipped:
        report.longrepr = f"{PREFIX}: {_reason(report.longrepr)}"
        report.outcome = "failed"
    return report
