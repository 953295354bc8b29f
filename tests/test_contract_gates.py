"""The contract gates of a generated service catch what they exist for.

`make openapi-check` fails when the code and openapi.yaml disagree (Python:
the document the code emits differs; Go: a handler answers what the document
does not say); `make
contract` passes against the running service and a real PostgreSQL, and fails
when a handler answers with a status or a field the document does not list;
`make contract-diff` fails on a breaking change to the document unless its
major version went up, and lets additive changes through.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from extensions.slipway import load_pins
from tests.conformance.service import check_make, run_make
from tests.conformance.stacks import STACKS
from tests.conftest import RenderFn
from tests.support.postgres import PostgresServer
from tests.support.tools import require_go_module

OASDIFF = f"github.com/oasdiff/oasdiff@v{load_pins()['tools']['oasdiff']}"


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


@contextmanager
def edited(path: Path, old: str, new: str) -> Iterator[None]:
    """`path` with `old` replaced once by `new`, restored afterwards."""
    original = path.read_text(encoding="utf-8")
    assert original.count(old) == 1, f"{path.name}: {old!r} is not there exactly once"
    path.write_text(original.replace(old, new), encoding="utf-8")
    try:
        yield
    finally:
        path.write_text(original, encoding="utf-8")


# --- the Python service: openapi-check and contract -------------------------------


@pytest.fixture(scope="module")
def service(
    render: RenderFn, service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A private, set-up copy of the Python render: these tests edit its code."""
    dst = tmp_path_factory.mktemp("contract-gates") / "service"
    shutil.copytree(render(**STACKS["python"].answers), dst, symlinks=True)
    check_make(dst, "setup", service_env)
    return dst


def databases(postgres: PostgresServer) -> set[str]:
    with psycopg.connect(postgres.url) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate").fetchall()
    return {name for (name,) in rows}


def run_contract(
    service: Path, env: dict[str, str], postgres: PostgresServer, **extra: str
) -> subprocess.CompletedProcess[str]:
    before = databases(postgres)
    result = run_make(service, "contract", {**env, "DATABASE_URL": postgres.url, **extra})
    # the scratch database is gone whatever the outcome
    assert databases(postgres) == before, output(result)[-3000:]
    return result


@pytest.mark.slow
@pytest.mark.xdist_group("service-python")
def test_openapi_check_fails_when_code_and_document_disagree(
    service: Path, service_env: dict[str, str]
) -> None:
    check_make(service, "openapi-check", service_env)  # the control
    document = service / "openapi.yaml"
    with edited(document, "  version: 1.0.0\n", "  version: 1.0.1\n"):
        result = run_make(service, "openapi-check", service_env)
    assert result.returncode != 0
    assert "differs from what the code emits" in output(result)
    assert "+  version: 1.0.0" in result.stdout  # the diff shows what the code says

    schemas = next(service.glob("src/*/schemas.py"))
    with edited(
        schemas,
        "    description: Description | None = None\n",
        "    description: Description | None = None\n    sku: str | None = None\n",
    ):
        result = run_make(service, "openapi-check", service_env)
    assert result.returncode != 0
    assert "+        sku:" in result.stdout, result.stdout[-3000:]


# `make contract` passing on a fresh copy is part of its `make ci`
# (tests/test_first_hour.py::test_after_copy_steps_work_as_written).


@pytest.mark.slow
@pytest.mark.xdist_group("service-python")
def test_contract_fails_on_an_undocumented_status_and_field(
    service: Path, service_env: dict[str, str], postgres: PostgresServer
) -> None:
    # Both in one run (each is a Schemathesis run of its own otherwise): POST
    # answers a status the document does not list, and every item gains a
    # field the committed document does not have.
    items = next(service.glob("src/*/items.py"))
    schemas = next(service.glob("src/*/schemas.py"))
    with (
        edited(
            items,
            '    response.headers["Location"] = f"/items/{item.id}"\n',
            '    response.headers["Location"] = f"/items/{item.id}"\n'
            "    response.status_code = 202\n",
        ),
        edited(
            schemas,
            "    created_at: Annotated[\n",
            '    etag: str = "unlisted"\n    created_at: Annotated[\n',
        ),
    ):
        result = run_contract(service, service_env, postgres, CONTRACT_MAX_EXAMPLES="10")
    assert result.returncode != 0
    assert "Undocumented status code" in result.stdout, result.stdout[-6000:]
    assert "Received: 202" in result.stdout
    assert "Response violates schema" in result.stdout, result.stdout[-6000:]
    assert "'etag' was unexpected" in result.stdout


