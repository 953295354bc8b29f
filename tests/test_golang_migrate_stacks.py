"""golang-migrate as the plain-SQL migration tool of the Python and TypeScript stacks.

Each (golang-migrate, stack) pair the registry ships (besides Go, which embeds
its migrations: tests/test_go_stack_gates.py) renders SQL files in
migrations/, runs `make ci` against a real PostgreSQL with the pinned CLI, and
its migration Job applies the SQL of the service image with the pinned
`migrate/migrate` image. The gates go red on planted problems in a private copy.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from extensions.slipway import load_pins, stack_profile
from tests.conformance.service import check_make, run_make
from tests.conformance.stacks import STACKS
from tests.conftest import RenderFn
from tests.support.hooks import assert_hooks_pass, link_node_modules
from tests.support.postgres import PostgresServer
from tests.support.update import git

ROOT = Path(__file__).resolve().parent.parent
PINS = load_pins()
CLI_MODULE = "github.com/golang-migrate/migrate/v4/cmd/migrate"
# Every shipped pair that applies plain SQL with golang-migrate's CLI.
PAIRS = sorted(k for k, s in STACKS.items() if s.tool == "golang-migrate" and s.name != "go")
# One xdist worker per pair, sharing its prepared copy with tests/conformance/.
ON_WORKER = [pytest.param(p, marks=pytest.mark.xdist_group(f"service-{p}")) for p in PAIRS]

pytestmark = [] if shutil.which("go") else [pytest.mark.skip(reason="Go is not installed")]


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return sorted(name for (name,) in rows.fetchall())


def databases(postgres: PostgresServer) -> set[str]:
    with psycopg.connect(postgres.url) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate").fetchall()
    return {name for (name,) in rows}


def job_pod(root: Path) -> dict[str, Any]:
    docs = yaml.safe_load_all((root / "deploy" / "migrate" / "job.yaml").read_text())
    [job] = [doc for doc in docs if doc["kind"] == "Job"]
    pod: dict[str, Any] = job["spec"]["template"]["spec"]
    return pod


@pytest.fixture
def database_url(postgres: PostgresServer) -> Iterator[str]:
    url = postgres.create_database("gm")
    yield url
    postgres.drop_database(url)


@pytest.fixture(scope="session")
def migrate_cli(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pinned CLI with the drivers of the official image that matter here
    (pgx v5), installed from the Go module proxy: the Job's `migrate`."""
    gobin = tmp_path_factory.mktemp("migrate-cli")
    version = PINS["tools"]["golang_migrate"]
    subprocess.run(
        ["go", "install", "-tags", "pgx5", f"{CLI_MODULE}@v{version}"],
        env={**os.environ, "GOBIN": str(gobin)},
        check=True,
        capture_output=True,
        timeout=900,
    )
    return gobin / "migrate"


# --- what is rendered ----------------------------------------------------------------


@pytest.mark.parametrize("pair", PAIRS)
def test_migrations_are_plain_sql_with_the_contracts_items_table(
    render: RenderFn, pair: str
) -> None:
    root = render(**STACKS[pair].answers)
    files = sorted(p.name for p in (root / "migrations").iterdir())
    assert files == ["0001_create_items.down.sql", "0001_create_items.up.sql", "schema.txt"]
    # the same SQL as the Go stack's: one schema for every golang-migrate service
    go = render(**STACKS["go"].answers) / "migrations"
    for name in files:
        assert (root / "migrations" / name).read_text() == (go / name).read_text()
    schema = (root / "migrations" / "schema.txt").read_text()
    assert "column items.name character varying(200) NOT NULL" in schema
    assert "column items.description character varying(2000)\n" in schema
    assert "column items.created_at timestamp with time zone NOT NULL DEFAULT now()" in schema


def test_python_pair_needs_no_alembic(render: RenderFn) -> None:
    root = render(**STACKS["python-golang-migrate"].answers)
    for name in ("pyproject.toml", "uv.lock", "mypy.ini", "Dockerfile", "Makefile"):
        assert "alembic" not in (root / name).read_text().lower(), name
    for path in [*root.glob("scripts/*.py"), *root.glob("tests/**/*.py")]:
        assert not re.search(r"^\s*(from|import) alembic", path.read_text(), re.M), path
    assert not (root / "migrations" / "env.py").exists()
    # what `make platform-check` asks of the team's lock has no Alembic either
    requires = stack_profile("golang-migrate", "python")["platform_requires"]
    assert not any("alembic" in r for group in requires.values() for r in group)
    assert requires["dev"] == stack_profile("alembic", "python")["platform_requires"]["dev"]


