"""The TypeScript + Prisma stack: its gates pass on a clean render and catch
what they exist for; its build inputs come from Slipway's pins.

The service is prepared once per worker (`prepared_service`, shared with
tests/conformance/). Tests that plant a problem work on a private copy whose
node_modules is a symlink to the prepared one, so no test installs twice.

Prisma's schema engine cannot be downloaded on the machines .ci/run uses, so
`make migrate-check` is run here only to show it fails without a working
engine; the tests that need the real engine carry `needs_network` (.ci/run
deselects them; the template's GitHub CI runs them).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import psycopg
import pytest
from jinja2 import Environment

from extensions.slipway import derive, load_pins
from tests.conformance.service import run_make
from tests.conformance.stacks import STACKS
from tests.conftest import RenderFn
from tests.support.node import prisma_env
from tests.support.postgres import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
HADOLINT = ROOT / ".venv" / "bin" / "hadolint"
ANSWERS = STACKS["typescript"].answers

pytestmark = [pytest.mark.xdist_group("service-typescript")]


@pytest.fixture(scope="module")
def env(service_env: dict[str, str]) -> dict[str, str]:
    return STACKS["typescript"].env(service_env)


@pytest.fixture(scope="module")
def prepared(prepared_service: Callable[[str], Path]) -> Path:
    return prepared_service("typescript")


@pytest.fixture
def scratch(prepared: Path, tmp_path: Path) -> Path:
    """A private copy of the prepared service to plant problems in."""
    dst = tmp_path / "service"
    shutil.copytree(prepared, dst, symlinks=True, ignore=shutil.ignore_patterns("node_modules"))
    (dst / "node_modules").symlink_to(prepared / "node_modules", target_is_directory=True)
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
        return [name for (name,) in rows.fetchall()]


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def passes(root: Path, target: str, env: dict[str, str]) -> None:
    result = run_make(root, target, env)
    assert result.returncode == 0, f"`make {target}` exited {result.returncode}\n{output(result)}"


# --- the gates on a clean render ---------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "target", ["platform-check", "lint", "typecheck", "test", "migration-lint"]
)
def test_no_database_gate_passes(prepared: Path, env: dict[str, str], target: str) -> None:
    passes(prepared, target, env)


@pytest.mark.slow
def test_integration_tests_pass_and_leave_database_url_alone(
    prepared: Path, env: dict[str, str], database_url: str, postgres: PostgresServer
) -> None:
    before = databases(postgres)
    passes(prepared, "test-integration", {**env, "DATABASE_URL": database_url})
    assert tables(database_url) == []
    assert databases(postgres) == before


@pytest.mark.slow
def test_integration_gate_refuses_to_run_without_a_database(
    prepared: Path, env: dict[str, str]
) -> None:
    result = run_make(prepared, "test-integration", {**env, "DATABASE_URL": ""})
    assert result.returncode == 2
    assert "DATABASE_URL is not set" in result.stderr


# --- the gates catch what they exist for --------------------------------------


@pytest.mark.slow
def test_typecheck_and_lint_catch_planted_problems(scratch: Path, env: dict[str, str]) -> None:
    planted = scratch / "src" / "planted.ts"
    planted.write_text('export const answer: number = "forty-two";\n')
    result = run_make(scratch, "typecheck", env)
    assert result.returncode != 0 and "TS2322" in output(result), output(result)

    # Formatted as prettier wants, so eslint (which runs first) must be what fails.
    planted.write_text("export const answer: any = 42;\n")
    result = run_make(scratch, "lint", env)
    assert result.returncode != 0, output(result)
    assert "@typescript-eslint/no-explicit-any" in output(result), output(result)
    assert "prettier --check" not in output(result), "eslint let it through"

    planted.write_text("export const answer = 42\n")  # prettier wants a semicolon
    result = run_make(scratch, "lint", env)
    assert result.returncode != 0, output(result)
    assert "prettier --check" in output(result), "eslint failed, not prettier"
    assert "src/planted.ts" in output(result), output(result)


def plant_lock_version(root: Path, name: str, version: str | None) -> None:
    """Lock `name` at `version` (None: drop it), as an older package-lock.json would."""
    lock_file = root / "package-lock.json"
    lock = json.loads(lock_file.read_text())
    key = f"node_modules/{name}"
    assert key in lock["packages"], f"the rendered lock no longer has {name}"
    if version is None:
        del lock["packages"][key]
    else:
        lock["packages"][key]["version"] = version
    lock_file.write_text(json.dumps(lock, indent=2) + "\n")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "version", "expected"),
    [
        ("vitest", "4.0.0", "locks vitest 4.0.0; this Slipway release needs 5.1.2 or newer"),
        ("eslint", None, "lacks eslint, which this Slipway release needs"),
    ],
    ids=["too-old", "missing"],
)
def test_platform_check_names_what_the_lock_lacks_and_the_fix(
    scratch: Path, env: dict[str, str], name: str, version: str | None, expected: str
) -> None:
    plant_lock_version(scratch, name, version)
    result = run_make(scratch, "platform-check", env)
    assert result.returncode != 0, output(result)
    assert expected in output(result), output(result)
    required = re.search(rf"'dev:{re.escape(name)}>=([^']+)'", (scratch / "Makefile").read_text())
    assert required, f"the Makefile's platform-check does not require {name}"
    assert f"run: npm install -D {name}@^{required.group(1)}" in output(result), output(result)


@pytest.mark.slow
def test_unit_tests_catch_a_broken_contract_rule(scratch: Path, env: dict[str, str]) -> None:
    # A 503 without Retry-After breaks the contract's "database unavailable" row.
    errors = scratch / "src" / "errors.ts"
    source = errors.read_text()
    assert source.count('{ "retry-after": "1" }') == 1
    errors.write_text(source.replace('{ "retry-after": "1" }', "{}"))
    result = run_make(scratch, "test", env)
    assert result.returncode != 0, output(result)
    assert "answers 503 with Retry-After while the database is down" in output(result)


@pytest.mark.slow
def test_migration_lint_refuses_a_blocking_index(scratch: Path, env: dict[str, str]) -> None:
    migration = scratch / "prisma" / "migrations" / "0002_index_item_names" / "migration.sql"
    migration.parent.mkdir()
    migration.write_text('CREATE INDEX "ix_items_name" ON "items" ("name");\n')
    result = run_make(scratch, "migration-lint", env)
    assert result.returncode != 0
    assert "require-concurrent-index-creation" in output(result)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("engine", "says"),
    [
        # the suite's stand-in: an existing file that is not an executable
        (None, "prisma migrate deploy failed"),
        # a "broken" engine that exits 0 and prints nothing
        ("/bin/true", "recorded 0 of 1 migrations"),
    ],
    ids=["missing-engine", "silent-engine"],
)
def test_migrate_check_fails_without_a_working_engine(
    prepared: Path,
    env: dict[str, str],
    database_url: str,
    postgres: PostgresServer,
    engine: str | None,
    says: str,
) -> None:
    before = databases(postgres)
    run_env = {**env, "DATABASE_URL": database_url}
    if engine is not None:
        run_env["PRISMA_SCHEMA_ENGINE_BINARY"] = engine
    result = run_make(prepared, "migrate-check", run_env)
    assert result.returncode != 0, output(result)
    assert says in output(result)
    # the scratch database is gone, DATABASE_URL's own database untouched
    assert databases(postgres) == before
    assert tables(database_url) == []


# A schema engine that applies the migrations itself (tables and finished
# ledger rows, as `prisma migrate deploy` leaves them) and answers nothing,
# like /bin/true: deploy looks done, so only the control that the engine
# renders SQL for the schema stands between it and an empty, "clean" diff.
DEPLOY_ONLY_ENGINE = """#!{python}
import os, pathlib, psycopg
with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
    done = conn.execute("SELECT to_regclass('public._prisma_migrations')").fetchone()[0]
    if done is None:
        conn.execute(
            "CREATE TABLE _prisma_migrations (id text PRIMARY KEY, checksum text NOT NULL,"
            " finished_at timestamptz, migration_name text NOT NULL, logs text,"
            " rolled_back_at timestamptz, started_at timestamptz NOT NULL DEFAULT now(),"
            " applied_steps_count integer NOT NULL DEFAULT 0)"
        )
        for sql in sorted(pathlib.Path("prisma/migrations").glob("*/migration.sql")):
            conn.execute(sql.read_text())
            conn.execute(
                "INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name)"
                " VALUES (%s, '', now(), %s)",
                (sql.parent.name, sql.parent.name),
            )