# --- the Go service: openapi.yaml is the source; openapi-check and contract --------
# (Go's openapi-check is a go test that validates every documented operation and
# status with kin-openapi; contract is cmd/contract running Schemathesis.)

GO_ITEMS = "internal/api/items.go"
# 201 becomes a status openapi.yaml does not list for POST /items
GO_UNDOCUMENTED_STATUS = (
    "writeJSON(w, http.StatusCreated, toOut(item))",
    "writeJSON(w, http.StatusAccepted, toOut(item))",
)
# every item gains a field openapi.yaml does not list (ItemOut forbids others)
GO_UNDOCUMENTED_FIELD = (
    '\tCreatedAt   string  `json:"created_at"`\n',
    '\tCreatedAt   string  `json:"created_at"`\n\tETag string `json:"etag"`\n',
)


@pytest.fixture(scope="module")
def go_service(
    render: RenderFn, service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A private, set-up copy of the Go render: these tests edit its code."""
    if not shutil.which("go"):
        pytest.skip("Go is not installed")
    dst = tmp_path_factory.mktemp("contract-gates-go") / "service"
    shutil.copytree(render(**STACKS["go"].answers), dst, symlinks=True)
    check_make(dst, "setup", service_env)
    return dst


def running(binary: Path) -> list[int]:
    """The ids of processes running `binary` (the service cmd/contract starts)."""
    target = str(binary.resolve())
    pids = []
    for process in Path("/proc").iterdir():
        if not process.name.isdigit():
            continue
        try:
            exe = os.readlink(process / "exe")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if exe.removesuffix(" (deleted)") == target:
            pids.append(int(process.name))
    return pids


@pytest.mark.slow
@pytest.mark.xdist_group("service-go")
def test_go_openapi_check_fails_when_a_handler_leaves_the_document(
    go_service: Path, service_env: dict[str, str]
) -> None:
    result = run_make(go_service, "openapi-check", service_env)  # the control
    assert result.returncode == 0, output(result)[-6000:]
    assert "openapi-check: the handlers answer as openapi.yaml says" in result.stdout

    with edited(go_service / GO_ITEMS, *GO_UNDOCUMENTED_STATUS):
        result = run_make(go_service, "openapi-check", service_env)
    assert result.returncode != 0
    assert "POST /items answered 202: openapi.yaml documents no 202 for POST /items" in (
        result.stdout
    ), output(result)[-6000:]
    assert "the handlers and openapi.yaml disagree" in result.stderr

    with edited(go_service / GO_ITEMS, *GO_UNDOCUMENTED_FIELD):
        result = run_make(go_service, "openapi-check", service_env)
    assert result.returncode != 0
    assert "GET /items/1 answered 200: the answer differs from openapi.yaml" in result.stdout
    assert "additional properties 'etag' not allowed" in result.stdout, output(result)[-6000:]


@pytest.mark.slow
@pytest.mark.xdist_group("service-go")
def test_go_openapi_check_fails_without_its_test(
    go_service: Path, service_env: dict[str, str]
) -> None:
    # a renamed or deleted test must not turn the gate into a silent pass
    test = go_service / "internal/api/openapi_test.go"
    with edited(test, "func TestHandlersAnswerAsOpenAPISays(", "func TestSomethingElse("):
        result = run_make(go_service, "openapi-check", service_env)
    assert result.returncode != 0
    assert "internal/api has no TestHandlersAnswerAsOpenAPISays" in result.stderr, output(result)


@pytest.mark.slow
@pytest.mark.xdist_group("service-go")
def test_go_contract_passes_against_the_running_service(
    go_service: Path, service_env: dict[str, str], postgres: PostgresServer
) -> None:
    result = run_contract(go_service, service_env, postgres)
    assert result.returncode == 0, output(result)[-12000:]
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert re.search(rf"✅ {phase}\b", result.stdout), result.stdout[-4000:]
    assert "No issues found" in result.stdout
    assert "service migrate up" in result.stderr  # the binary's own migrations
    assert not running(go_service / "bin" / "service")


@pytest.mark.slow
@pytest.mark.xdist_group("service-go")
def test_go_contract_fails_on_an_undocumented_status_and_field(
    go_service: Path, service_env: dict[str, str], postgres: PostgresServer
) -> None:
    with (
        edited(go_service / GO_ITEMS, *GO_UNDOCUMENTED_STATUS),
        edited(go_service / GO_ITEMS, *GO_UNDOCUMENTED_FIELD),
    ):
        result = run_contract(go_service, service_env, postgres, CONTRACT_MAX_EXAMPLES="10")
    assert result.returncode != 0
    assert "Undocumented status code" in result.stdout, result.stdout[-6000:]
    assert "Received: 202" in result.stdout
    assert "Response violates schema" in result.stdout
    assert "'etag' was unexpected" in result.stdout
    assert "contract: failed (see above)" in result.stderr
    # the service is stopped and the database dropped (run_contract) on failure too
    assert not running(go_service / "bin" / "service")


@pytest.mark.slow
@pytest.mark.xdist_group("service-go")
def test_go_contract_stops_at_its_time_limit(
    go_service: Path, service_env: dict[str, str], postgres: PostgresServer
) -> None:
    result = run_contract(
        go_service, service_env, postgres, CONTRACT_TIMEOUT="1", CONTRACT_MAX_EXAMPLES="1000"
    )
    assert result.returncode != 0
    assert "did not finish within 1 s (CONTRACT_TIMEOUT)" in result.stderr, output(result)[-4000:]
    assert not running(go_service / "bin" / "service")


# --- the TypeScript service: openapi-check and contract ----------------------------
#
# A private copy of the suite's prepared TypeScript service (set up and built
# once per worker, shared with tests/conformance/), its node_modules a link to
# the prepared one: no test here installs anything.

TS_MIGRATE = """\
# The scratch database as the conformance suite migrates it: Prisma's schema
# engine (`make migrate`) cannot be downloaded on the suite's machines.
import os
import sys
from pathlib import Path

sys.path.insert(0, {root!r})
from tests.conformance.stacks import apply_prisma_sql

apply_prisma_sql(Path.cwd(), os.environ["DATABASE_URL"], os.environ)
"""


@pytest.fixture(scope="module")
def ts_env(service_env: dict[str, str]) -> dict[str, str]:
    return STACKS["typescript"].env(service_env)


@pytest.fixture(scope="module")
def ts_service(
    prepared_service: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A private copy of the prepared TypeScript service: these tests edit its code."""
    prepared = prepared_service("typescript")
    dst = tmp_path_factory.mktemp("contract-gates-ts") / "service"
    shutil.copytree(prepared, dst, symlinks=True, ignore=shutil.ignore_patterns("node_modules"))
    (dst / "node_modules").symlink_to(prepared / "node_modules", target_is_directory=True)
    return dst


@pytest.fixture(scope="module")
def ts_migrate(tmp_path_factory: pytest.TempPathFactory) -> str:
    """CONTRACT_MIGRATE for this machine: the committed SQL, applied directly."""
    script = tmp_path_factory.mktemp("contract-migrate") / "migrate.py"
    script.write_text(TS_MIGRATE.format(root=str(Path(__file__).resolve().parent.parent)))
    return f"{sys.executable} {script}"


@pytest.mark.slow
@pytest.mark.xdist_group("service-typescript")
def test_ts_openapi_check_fails_when_code_and_document_disagree(
    ts_service: Path, ts_env: dict[str, str]
) -> None:
    check_make(ts_service, "openapi-check", ts_env)  # the control: the shared document
    with edited(ts_service / "openapi.yaml", "  version: 1.0.0\n", "  version: 1.0.1\n"):
        result = run_make(ts_service, "openapi-check", ts_env)
    assert result.returncode != 0
    assert "differs from what the code emits" in output(result)
    assert "+  version: 1.0.0" in result.stdout  # the diff shows what the code says

    # a field added to a route schema changes the emitted document
    with edited(
        ts_service / "src" / "schemas.ts",
        '      description: { anyOf: [descriptionText, { type: "null" }], title: "Description" },\n'
        "    },\n"
        "    additionalProperties: false,\n"
        '    type: "object",\n'
        '    required: ["name"],\n',
        '      description: { anyOf: [descriptionText, { type: "null" }], title: "Description" },\n'
        '      sku: { type: "string" },\n'
        "    },\n"
        "    additionalProperties: false,\n"
        '    type: "object",\n'
        '    required: ["name"],\n',
    ):
        result = run_make(ts_service, "openapi-check", ts_env)
    assert result.returncode != 0
    assert re.search(r"^\+ +sku:", result.stdout, re.MULTILINE), result.stdout[-3000:]


@pytest.mark.slow
@pytest.mark.xdist_group("service-typescript")
def test_ts_contract_passes_against_the_running_service(
    ts_service: Path, ts_env: dict[str, str], ts_migrate: str, postgres: PostgresServer
) -> None:
    result = run_contract(ts_service, ts_env, postgres, CONTRACT_MIGRATE=ts_migrate)
    assert result.returncode == 0, output(result)[-12000:]
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert re.search(rf"✅ {phase}\b", result.stdout), result.stdout[-4000:]
    assert "No issues found" in result.stdout


@pytest.mark.slow
@pytest.mark.xdist_group("service-typescript")
def test_ts_contract_fails_on_an_undocumented_status(
    ts_service: Path, ts_env: dict[str, str], ts_migrate: str, postgres: PostgresServer
) -> None:
    # A literal status the route's schema lacks does not even compile: Fastify
    # types reply.code() from the response schemas.
    with edited(
        ts_service / "src" / "app.ts",
        "return reply.code(201).header(",
        "return reply.code(202).header(",
    ):
        result = run_contract(ts_service, ts_env, postgres, CONTRACT_MIGRATE=ts_migrate)
    assert result.returncode != 0
    assert "error TS2345: Argument of type '202' is not assignable" in result.stdout, output(
        result
    )[-3000:]

    # One the types cannot see: "no such item" answered 410 instead of 404.
    with edited(
        ts_service / "src" / "errors.ts",
        'new HttpError(404, "not_found", detail)',
        'new HttpError(410, "not_found", detail)',
    ):
        result = run_contract(
            ts_service, ts_env, postgres, CONTRACT_MIGRATE=ts_migrate, CONTRACT_MAX_EXAMPLES="10"
        )
    assert result.returncode != 0
    assert "Undocumented status code" in result.stdout, result.stdout[-6000:]
    assert "Received: 410" in result.stdout


@pytest.mark.slow
@pytest.mark.xdist_group("service-typescript")
def test_ts_contract_migrates_with_make_migrate_and_drops_the_database_on_failure(
    ts_service: Path, ts_env: dict[str, str], postgres: PostgresServer
) -> None:
    # Without CONTRACT_MIGRATE it runs `make migrate` (prisma migrate deploy),
    # which the suite's engine stand-in makes fail: the run stops there.
    result = run_contract(ts_service, ts_env, postgres)
    assert result.returncode != 0
    assert "prisma migrate deploy" in result.stdout, output(result)[-3000:]
    assert "migrating the scratch database failed (make migrate)" in result.stderr


@pytest.mark.slow
@pytest.mark.needs_network
@pytest.mark.xdist_group("service-typescript")
def test_ts_contract_passes_with_the_real_make_migrate(
    ts_service: Path, ts_env: dict[str, str], postgres: PostgresServer
) -> None:
    # Prisma's real schema engine (downloaded at first use): the stand-in goes.
    env = {k: v for k, v in ts_env.items() if k != "PRISMA_SCHEMA_ENGINE_BINARY"}
    result = run_contract(ts_service, env, postgres, CONTRACT_MAX_EXAMPLES="10")
    assert result.returncode == 0, output(result)[-12000:]
    assert "No issues found" in result.stdout


# --- contract-diff: any stack (it reads only openapi.yaml) -------------------------


@pytest.fixture(scope="module")
def oasdiff_available() -> None:
    require_go_module(OASDIFF, "make contract-diff runs oasdiff through the Go module proxy")


@pytest.fixture
def repo(render: RenderFn, tmp_path: Path, oasdiff_available: None) -> Path:
    """A generated repo with one commit, the base the document is compared with."""
    root = tmp_path / "repo"
    shutil.copytree(render(**STACKS["python"].answers), root, symlinks=True)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "base"]):
        subprocess.run([*git, *command], cwd=root, check=True)
    return root


