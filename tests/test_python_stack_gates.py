"""The Python stack's gates catch what they exist for, and its build inputs stay pinned.

tests/test_python_service.py shows that `make ci` passes on a clean render;
these show the migration gates fail on real problems (drift, an unsafe
migration), that the scratch databases leave DATABASE_URL's own database
alone, and that the Dockerfile and the lock come from Slipway's pins.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import psycopg
import pytest
import yaml
from jinja2 import Environment

from extensions.slipway import derive, load_pins
from tests.conformance.service import check_make, run_make
from tests.conftest import RenderFn
from tests.support.postgres import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
HADOLINT = ROOT / ".venv" / "bin" / "hadolint"
CHECK_JSONSCHEMA = str(ROOT / ".venv" / "bin" / "check-jsonschema")


@pytest.fixture(scope="module")
def service(
    render: RenderFn, service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A private, set-up copy of the default render: these tests edit its files.

    Not the shared prepared_service: its editable install points at a copy
    other tests use unchanged.
    """
    dst = tmp_path_factory.mktemp("python-gates") / "service"
    shutil.copytree(render(), dst, symlinks=True)
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
        return [name for (name,) in rows.fetchall()]


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.xdist_group("service-python")
def test_migrate_check_fails_on_model_drift_and_cleans_up(
    service: Path,
    service_env: dict[str, str],
    database_url: str,
    postgres: PostgresServer,
) -> None:
    env = {**service_env, "DATABASE_URL": database_url}
    before = databases(postgres)
    assert run_make(service, "migrate-check", env).returncode == 0  # the control

    models = next(service.glob("src/*/models.py"))
    original = models.read_text()
    models.write_text(
        original.replace(
            "    created_at: Mapped[datetime]",
            "    sku: Mapped[str | None] = mapped_column(String(40))\n"
            "    created_at: Mapped[datetime]",
        )
    )
    try:
        result = run_make(service, "migrate-check", env)
    finally:
        models.write_text(original)
    assert result.returncode != 0
    assert "the models and the migrations disagree" in output(result)
    assert "sku" in output(result)
    # the scratch databases are gone, DATABASE_URL's own database untouched
    assert databases(postgres) == before
    assert tables(database_url) == []


@pytest.mark.slow
@pytest.mark.xdist_group("service-python")
def test_migration_lint_refuses_a_blocking_index(
    service: Path, service_env: dict[str, str]
) -> None:
    assert run_make(service, "migration-lint", service_env).returncode == 0  # the control

    migration = service / "migrations" / "versions" / "0002_index_item_names.py"
    migration.write_text(
        '"""Index item names."""\n\n'
        "from alembic import op\n\n"
        'revision = "0002"\n'
        'down_revision = "0001"\n\n\n'
        "def upgrade() -> None:\n"
        '    op.create_index("ix_items_name", "items", ["name"])\n\n\n'
        "def downgrade() -> None:\n"
        '    op.drop_index("ix_items_name", table_name="items")\n'
    )
    try:
        result = run_make(service, "migration-lint", service_env)
    finally:
        migration.unlink()
    assert result.returncode != 0
    assert "require-concurrent-index-creation" in output(result)


@pytest.mark.slow
@pytest.mark.xdist_group("service-python")
def test_integration_tests_leave_database_url_alone(
    service: Path,
    service_env: dict[str, str],
    database_url: str,
    postgres: PostgresServer,
) -> None:
    before = databases(postgres)
    check_make(service, "test-integration", {**service_env, "DATABASE_URL": database_url})
    assert tables(database_url) == []
    assert databases(postgres) == before


@pytest.mark.slow
@pytest.mark.xdist_group("service-python")
def test_setup_refuses_a_lock_that_no_longer_matches_pyproject(
    service: Path, service_env: dict[str, str]
) -> None:
    # CI runs `make setup` first: a dependency edited in pyproject.toml but not
    # locked must stop it, or the image ships what the stale lock says.
    pyproject = service / "pyproject.toml"
    original = pyproject.read_text()
    pyproject.write_text(
        original.replace('    "uvicorn>=0.30",\n', '    "uvicorn>=0.30",\n    "six>=1.16",\n')
    )
    assert pyproject.read_text() != original
    try:
        result = run_make(service, "setup", service_env)
    finally:
        pyproject.write_text(original)
    assert result.returncode != 0, output(result)
    assert "uv.lock" in output(result) and "needs to be updated" in output(result)


# --- no service needed ------------------------------------------------------


def test_dockerfile_images_are_the_pinned_ones(render: RenderFn) -> None:
    dockerfile = (render() / "Dockerfile").read_text()
    pinned = {entry["ref"] for entry in derive({}, load_pins())["images"].values()}
    runtime = derive({}, load_pins())["images"]["python_runtime"]["ref"]

    stages: set[str] = set()
    bases: list[str] = []
    for line in dockerfile.splitlines():
        if match := re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE):
            image, alias = match.groups()
            assert image in pinned | stages, f"unpinned base image: {line}"
            bases.append(image)
            stages.add(alias or image)
        for source in re.findall(r"--from=(\S+)", line):
            assert source in stages, f"COPY --from must name a stage built from a pin: {line}"

    # The venv is built by the Python that runs it: build stages share the runtime digest.
    assert bases.count(runtime) == 2
    assert bases[-1] == runtime
    final_stage = dockerfile.rpartition("FROM ")[2]
    assert re.search(r"^USER 65532:65532$", final_stage, re.MULTILINE)
    assert '\nENTRYPOINT ["/app/.venv/bin/python", "-m", "demo_service"]' in final_stage