"""


@pytest.mark.slow
def test_migrate_check_refuses_an_engine_that_renders_no_sql(
    prepared: Path,
    env: dict[str, str],
    database_url: str,
    postgres: PostgresServer,
    tmp_path: Path,
) -> None:
    engine = tmp_path / "schema-engine"
    engine.write_text(DEPLOY_ONLY_ENGINE.format(python=sys.executable))
    engine.chmod(0o755)
    before = databases(postgres)
    run_env = {**env, "DATABASE_URL": database_url, "PRISMA_SCHEMA_ENGINE_BINARY": str(engine)}
    result = run_make(prepared, "migrate-check", run_env)
    assert result.returncode != 0, output(result)
    assert "prisma migrate diff rendered no SQL for prisma/schema.prisma" in output(result)
    assert "recorded 0 of" not in output(result), "the stand-in's deploy did not look done"
    assert databases(postgres) == before
    assert tables(database_url) == []


@pytest.mark.slow
def test_setup_refuses_a_lock_that_no_longer_matches_package_json(
    render: RenderFn, env: dict[str, str], tmp_path: Path
) -> None:
    # CI runs `make setup` first: a dependency added to package.json but not
    # locked must stop it, or the image ships what the stale lock says.
    root = tmp_path / "service"
    shutil.copytree(render(**ANSWERS), root, symlinks=True)
    manifest = root / "package.json"
    manifest.write_text(
        manifest.read_text().replace('"pino": ', '"left-pad": "^1.3.0",\n    "pino": ')
    )
    result = run_make(root, "setup", env)
    assert result.returncode != 0, output(result)
    assert "package-lock.json" in output(result) and "in sync" in output(result)
    assert not (root / "node_modules").exists()


# --- the real Prisma engine (needs its download host) ------------------------


@pytest.mark.slow
@pytest.mark.needs_network
def test_migrate_check_passes_then_catches_schema_drift(
    scratch: Path, service_env: dict[str, str], database_url: str
) -> None:
    # The real engine: the suite's stand-in is left out of the environment.
    env = {k: v for k, v in STACKS["typescript"].env(service_env).items()}
    env.pop("PRISMA_SCHEMA_ENGINE_BINARY")
    env["DATABASE_URL"] = database_url
    passes(scratch, "migrate-check", env)
    schema = scratch / "prisma" / "schema.prisma"
    schema.write_text(
        schema.read_text().replace(
            "  description String?", "  sku         String?  @db.VarChar(40)\n  description String?"
        )
    )
    result = run_make(scratch, "migrate-check", env)
    assert result.returncode != 0
    assert "disagree" in output(result) and "sku" in output(result)


@pytest.mark.slow
@pytest.mark.needs_network
def test_audit_reports_no_high_severity_advisories(prepared: Path, env: dict[str, str]) -> None:
    passes(prepared, "audit", env)


# --- no service needed ----------------------------------------------------------


def test_entrypoint_caps_the_heap_at_half_the_memory(render: RenderFn) -> None:
    """The pinned Node accepts the image's flags (an unknown one stops it
    starting) and sets V8's ceiling from the memory it sees, as in the pod."""
    dockerfile = (render(**ANSWERS) / "Dockerfile").read_text()
    entrypoint = json.loads(re.findall(r"^ENTRYPOINT (\[.*\])$", dockerfile, re.M)[-1])
    flags = entrypoint[1:-1]
    probe = (
        "const v8 = require('node:v8');"
        "const seen = Math.min("
        "process.constrainedMemory() || Infinity, require('node:os').totalmem());"
        "console.log(JSON.stringify([v8.getHeapStatistics().heap_size_limit, seen]))"
    )
    shown = subprocess.run(
        ["node", *flags, "-e", probe], env=prisma_env({}), capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    limit, seen = json.loads(shown.stdout)
    # old space at half of it, plus a young generation of a few MiB to 3 x 64 MiB
    assert seen / 2 <= limit <= seen / 2 + 200 * 2**20


def test_dockerfile_images_are_the_pinned_ones(render: RenderFn) -> None:
    dockerfile = (render(**ANSWERS) / "Dockerfile").read_text()
    images = derive(ANSWERS, load_pins())["images"]
    bases = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+\S+)?$", dockerfile, re.MULTILINE)
    assert bases == [images["node_build"]["ref"]] * 2 + [images["node_runtime"]["ref"]]
    final_stage = dockerfile.rpartition("FROM ")[2]
    assert re.search(r"^USER 65532:65532$", final_stage, re.MULTILINE)
    # the heap ceiling is half the container's memory limit, not about all of it
    assert (
        '\nENTRYPOINT ["/nodejs/bin/node", "--max-old-space-size-percentage=50", "dist/main.js"]'
        in final_stage
    )
    # production dependencies only, and the engine the migration Job needs
    assert "COPY --from=deps /app/node_modules/ node_modules/" in final_stage
    assert re.search(r'"npm", "ci", "--omit=dev"', dockerfile)
    engine = "node_modules/@prisma/engines/schema-engine-debian-openssl-3.0.x"
    assert engine in dockerfile.partition("AS build")[0]  # checked in the deps stage
    assert f"PRISMA_SCHEMA_ENGINE_BINARY=/app/{engine}" in final_stage


