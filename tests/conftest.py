"""Shared fixtures: one template snapshot, cached renders, one PostgreSQL."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from scripts.snapshot import copy_template
from tests.conformance.service import base_env, check_make, tools_dir_with_uv
from tests.conformance.stacks import STACKS
from tests.support.ci_skips import (  # noqa: F401  (hooks: a skip fails the run in CI)
    pytest_make_collect_report,
    pytest_runtest_makereport,
)
from tests.support.postgres import PostgresServer, start_postgres
from tests.support.render import RenderFn as RenderFn  # re-exported for test modules
from tests.support.render import renderer, tree_digest
from tests.support.update import Updated, build_template_repo, git_env, updater

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


# xdist hands out groups in collection order (the Makefile turns its
# biggest-group-first order off): the groups that take longest go first, so
# none of them starts while the others are nearly done. The cluster's tests
# mostly wait on its controllers and use little CPU: started early, they
# overlap the CPU-bound groups. Ranked by wall time in a -n 3 run; an unlisted
# group or test goes after these, in collection order.
LONGEST_FIRST = (
    "cluster",
    "first-hour",
    "service-python",
    "service-typescript",
    "deploy-manifests",
    "service-python-golang-migrate",
    "update",
    "workflows",
    "service-go",
    "service-typescript-golang-migrate",
    "render",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        groups = {str(m.args[0]) for m in item.iter_markers("xdist_group")}
        return min((LONGEST_FIRST.index(g) for g in groups & set(LONGEST_FIRST)), default=99)

    items.sort(key=rank)  # stable: collection order within a rank


# No saved-failures database: a run behaves the same on a laptop and on a fresh
# CI machine (Hypothesis still caches in .hypothesis/, which git-ignores itself).
settings.register_profile("slipway", database=None, deadline=None)
settings.load_profile("slipway")


@pytest.fixture(scope="session")
def template_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working tree's template as a plain folder (no git), rendered as is.

    Copier would otherwise clone the repository for every render and use the
    latest tag; a snapshot is faster and always shows the change under test.
    """
    return copy_template(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def render(template_snapshot: Path, tmp_path_factory: pytest.TempPathFactory) -> RenderFn:
    """Render once per distinct set of answers; later calls reuse the result.

    Callers must treat the returned folder as read-only (copy it first to
    change anything).
    """
    shared = None
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # The workers' common base temp is this run's alone; the snapshot's
        # digest in the name keeps a render from ever meeting another template.
        shared = tmp_path_factory.getbasetemp().parent / f"renders-{tree_digest(template_snapshot)}"
    return renderer(
        template_snapshot, lambda: tmp_path_factory.mktemp("render"), shared, current=True
    )


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL for the session: DATABASE_URL's if set, else a throwaway one.

    Its data lives outside pytest's base temp: another pytest session on the
    same machine prunes old base temps and would delete a running cluster.
    """
    with (
        tempfile.TemporaryDirectory(prefix="slipway-pg-", ignore_cleanup_errors=True) as workdir,
        start_postgres(Path(workdir)) as server,
    ):
        yield server


@pytest.fixture(scope="session")
def service_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for a generated service's make targets: `uv` on PATH, a
    uv cache shared by every worker and run (so repeated syncs are fast) and
    a mypy cache shared by this run's workers."""
    shared = tmp_path_factory.getbasetemp().parent  # common to all xdist workers
    uv_cache = Path(os.environ.get("UV_CACHE_DIR") or Path.home() / ".cache" / "uv")
    env = base_env(tools_dir_with_uv(shared / "tools-bin"), uv_cache)
    # One mypy cache for every Python copy in the run, as on a developer's
    # machine: mypy checks each cached module's hash, so another copy's
    # entries are reused only where the source is the same (the first strict
    # check of the installed packages takes about 12 s; later ones 1 s).
    env["MYPY_CACHE_DIR"] = str(shared / "mypy-cache")
    return env


@pytest.fixture(scope="session")
def first_hour_env(
    service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """A developer's machine: uv, uvx, go, git with an identity; not CI.

    PRE_COMMIT_HOME sits in ~/.cache/slipway/, so hook environments are
    built once per machine, not once per run (pre-commit locks its store
    while it installs, so workers and runs can share it).
    """
    shared = tmp_path_factory.getbasetemp().parent
    tools = shared / "first-hour-bin"
    tools.mkdir(exist_ok=True)
    for name in ("uv", "uvx"):
        link, target = tools / name, VENV_BIN / name
        # A link left by a run from another checkout may dangle: replace it
        # atomically (rename over it) so concurrent runs never see it missing.
        if not (link.is_symlink() and os.readlink(link) == str(target)):
            fresh = tools / f".{name}-{os.getpid()}"
            fresh.unlink(missing_ok=True)
            fresh.symlink_to(target)
            fresh.replace(link)
    home = tmp_path_factory.mktemp("first-hour-home")
    env = {**git_env(home), **service_env}
    env["GIT_CONFIG_GLOBAL"] = str(home / "gitconfig")
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    env["PATH"] = f"{tools}{os.pathsep}{service_env['PATH']}"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    env["PRE_COMMIT_HOME"] = str(cache / "slipway" / "pre-commit")
    env.pop("CI", None)  # `make setup` installs hooks on a laptop, not in CI
    return env


PreparedFn = Callable[[str], Path]


@pytest.fixture(scope="session")
def prepared_service(
    render: RenderFn, service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> PreparedFn:
    """A writable copy of a stack's render after `make setup`, once per worker."""
    cache: dict[str, Path] = {}

    def _prepare(stack: str) -> Path:
        if stack not in cache:
            dst = tmp_path_factory.mktemp(f"service-{stack}") / "service"
            shutil.copytree(render(**STACKS[stack].answers), dst, symlinks=True)
            env = STACKS[stack].env(service_env)
            for target in STACKS[stack].prepare:
                check_make(dst, target, env)
            cache[stack] = dst
        return cache[stack]

    return _prepare


# --- the update-test harness (tests/support/update.py) -------------------------


@pytest.fixture(scope="session")
def update_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An isolated git identity for the template repository and generated repos."""
    return git_env(tmp_path_factory.mktemp("git-home"))


@pytest.fixture(scope="session")
def template_repo(
    template_snapshot: Path, tmp_path_factory: pytest.TempPathFactory, update_env: dict[str, str]
) -> Path:
    """Tags 0.1.0, 0.2.0 (= the snapshot other tests render) and 0.3.0."""
    return build_template_repo(template_snapshot, tmp_path_factory, update_env)


@pytest.fixture(scope="session")
def updated(
    template_repo: Path,
    update_env: dict[str, str],
    service_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str, str], Updated]:
    """Copy 0.1.0, commit team edits, `make template-update` to 0.2.0 (once per case)."""
    return updater(template_repo, update_env, service_env, tmp_path_factory)