def test_typescript_pair_keeps_prisma_as_the_client_only(render: RenderFn) -> None:
    root = render(**STACKS["typescript-golang-migrate"].answers, migration_runner="job")
    assert not (root / "prisma" / "migrations").exists()
    assert (root / "prisma" / "schema.prisma").is_file()
    makefile = (root / "Makefile").read_text()
    recipes = [line for line in makefile.splitlines() if line.startswith("\t")]
    assert not [line for line in recipes if "migrate deploy" in line or "migrate diff" in line]
    assert "\t$(PRISMA) generate" in recipes
    assert "prisma" not in json.dumps(job_pod(root))
    runtime = (root / "Dockerfile").read_text().split(" AS runtime", 1)[1]
    assert "COPY prisma/" not in runtime and "PRISMA_SCHEMA_ENGINE_BINARY" not in runtime


@pytest.mark.parametrize("pair", PAIRS)
def test_the_cli_and_the_job_image_are_the_pinned_version(render: RenderFn, pair: str) -> None:
    version = PINS["tools"]["golang_migrate"]
    assert PINS["images"]["migrate"]["tag"] == f"v{version}"
    root = render(**STACKS[pair].answers, migration_runner="job")
    cli = f"{CLI_MODULE}@v{version}"
    assert cli in "".join(p.read_text() for p in root.glob("scripts/*"))
    pod = job_pod(root)
    [migrate] = pod["containers"]
    image = PINS["images"]["migrate"]
    assert migrate["image"] == f"{image['image']}:{image['tag']}@{image['digest']}"
    # the Go stack requires the same golang-migrate module version
    go_mod = (render(**STACKS["go"].answers) / "go.mod").read_text()
    assert f"github.com/golang-migrate/migrate/v4 v{version}\n" in go_mod


@pytest.mark.parametrize("pair", PAIRS)
def test_the_job_applies_the_sql_of_the_service_image(render: RenderFn, pair: str) -> None:
    root = render(**STACKS[pair].answers, migration_runner="job")
    pod = job_pod(root)
    [copy] = pod["initContainers"]
    [migrate] = pod["containers"]
    assert copy["image"] == "demo-service"  # kustomize sets the deploy's digest
    assert "demo-service" not in migrate["image"]
    # the Dockerfile ships the SQL where the init container reads it
    dockerfile = (root / "Dockerfile").read_text()
    assert re.search(r"^WORKDIR /app$", dockerfile, re.M)
    assert re.search(r"^COPY migrations/ migrations/$", dockerfile, re.M)
    assert copy["command"][-2:] == ["/app/migrations", "/migrations"]
    volumes = {v["name"] for v in pod["volumes"]}
    shared = {m["name"] for m in copy["volumeMounts"]} & {
        m["name"] for m in migrate["volumeMounts"]
    }
    assert shared == {"migrations"} <= volumes
    assert all(m.get("readOnly") for m in migrate["volumeMounts"])
    assert "-path /migrations" in migrate["command"][-1]


@pytest.mark.slow
@pytest.mark.parametrize("pair", ON_WORKER)
def test_the_jobs_commands_migrate_up_down_and_up(
    render: RenderFn,
    pair: str,
    prepared_service: Callable[[str], Path],
    migrate_cli: Path,
    database_url: str,
    tmp_path: Path,
) -> None:
    """Both containers' commands as the Job runs them, with the real pinned CLI:
    the service's runtime copies its migrations/, the CLI applies them to the
    libpq-style URL of the cluster's Secret."""
    root = prepared_service(pair)
    pod = job_pod(render(**STACKS[pair].answers, migration_runner="job"))
    [copy] = pod["initContainers"]
    [migrate] = pod["containers"]
    volume = tmp_path / "migrations"
    volume.mkdir()
    # the image's runtime: the service's own Python, or the pinned Node
    runtime = {"python": str(root / ".venv" / "bin" / "python"), "node": "node"}
    program = next(v for k, v in runtime.items() if Path(copy["command"][0]).name.startswith(k))
    argv = [program, *copy["command"][1:-2], str(root / "migrations"), str(volume)]
    subprocess.run(argv, env=STACKS[pair].env(dict(os.environ)), check=True, timeout=60)
    assert sorted(p.name for p in volume.glob("*.sql")) == sorted(
        p.name for p in (root / "migrations").glob("*.sql")
    )

    shell, flag, script = migrate["command"]
    script = script.replace("-path /migrations", f"-path {shlex.quote(str(volume))}")
    env = {"PATH": f"{migrate_cli.parent}:/usr/bin:/bin", "DATABASE_URL": database_url}

    def job(*args: str) -> str:
        line = re.sub(r" up$", " " + " ".join(args), script)
        result = subprocess.run(
            [shell, flag, line], env=env, capture_output=True, text=True, check=False, timeout=120
        )
        assert result.returncode == 0, output(result)
        return output(result)

    assert "1/u create_items" in job("up")
    assert tables(database_url) == ["items", "schema_migrations"]
    assert "1/d create_items" in job("down", "-all")
    assert tables(database_url) == ["schema_migrations"]
    assert "1/u create_items" in job("up")
    assert job("version").strip().endswith("1")