def contract_diff(
    root: Path, service_env: dict[str, str], base: str = "main"
) -> subprocess.CompletedProcess[str]:
    return run_make(root, "contract-diff", {**service_env, "BASE": base})


LIMIT_MAX = "            maximum: 100\n            minimum: 1\n            default: 20\n"
# A tighter limit rejects requests that worked before: breaking.
BREAKING = (LIMIT_MAX, LIMIT_MAX.replace("maximum: 100", "maximum: 50"))
# A new operation breaks no existing client.
ADDITIVE = (
    "  /items/{id}:\n",
    "  /tags:\n"
    "    get:\n"
    "      operationId: listTags\n"
    "      responses:\n"
    "        '200':\n"
    "          description: Every tag in use.\n"
    "  /items/{id}:\n",
)


def edit(document: Path, *replacements: tuple[str, str]) -> None:
    text = document.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    document.write_text(text, encoding="utf-8")


@pytest.mark.slow
def test_contract_diff_passes_an_unchanged_and_an_additive_document(
    repo: Path, service_env: dict[str, str]
) -> None:
    result = contract_diff(repo, service_env)
    assert result.returncode == 0, output(result)
    assert "No changes detected" in output(result)
    edit(repo / "openapi.yaml", ADDITIVE)
    result = contract_diff(repo, service_env)
    assert result.returncode == 0, output(result)
    assert "No breaking changes" in output(result)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("version", "passes"),
    [("1.0.0", False), ("1.1.0", False), ("2.0.0", True)],
    ids=["same-version", "minor-bump", "major-bump"],
)
def test_contract_diff_lets_a_breaking_change_through_only_with_a_major_bump(
    repo: Path, service_env: dict[str, str], version: str, passes: bool
) -> None:
    edit(repo / "openapi.yaml", BREAKING, ("  version: 1.0.0\n", f"  version: {version}\n"))
    result = contract_diff(repo, service_env)
    assert "request-parameter-max-decreased" in output(result), output(result)
    assert (result.returncode == 0) is passes, output(result)
    assert ("versioning policy: satisfied" in output(result)) is passes


@pytest.mark.slow
def test_contract_diff_refuses_an_invalid_document_and_an_unknown_base(
    repo: Path, service_env: dict[str, str]
) -> None:
    result = contract_diff(repo, service_env, base="no-such-branch")
    assert result.returncode != 0
    assert "BASE 'no-such-branch' is not a commit" in output(result)

    # a pattern no regex engine compiles
    edit(repo / "openapi.yaml", ("pattern: ^[a-z][a-z_]*$", "pattern: ^[a-z("))
    result = contract_diff(repo, service_env)
    assert result.returncode != 0
    assert "schema-pattern-regex-invalid" in output(result)


@pytest.mark.slow
def test_contract_diff_passes_when_the_base_has_no_document(
    repo: Path, service_env: dict[str, str]
) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "rm", "-q", "--cached", "openapi.yaml"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "before the contract"], cwd=repo, check=True)
    result = contract_diff(repo, service_env, base="HEAD")
    assert result.returncode == 0, output(result)
    assert "has no openapi.yaml yet" in output(result)
