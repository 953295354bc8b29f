"""The Go stack's `make ci` passes, and its gates catch what they exist for.

One set-up copy is shared with tests/conformance/ (`prepared_service`); the
gate tests edit files, so they get a private copy. Both use the machine's Go
module and build caches, so only the first run compiles everything.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import yaml

from extensions.slipway import derive, load_pins
from tests.conformance.service import check_make, run_make
from tests.conformance.stacks import STACKS
from tests.conftest import RenderFn
from tests.support.postgres import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
HADOLINT = ROOT / ".venv" / "bin" / "hadolint"
GO = STACKS["go"].answers

pytestmark = [] if shutil.which("go") else [pytest.mark.skip(reason="Go is not installed")]


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def service(
    render: RenderFn, service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A private, set-up copy of the Go render: these tests edit its files."""
    dst = tmp_path_factory.mktemp("go-gates") / "service"
    shutil.copytree(render(**GO), dst, symlinks=True)
    check_make(dst, "setup", service_env)
    return dst


@pytest.fixture
def database_url(postgres: PostgresServer) -> Iterator[str]:
    url = postgres.create_database("gates")
    yield url
    postgres.drop_database(url)


def databases(postgres: PostgresServer) -> set[str]:
    with psycopg.connect(postgres.url) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate").fetchall()
    return {name for (name,) in rows}


def tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return sorted(name for (name,) in rows.fetchall())


class Planted:
    """Files written into the service for one test, removed or restored after it."""

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


@pytest.fixture
def planted(service: Path) -> Iterator[Planted]:
    files = Planted(service)
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


# --- the shared copy: the real gates ----------------------------------------------------


@pytest.mark.slow
@pytest.mark.xdist_group("service-go")
def test_integration_gate_fails_without_a_database(
    prepared_service: Callable[[str], Path], service_env: dict[str, str]
) -> None:
    result = run_make(prepared_service("go"), "test-integration", service_env)
    assert result.returncode != 0, result.stdout[-4000:]
    assert "DATABASE_URL is not set" in result.stderr, output(result)[-2000:]