# --- the shared set-up copy: `make ci` --------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("pair", ON_WORKER)
def test_make_ci_passes_on_a_fresh_database(
    pair: str,
    prepared_service: Callable[[str], Path],
    service_env: dict[str, str],
    postgres: PostgresServer,
) -> None:
    root = prepared_service(pair)
    env = STACKS[pair].env(service_env)
    database_url = postgres.create_database("ci")
    before = databases(postgres)
    try:
        result = run_make(root, "ci", {**env, "DATABASE_URL": database_url})
        assert result.returncode == 0, (
            f"`make ci` exited {result.returncode}\n"
            f"--- stdout (tail) ---\n{result.stdout[-12000:]}\n"
            f"--- stderr (tail) ---\n{result.stderr[-6000:]}"
        )
        # scratch databases only: DATABASE_URL's own database stays empty
        assert tables(database_url) == []
        assert databases(postgres) == before
    finally:
        postgres.drop_database(database_url)
    for gate in ("squawk", "migrate-check: migrate down -all", "migrate-check: ok"):
        assert gate in output(result), f"`make ci` did not run {gate}"


@pytest.mark.slow
@pytest.mark.parametrize("pair", ON_WORKER)
def test_make_migrate_applies_the_sql_with_the_pinned_cli(
    pair: str,
    prepared_service: Callable[[str], Path],
    service_env: dict[str, str],
    database_url: str,
) -> None:
    env = {**STACKS[pair].env(service_env), "DATABASE_URL": database_url}
    result = run_make(prepared_service(pair), "migrate", env)
    assert result.returncode == 0, output(result)
    assert f"{CLI_MODULE}@v{PINS['tools']['golang_migrate']}" in output(result)
    assert tables(database_url) == ["items", "schema_migrations"]
    again = run_make(prepared_service(pair), "migrate", env)
    assert again.returncode == 0 and "no change" in output(again), output(again)


# --- a private copy per pair: each gate goes red on a planted problem -------------------


