"""What the Python image would contain actually runs: its build replayed on the host.

There is no Docker engine here, so the rendered Dockerfile is replayed stage by
stage (tests/support/image_emulation.py): COPY from the .dockerignore-filtered
context or an earlier stage's root, exec-form RUN with the same uv argv and
flags, the stage's ENV and WORKDIR mapped under a temporary root. Two stand-ins
are unavoidable and the only ones used:

- the host's python3.11 replaces the distroless interpreter (UV_PYTHON): the
  image runs 3.13, this machine only has 3.11 (requires-python allows both);
- the host's uv (the suite's own, same minor as the pinned uv image) is what
  `COPY --from=<uv image> /uv` copies in; cache mounts use the suite's uv cache.

The runtime root then holds ONLY what the runtime stage COPYs, the build
roots are deleted (nothing may point back into them), and the root is made
read-only (readOnlyRootFilesystem); the service and the migration Job's
command run from it as the image's USER with the image's ENV and WORKDIR.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from extensions.slipway import load_pins
from tests.conftest import RenderFn
from tests.support.image_emulation import (
    DEFAULT_PATH,
    Replay,
    Stage,
    command_under,
    env_under,
    make_readonly,
    parse_stages,
    run_as,
)
from tests.support.postgres import PostgresServer, free_port

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("service-python")]

STARTUP_TIMEOUT = 60.0  # deadlines against hanging, not speed requirements
MIGRATE_TIMEOUT = 120.0


@dataclass(frozen=True)
class Image:
    runtime: Stage
    root: Path
    project: Path  # the writable copy of the render (build context, manifests)

    def env(self, **extra: str) -> dict[str, str]:
        """The runtime stage's ENV only (no host variables), plus `extra`."""
        return {**env_under(self.root, {"PATH": DEFAULT_PATH, **self.runtime.env}), **extra}

    @property
    def cwd(self) -> Path:
        return Replay.under(self.root, self.runtime.workdir)


def host_python() -> Path:
    # the system interpreter: the image's non-root user can reach it (a
    # pyenv interpreter under /root could not be executed by uid 65532)
    found = shutil.which("python3.11", path="/usr/local/bin:/usr/bin:/bin")
    assert found, "python3.11 is needed to stand in for the image's interpreter"
    return Path(found)