def test_dockerfile_passes_hadolint_at_info(render: RenderFn) -> None:
    result = subprocess.run(
        [str(HADOLINT), "--failure-threshold", "info", "--no-color", "Dockerfile"],
        cwd=render(**ANSWERS),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_migration_job_runs_prisma_from_the_image(render: RenderFn) -> None:
    job = (render(**ANSWERS) / "deploy" / "migrate" / "job.yaml").read_text()
    assert (
        'command: ["/nodejs/bin/node", "node_modules/prisma/build/index.js", "migrate", "deploy"]'
        in job
    )
    package = (render(**ANSWERS) / "package.json").read_text()
    dependencies = package.partition('"devDependencies"')[0]
    assert '"prisma": ' in dependencies, "the Prisma CLI must ship in the production image"


def _relock_module() -> ModuleType:
    path = ROOT / "scripts" / "relock-typescript"
    loader = importlib.machinery.SourceFileLoader("relock_typescript", str(path))
    spec = importlib.util.spec_from_loader("relock_typescript", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_relock_templates_only_the_project_name() -> None:
    as_template = _relock_module().as_template
    lock = (
        '{\n  "name": "demo-service",\n  "version": "0.1.0",\n  "packages": {\n'
        '    "": {\n      "name": "demo-service",\n      "version": "0.1.0"\n    },\n'
        '    "node_modules/demo-service-helper": {\n      "name": "demo-service",\n'
        '      "integrity": "sha512-{{ x }}{% y %}"\n    }\n  }\n}\n'
    )
    rendered = Environment().from_string(as_template(lock, "demo-service"))
    assert rendered.render(project_slug="demo-service") == lock
    changed = rendered.render(project_slug="orders-api")
    assert changed.count('"orders-api"') == 2
    assert changed.count('"demo-service"') == 1  # the dependency's own entry is not ours
    with pytest.raises(SystemExit, match="expected the name"):
        as_template(lock, "other-service")


def test_lock_names_the_project_for_any_slug(render: RenderFn) -> None:
    root = render(**ANSWERS, project_slug="orders-api")
    lock = (root / "package-lock.json").read_text()
    assert lock.startswith('{\n  "name": "orders-api",\n')
    assert '    "": {\n      "name": "orders-api",\n' in lock
    assert '"name": "orders-api"' in (root / "package.json").read_text()


@pytest.mark.slow
def test_ci_install_accepts_the_lock_for_any_slug(
    render: RenderFn, env: dict[str, str], tmp_path: Path
) -> None:
    root = tmp_path / "service"
    shutil.copytree(render(**ANSWERS, project_slug="orders-api"), root, symlinks=True)
    result = subprocess.run(
        ["npm", "ci", "--dry-run", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, output(result)


def test_suite_engine_stand_in_cannot_run() -> None:
    # Were it executable, a command needing the real engine might "pass" here.
    from tests.support.node import STAND_IN

    assert STAND_IN.is_file()
    assert not STAND_IN.stat().st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    assert not os.access(STAND_IN, os.X_OK)