class Planted:
    """Files written into the service for one test, restored after it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.saved: dict[Path, str | None] = {}

    def write(self, relative: str, text: str) -> None:
        path = self.root / relative
        self.saved.setdefault(path, path.read_text() if path.exists() else None)
        path.write_text(text)

    def edit(self, relative: str, old: str, new: str) -> None:
        text = (self.root / relative).read_text()
        assert old in text, f"{relative} no longer contains {old!r}"
        self.write(relative, text.replace(old, new))

    def restore(self) -> None:
        for path, text in self.saved.items():
            if text is None:
                path.unlink()
            else:
                path.write_text(text)


@pytest.fixture(scope="module", params=ON_WORKER)
def private(
    request: pytest.FixtureRequest,
    render: RenderFn,
    prepared_service: Callable[[str], Path],
    service_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[str, Path, dict[str, str]]:
    """A private, set-up copy of the pair's render: these tests edit its files.

    Python gets its own `make setup` (the shared copy's editable install
    points at itself); TypeScript shares the prepared node_modules (a symlink),
    so no test installs it twice.
    """
    pair = str(request.param)
    dst = tmp_path_factory.mktemp(f"gm-gates-{pair}") / "service"
    env = STACKS[pair].env(service_env)
    if STACKS[pair].name == "typescript":
        prepared = prepared_service(pair)
        shutil.copytree(prepared, dst, symlinks=True, ignore=shutil.ignore_patterns("node_modules"))
        (dst / "node_modules").symlink_to(prepared / "node_modules", target_is_directory=True)
    else:
        shutil.copytree(render(**STACKS[pair].answers), dst, symlinks=True)
        check_make(dst, "setup", env)
    return pair, dst, env


@pytest.fixture
def planted(private: tuple[str, Path, dict[str, str]]) -> Iterator[Planted]:
    files = Planted(private[1])
    yield files
    files.restore()


ADD_COLUMN_UP = """BEGIN;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';
ALTER TABLE items ADD COLUMN IF NOT EXISTS sku varchar(40);
COMMIT;
"""
ADD_COLUMN_DOWN = """BEGIN;
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';
ALTER TABLE items DROP COLUMN IF EXISTS sku;
COMMIT;
"""


@pytest.mark.slow
def test_migrate_check_fails_on_schema_drift_and_cleans_up(
    private: tuple[str, Path, dict[str, str]],
    database_url: str,
    postgres: PostgresServer,
    planted: Planted,
) -> None:
    _, service, env = private
    env = {**env, "DATABASE_URL": database_url}
    before = databases(postgres)
    control = run_make(service, "migrate-check", env)
    assert control.returncode == 0, output(control)

    planted.write("migrations/0002_add_sku.up.sql", ADD_COLUMN_UP)
    planted.write("migrations/0002_add_sku.down.sql", ADD_COLUMN_DOWN)
    result = run_make(service, "migrate-check", env)
    assert result.returncode != 0
    assert "the migrations and migrations/schema.txt disagree" in output(result)
    assert "+column items.sku character varying(40)" in output(result)

    # recording the new schema makes it pass again
    planted.write("migrations/schema.txt", (service / "migrations" / "schema.txt").read_text())
    check_make(service, "migrate-schema", env)
    assert "column items.sku" in (service / "migrations" / "schema.txt").read_text()
    check_make(service, "migrate-check", env)
    # the scratch databases are gone, DATABASE_URL's own database untouched
    assert databases(postgres) == before
    assert tables(database_url) == []


@pytest.mark.slow
def test_migrate_check_fails_when_down_does_not_undo_up(
    private: tuple[str, Path, dict[str, str]], database_url: str, planted: Planted
) -> None:
    _, service, env = private
    env = {**env, "DATABASE_URL": database_url}
    planted.write("migrations/0002_add_sku.up.sql", ADD_COLUMN_UP)
    planted.write("migrations/0002_add_sku.down.sql", "SELECT 1;\n")  # forgets the column
    planted.write("migrations/schema.txt", (service / "migrations" / "schema.txt").read_text())
    check_make(service, "migrate-schema", env)
    planted.edit(  # the first migration's down keeps the table too
        "migrations/0001_create_items.down.sql", "DROP TABLE IF EXISTS items;", "SELECT 1;"
    )
    result = run_make(service, "migrate-check", env)
    assert result.returncode != 0
    assert "after migrating all the way down, these remain" in output(result)
    assert "column items.sku" in output(result)


@pytest.mark.slow
def test_migration_lint_refuses_a_blocking_index(
    private: tuple[str, Path, dict[str, str]], planted: Planted
) -> None:
    _, service, env = private
    control = run_make(service, "migration-lint", env)
    assert control.returncode == 0, output(control)
    planted.write("migrations/0002_index_names.up.sql", "CREATE INDEX ix_name ON items (name);\n")
    planted.write("migrations/0002_index_names.down.sql", "DROP INDEX IF EXISTS ix_name;\n")
    result = run_make(service, "migration-lint", env)
    assert result.returncode != 0
    assert "require-concurrent-index-creation" in output(result)


# TypeScript has no offline check of prisma/schema.prisma against the
# migrations (`prisma migrate diff` needs Prisma's schema engine): its drift
# check is migrations/schema.txt alone.
@pytest.mark.slow
@pytest.mark.parametrize(
    "private", [p for p in ON_WORKER if STACKS[str(p.values[0])].name == "python"], indirect=True
)
def test_migrate_check_fails_when_the_models_and_the_migrations_disagree(
    private: tuple[str, Path, dict[str, str]], database_url: str, planted: Planted
) -> None:
    """The schema the migrations produce is the one the SQLAlchemy models expect."""
    _, service, env = private
    env = {**env, "DATABASE_URL": database_url}
    models = next(service.glob("src/*/models.py")).relative_to(service)
    planted.edit(
        str(models),
        "    created_at: Mapped[datetime]",
        "    sku: Mapped[str | None] = mapped_column(String(40))\n    created_at: Mapped[datetime]",
    )
    result = run_make(service, "migrate-check", env)
    assert result.returncode != 0
    assert "the models and the migrations disagree" in output(result)
    assert "column items.sku: not in the migrations" in output(result)


# No first hour of their own (tests/test_first_hour.py: it differs only in
# the migration targets), so the pairs' hooks run on a git repository made
# from the set-up copy this module's other tests share (in the same xdist
# group, so one worker sets it up once). Python's hooks sync a .venv of the
# copy's own (uv run); TypeScript's read node_modules, linked from the set-up
# copy (the hooks only read it).
@pytest.mark.parametrize("pair", ON_WORKER)
def test_a_fresh_copy_of_each_other_pair_passes_its_own_hooks(
    pair: str,
    prepared_service: Callable[[str], Path],
    first_hour_env: dict[str, str],
    tmp_path: Path,
) -> None:
    prepared = prepared_service(pair)
    root = tmp_path / "service"
    shutil.copytree(
        prepared, root, symlinks=True, ignore=shutil.ignore_patterns(".venv", "node_modules")
    )
    env = STACKS[pair].env(first_hour_env)
    git(root, env, "init", "-q", "-b", "main")
    link_node_modules(prepared, root)
    git(root, env, "add", "-A")
    git(root, env, "commit", "-q", "-m", "Fresh copy")
    assert_hooks_pass(root, pair, env)