@pytest.fixture(scope="module")
def image_root(
    render: RenderFn,
    service_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Image]:
    project = tmp_path_factory.mktemp("image-context") / "project"
    shutil.copytree(render(), project, symlinks=True)
    # the suite's own uv binary, not whatever `uv` is on PATH (a pyenv shim
    # is a bash script, and the image's stages have no bash)
    own = Path(sys.executable).with_name("uv")
    host_uv = str(own) if own.exists() else shutil.which("uv")
    assert host_uv, "uv (the suite's own) is needed to replay the build's RUN steps"
    images = load_pins()["images"]
    # the stand-in must be the pinned image's uv release line (lock format,
    # sync flags): same major.minor as the image tag
    version = subprocess.run(
        [host_uv, "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    assert version.split(".")[:2] == str(images["uv"]["tag"]).split(".")[:2], (
        f"host uv {version} does not stand in for the pinned uv image {images['uv']['tag']}"
    )
    replay = Replay(
        context=project,
        scratch=tmp_path_factory.mktemp("image-stages"),
        stand_ins={images["uv"]["image"]: {"/uv": Path(host_uv)}},
        host_python=host_python(),
        cache_dir=Path(service_env["UV_CACHE_DIR"]),
    )
    *build_stages, runtime = parse_stages(project / "Dockerfile")
    for stage in build_stages:
        if stage.base not in replay.stages and not stage.lines:
            replay.declare_external(stage)
        else:
            replay.build(stage, replay.scratch / stage.name)
    # outside pytest's 0700 base temp, so the image's non-root user can reach it
    root = Path(tempfile.mkdtemp(prefix="slipway-image-root-"))
    root.chmod(0o755)
    try:
        replay.build(runtime, root)
        # nothing in the runtime may lean on a build stage (a .pth or a
        # shebang into it would work here but not in the image)
        shutil.rmtree(replay.scratch)
        make_readonly(root)
        yield Image(runtime, root, project)
    finally:
        make_readonly(root, writable=True)
        shutil.rmtree(root, ignore_errors=True)


def migrate_command(image: Image) -> list[str]:
    """The migration Job's container argv, read from the rendered manifest
    (Kubernetes rules: `command` replaces ENTRYPOINT, `args` replaces CMD)."""
    project = image.project
    candidates = [project / "deploy/migrate/job.yaml", *sorted(project.glob("deploy/base/*.yaml"))]
    for path in candidates:
        if not path.exists():
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "Job":
                container = doc["spec"]["template"]["spec"]["containers"][0]
                assert "workingDir" not in container, "the replay assumes the image's WORKDIR"
                command = container.get("command", image.runtime.entrypoint)
                args = container.get("args", [] if "command" in container else image.runtime.cmd)
                return [*command, *args]
    raise AssertionError(f"no Job manifest among {[str(c) for c in candidates]}")


def run_migrations(image: Image, database_url: str) -> None:
    result = subprocess.run(
        command_under(image.root, migrate_command(image)),
        cwd=image.cwd,
        env=image.env(DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        timeout=MIGRATE_TIMEOUT,
        check=False,
        **run_as(image.runtime.user),  # type: ignore[call-overload]
    )
    assert result.returncode == 0, (
        f"the migration Job's command exited {result.returncode} from the image root\n"
        f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
    )


def table_exists(database_url: str, name: str) -> bool:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT to_regclass(%s)", (f"public.{name}",)).fetchone()
    return row is not None and row[0] is not None


@contextlib.contextmanager
def fresh_database(postgres: PostgresServer, prefix: str) -> Iterator[str]:
    url = postgres.create_database(prefix)
    try:
        yield url
    finally:
        postgres.drop_database(url)


def test_runtime_root_holds_only_what_the_runtime_stage_copies(image_root: Image) -> None:
    copied = image_root.runtime.copies_from_context
    assert copied, "the runtime stage copies nothing from the context: the replay saw no COPY"
    if not any(c == "src" or c.startswith("src/") for c in copied):
        source = Replay.under(image_root.root, image_root.runtime.workdir) / "src"
        assert not source.exists(), f"{source} is in the runtime root but no COPY puts it there"
    assert image_root.runtime.entrypoint or image_root.runtime.cmd, "the image has no command"


def test_runtime_root_is_self_contained_and_read_only(image_root: Image) -> None:
    # the image's interpreter imports the service from the runtime root's venv
    # (not from a build stage or the source tree), and as the image's USER it
    # cannot write next to its code (readOnlyRootFilesystem)
    python = command_under(image_root.root, [image_root.runtime.entrypoint[0]])[0]
    package = image_root.runtime.entrypoint[-1]
    probe = (
        "import sys, importlib\n"
        f"print(sys.prefix, importlib.import_module({package!r}).__file__)\n"
        "open('write-probe', 'w')\n"
    )
    result = subprocess.run(
        [python, "-c", probe],
        cwd=image_root.cwd,
        env=image_root.env(),
        capture_output=True,
        text=True,
        timeout=MIGRATE_TIMEOUT,
        check=False,
        **run_as(image_root.runtime.user),  # type: ignore[call-overload]
    )
    printed = result.stdout.split()
    assert len(printed) == 2, (
        f"the image's interpreter cannot import {package} from the runtime root\n"
        + result.stderr[-4000:]
    )
    prefix, module = printed
    assert Path(prefix).is_relative_to(image_root.root), prefix
    assert Path(module).is_relative_to(image_root.root), module
    assert "PermissionError" in result.stderr, "the runtime root is writable to the image's user"


def test_migration_job_command_creates_the_schema(
    image_root: Image, postgres: PostgresServer
) -> None:
    with fresh_database(postgres, "image_job") as url:
        assert not table_exists(url, "items")
        run_migrations(image_root, url)
        assert table_exists(url, "items"), "the Job's command ran but `items` does not exist"


def test_entrypoint_serves_and_stops_cleanly(
    image_root: Image, postgres: PostgresServer, tmp_path: Path
) -> None:
    command = command_under(image_root.root, image_root.runtime.entrypoint + image_root.runtime.cmd)
    with fresh_database(postgres, "image_run") as url:
        run_migrations(image_root, url)
        port = free_port()
        env = image_root.env(
            DATABASE_URL=url,
            PORT=str(port),
            HOST="127.0.0.1",  # loopback only on a shared machine
            SHUTDOWN_GRACE_SECONDS="1",  # the contract's default 10 s only slows the test
        )
        out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(
                command,
                cwd=image_root.cwd,
                env=env,
                stdout=stdout,
                stderr=stderr,
                **run_as(image_root.runtime.user),  # type: ignore[call-overload]
            )

        def logs() -> str:
            tails = (out.read_text()[-4000:], err.read_text()[-4000:])
            return "--- stdout ---\n{}\n--- stderr ---\n{}".format(*tails)

        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as client:
                wait_for_health(client, process, logs)
                ready = client.get("/readyz")
                assert ready.status_code == 200, ready.text + logs()
                created = client.post("/items", json={"name": "from the image root"})
                assert created.status_code == 201, created.text + logs()
                assert created.json()["name"] == "from the image root"
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0, "SIGTERM did not end in exit 0\n" + logs()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def wait_for_health(client: httpx.Client, process: subprocess.Popen[Any], logs: Any) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the service exited {process.returncode} at start-up\n{logs()}")
        with contextlib.suppress(httpx.TransportError):
            health = client.get("/healthz")
            assert health.status_code == 200, health.text + logs()
            return
        time.sleep(0.1)
    raise AssertionError(f"/healthz did not answer within {STARTUP_TIMEOUT}s\n{logs()}")


def test_replay_refuses_what_it_cannot_honour(tmp_path: Path) -> None:
    # a shell-form RUN would pass silently if the replay skipped it
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM scratch AS build\nWORKDIR /app\nRUN uv sync && echo done\n")
    (tmp_path / "uv").touch()
    replay = Replay(
        context=tmp_path,
        scratch=tmp_path,
        stand_ins={},
        host_python=host_python(),
        cache_dir=tmp_path,
    )
    (stage,) = parse_stages(dockerfile)
    with pytest.raises(AssertionError, match="not exec form"):
        replay.build(stage, tmp_path / "root")