def test_dockerfile_passes_hadolint_at_info(render: RenderFn) -> None:
    result = subprocess.run(
        [str(HADOLINT), "--failure-threshold", "info", "--no-color", "Dockerfile"],
        cwd=render(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _relock_module() -> ModuleType:
    path = ROOT / "scripts" / "relock-python"
    loader = importlib.machinery.SourceFileLoader("relock_python", str(path))
    spec = importlib.util.spec_from_loader("relock_python", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    # It imports scripts/snapshot.py as a top-level module, as it does when run.
    sys.path.insert(0, str(path.parent))
    try:
        loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def test_relock_templates_only_the_project_name() -> None:
    as_template = _relock_module().as_template
    lock = (
        'version = 1\n\n[[package]]\nname = "anyio"\nversion = "4.0"\n\n'
        '[[package]]\nname = "demo-service"\nversion = "0.1.0"\n'
        'source = { editable = "." }\n'
        'dependencies = [\n    { name = "anyio" },\n]\n'
        "# a hash that looks like Jinja: {{ x }} {% y %}\n"
    )
    rendered = Environment().from_string(as_template(lock, "demo-service"))
    assert rendered.render(project_slug="demo-service") == lock
    assert rendered.render(project_slug="orders-api") == lock.replace(
        'name = "demo-service"', 'name = "orders-api"'
    )
    with pytest.raises(SystemExit, match="expected one"):
        as_template(lock, "other-service")


@pytest.mark.slow
@pytest.mark.xdist_group("service-python")
def test_lock_matches_pyproject_for_any_slug(
    render: RenderFn, service_env: dict[str, str], tmp_path: Path
) -> None:
    root = tmp_path / "service"
    shutil.copytree(render(project_slug="orders-api"), root, symlinks=True)
    result = subprocess.run(
        ["uv", "lock", "--check"],
        cwd=root,
        env=service_env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (
        '[[package]]\nname = "orders-api"\nversion = "0.1.0"\nsource = { editable = "." }'
        in (root / "uv.lock").read_text()
    )


def test_compose_database_is_the_pinned_postgres(render: RenderFn) -> None:
    root = render()
    result = subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec", "compose.yaml"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    compose = yaml.safe_load((root / "compose.yaml").read_text())
    db = compose["services"]["db"]
    assert db["image"] == derive({}, load_pins())["images"]["postgres"]["ref"]
    assert db["ports"] == ["127.0.0.1:5432:5432"]
    assert db["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    volume, _, mount = db["volumes"][0].partition(":")
    assert volume in compose["volumes"]
    assert mount == "/var/lib/postgresql"
    # .env.example's DATABASE_URL matches the credentials compose creates
    env = db["environment"]
    url = f"postgresql://{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}@localhost:5432/"
    assert f"\nDATABASE_URL={url}{env['POSTGRES_DB']}\n" in (root / ".env.example").read_text()


def _without_package(lock: str, name: str) -> str:
    """uv.lock without one [[package]] block (as if the team had removed it)."""
    blocks = lock.split("\n[[package]]\n")
    kept = [b for b in blocks if not b.startswith(f'name = "{name}"\n')]
    assert len(kept) == len(blocks) - 1, f"{name} is not locked"
    return "\n[[package]]\n".join(kept)


@pytest.mark.slow
@pytest.mark.xdist_group("service-python")
def test_platform_check_names_a_missing_or_too_old_dependency(
    service: Path, service_env: dict[str, str]
) -> None:
    """pyproject.toml and uv.lock are the team's: the gate says what a release needs."""
    control = run_make(service, "platform-check", service_env)
    assert control.returncode == 0, output(control)

    lock = service / "uv.lock"
    original = lock.read_text()
    old_ruff = re.sub(
        r'(\[\[package\]\]\nname = "ruff"\nversion = )"[^"]+"', r'\1"0.5.0"', original
    )
    assert old_ruff != original, "ruff is not locked"
    lock.write_text(_without_package(old_ruff, "squawk-cli"))
    try:
        result = run_make(service, "platform-check", service_env)
    finally:
        lock.write_text(original)
    squawk = load_pins()["tools"]["squawk"]
    assert result.returncode != 0
    assert "ruff 0.5.0 is locked; Slipway needs ruff>=0.6: uv add --dev 'ruff>=0.6'" in output(
        result
    )
    assert f"squawk-cli is not in uv.lock; Slipway needs squawk-cli=={squawk}" in output(result)
    named = [line for line in result.stderr.splitlines() if line.startswith("platform-check: ")]
    assert len(named) == 3, named  # ruff, squawk-cli and the closing advice: nothing else


@pytest.mark.slow
@pytest.mark.xdist_group("service-python")
def test_setup_refuses_a_uv_older_than_the_pinned_one(
    service: Path, service_env: dict[str, str], tmp_path: Path
) -> None:
    pinned = str(load_pins()["tools"]["uv"])
    old = tmp_path / "bin"
    old.mkdir()
    # A uv that reports an older version and would do nothing else.
    (old / "uv").write_text("#!/bin/sh\necho 'uv 0.1.0 (stand-in)'\n")
    (old / "uv").chmod(0o755)
    env = {**service_env, "PATH": f"{old}:{service_env['PATH']}"}
    result = run_make(service, "setup", env)
    assert result.returncode != 0
    assert f"uv 0.1.0 is older than {pinned}" in result.stderr, output(result)
    assert "uv self update" in result.stderr
    # the control: the suite's own uv passes the check
    assert run_make(service, "setup", service_env).returncode == 0