@pytest.mark.slow
@pytest.mark.xdist_group("service-go")
def test_make_ci_runs_every_service_gate(prepared_service: Callable[[str], Path]) -> None:
    database = subprocess.run(
        ["make", "-p", "-n", "-q", "ci"],
        cwd=prepared_service("go"),
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    rule = next((ln for ln in database.splitlines() if ln.startswith("ci:")), "")
    gates = {"lint", "typecheck", "test", "test-integration", "migrate-check", "migration-lint"}
    gates |= {"openapi-check", "contract"}  # the contract gate (issue 11)
    assert gates <= set(rule.split(":", 1)[-1].split()), rule


@pytest.mark.slow
@pytest.mark.xdist_group("service-go")
def test_the_binary_migrates_up_down_and_up(
    prepared_service: Callable[[str], Path], service_env: dict[str, str], database_url: str
) -> None:
    # the image's own entry point, as the migration Job runs it
    binary = prepared_service("go") / "bin" / "service"
    env = {**service_env, "DATABASE_URL": database_url}

    def migrate(*args: str) -> str:
        result = subprocess.run(
            [str(binary), "migrate", *args], env=env, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, output(result)
        return result.stdout

    assert "at version 1 (dirty: false)" in migrate("up")
    assert tables(database_url) == ["items", "schema_migrations"]
    assert "no migration applied" in migrate("down", "all")
    assert tables(database_url) == ["schema_migrations"]
    assert "at version 1" in migrate("up")
    assert "at version 1" in migrate("version")
    refused = subprocess.run(
        [str(binary), "migrate", "sideways"], env=env, capture_output=True, text=True, check=False
    )
    assert refused.returncode != 0 and "usage: migrate" in output(refused)


# --- a private copy: each gate goes red on a planted problem --------------------------


@pytest.mark.slow
@pytest.mark.xdist_group("service-go")
def test_migrate_check_fails_on_schema_drift_and_cleans_up(
    service: Path,
    service_env: dict[str, str],
    database_url: str,
    postgres: PostgresServer,
    planted: Planted,
) -> None:
    env = {**service_env, "DATABASE_URL": database_url}
    before = databases(postgres)
    assert run_make(service, "migrate-check", env).returncode == 0  # the control

    planted.write("migrations/0002_add_sku.up.sql", ADD_COLUMN_UP)
    planted.write("migrations/0002_add_sku.down.sql", ADD_COLUMN_DOWN)
    result = run_make(service, "migrate-check", env)
    assert result.returncode != 0
    assert "the migrations and migrations/schema.txt disagree" in output(result)
    assert "+ column items.sku character varying(40)" in output(result)

    # recording the new schema makes it pass again
    planted.write("migrations/schema.txt", (service / "migrations" / "schema.txt").read_text())
    check_make(service, "migrate-schema", env)
    assert "column items.sku" in (service / "migrations" / "schema.txt").read_text()
    check_make(service, "migrate-check", env)
    # the scratch databases are gone, DATABASE_URL's own database untouched
    assert databases(postgres) == before
    assert tables(database_url) == []


@pytest.mark.slow
@pytest.mark.xdist_group("service-go")
def test_migrate_check_fails_when_a_query_no_longer_fits_the_schema(
    service: Path, service_env: dict[str, str], database_url: str, planted: Planted
) -> None:
    planted.edit(
        "internal/store/store.go",
        "getItem = `SELECT id, name, description, created_at FROM items WHERE id = $1`",
        "getItem = `SELECT id, name, summary, created_at FROM items WHERE id = $1`",
    )
    result = run_make(service, "migrate-check", {**service_env, "DATABASE_URL": database_url})
    assert result.returncode != 0
    assert 'the service\'s query "get_item" does not fit the migrated schema' in output(result)
    assert "summary" in output(result)


@pytest.mark.slow
@pytest.mark.xdist_group("service-go")
def test_migrate_check_fails_when_down_leaves_something_behind(
    service: Path, service_env: dict[str, str], database_url: str, planted: Planted
) -> None:
    env = {**service_env, "DATABASE_URL": database_url}
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
@pytest.mark.xdist_group("service-go")
def test_migration_lint_refuses_a_blocking_index(
    service: Path, service_env: dict[str, str], planted: Planted
) -> None:
    assert run_make(service, "migration-lint", service_env).returncode == 0  # the control
    planted.write("migrations/0002_index_names.up.sql", "CREATE INDEX ix_name ON items (name);\n")
    planted.write("migrations/0002_index_names.down.sql", "DROP INDEX IF EXISTS ix_name;\n")
    result = run_make(service, "migration-lint", service_env)
    assert result.returncode != 0
    assert "require-concurrent-index-creation" in output(result)


@pytest.mark.slow
@pytest.mark.xdist_group("service-go")
def test_lint_refuses_unformatted_code_and_vet_findings(
    service: Path, service_env: dict[str, str], planted: Planted
) -> None:
    planted.write("internal/store/extra.go", "package store\nfunc  Extra() {}\n")
    result = run_make(service, "lint", service_env)
    assert result.returncode != 0
    assert "internal/store/extra.go" in result.stderr and "gofmt" in result.stderr

    planted.write(
        "internal/store/extra.go",
        'package store\n\nimport "fmt"\n\n// Extra misuses Printf.\n'
        'func Extra() { fmt.Printf("%d\\n", "not a number") }\n',
    )
    result = run_make(service, "lint", service_env)
    assert result.returncode != 0
    assert "Printf format %d has arg" in output(result)


@pytest.mark.slow
@pytest.mark.xdist_group("service-go")
def test_typecheck_refuses_go_mod_out_of_step_with_the_imports(
    service: Path, service_env: dict[str, str], planted: Planted
) -> None:
    # a dependency the code imports, dropped from go.mod
    planted.edit("go.mod", "\tgithub.com/prometheus/client_golang v1.25.0\n", "")
    result = run_make(service, "typecheck", service_env)
    assert result.returncode != 0
    assert "github.com/prometheus/client_golang" in output(result)


# --- no service needed -------------------------------------------------------


def test_dockerfile_is_a_static_build_on_pinned_distroless(render: RenderFn) -> None:
    dockerfile = (render(**GO) / "Dockerfile").read_text()
    images = derive({}, load_pins())["images"]
    froms = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", dockerfile, re.MULTILINE)
    assert froms == [(images["go_build"]["ref"], "build"), (images["go_runtime"]["ref"], "runtime")]
    assert images["go_runtime"]["image"] == "gcr.io/distroless/static-debian13"
    assert "CGO_ENABLED=0" in dockerfile
    assert '"-trimpath", "-ldflags=-s -w"' in dockerfile
    runtime = dockerfile.rpartition("FROM ")[2]
    assert re.search(r"^USER 65532:65532$", runtime, re.MULTILINE)
    assert 'ENTRYPOINT ["/app/service"]' in runtime
    assert "COPY --from=build /out/service /app/service" in runtime


def test_dockerfile_passes_hadolint_at_info(render: RenderFn) -> None:
    result = subprocess.run(
        [str(HADOLINT), "--failure-threshold", "info", "--no-color", "Dockerfile"],
        cwd=render(**GO),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_migration_job_runs_the_binary_of_the_image(render: RenderFn) -> None:
    root = render(**GO, migration_runner="job")
    docs = yaml.safe_load_all((root / "deploy" / "migrate" / "job.yaml").read_text())
    [job] = [doc for doc in docs if doc["kind"] == "Job"]
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["/app/service", "migrate", "up"]


def test_toolchain_follows_the_pins(render: RenderFn) -> None:
    pins = load_pins()
    go_mod = (render(**GO) / "go.mod").read_text()
    assert f"\ntoolchain go{pins['tools']['go']}\n" in go_mod
    assert str(pins["images"]["go_build"]["tag"]).startswith(f"{pins['tools']['go']}-")


@pytest.mark.slow
@pytest.mark.xdist_group("service-go")
def test_other_names_build(render: RenderFn, service_env: dict[str, str]) -> None:
    # the module path and the cmd folder come from the answers
    root = render(**GO, project_name="Orders API", github_owner="Example-Org")
    assert (root / "cmd" / "orders-api" / "main.go").exists()
    assert "module github.com/Example-Org/orders-api\n" in (root / "go.mod").read_text()
    result = subprocess.run(
        ["go", "vet", "-tags", "integration", "./..."],
        cwd=root,
        env=service_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, output(result)


@pytest.mark.slow
@pytest.mark.xdist_group("service-go")
def test_platform_check_names_a_missing_or_too_old_module(
    service: Path, service_env: dict[str, str], planted: Planted
) -> None:
    """go.mod is the team's: the gate says which module a release needs, and how."""
    control = run_make(service, "platform-check", service_env)
    assert control.returncode == 0, output(control)

    needs = dict(
        requirement.split(":", 1)[1].split(">=")
        for requirement in derive(GO, load_pins())["platform_requires"]
    )
    old, gone = sorted(needs)  # kin-openapi made too old, golang-migrate dropped
    go_mod = (service / "go.mod").read_text()
    locked = re.search(rf"^\s*{re.escape(old)} (v\S+)", go_mod, re.M)
    assert locked, f"{old} is not required in go.mod"
    planted.edit("go.mod", f"{old} {locked[1]}", f"{old} v0.120.0")
    dropped = re.search(rf"^\s*{re.escape(gone)} v\S+.*\n", go_mod, re.M)
    assert dropped, f"{gone} is not required in go.mod"
    planted.edit("go.mod", dropped[0], "")

    result = run_make(service, "platform-check", service_env)
    assert result.returncode != 0
    assert (
        f"go.mod requires {old} v0.120.0; this Slipway release needs {needs[old]} or newer;"
        f" run: go get {old}@{needs[old]}"
    ) in output(result)
    assert (
        f"go.mod lacks {gone}, which this Slipway release needs; run: go get {gone}@{needs[gone]}"
    ) in output(result)
    named = [line for line in result.stderr.splitlines() if line.startswith("platform-check: ")]
    assert len(named) == 2, named  # the two modules, nothing else
