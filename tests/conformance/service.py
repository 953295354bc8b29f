"""Prepare, migrate and run a generated service for the conformance suite."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from tests.conformance.dbproxy import CuttableProxy, proxy_to
from tests.conformance.stacks import STACKS
from tests.support.postgres import PostgresServer, free_port

STARTUP_TIMEOUT = 60.0  # a deadline against hanging, not a speed requirement
MAKE_TIMEOUT = 900.0

# Variables of the test process that must not leak into a service or its make
# targets (the suite's own DATABASE_URL, the template's virtualenv).
# PYTEST_ADDOPTS: .ci/run deselects the suite's own markers with it; a
# generated service's pytest must not inherit them.
_SCRUBBED = (
    "DATABASE_URL",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PORT",
    "HOST",
    "UV_PROJECT_ENVIRONMENT",
    "PYTEST_ADDOPTS",
)


def base_env(tools_dir: Path, uv_cache: Path) -> dict[str, str]:
    """The environment for make targets and services.

    Only `uv` is added to PATH (through `tools_dir`): putting the template's
    whole .venv/bin there would hide a generated project's missing tools.
    """
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env["PATH"] = f"{tools_dir}{os.pathsep}{env.get('PATH', '')}"
    env["UV_CACHE_DIR"] = str(uv_cache)
    env["UV_PYTHON_DOWNLOADS"] = "never"  # no network to python-build-standalone here
    return env


def tools_dir_with_uv(where: Path) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    link = where / "uv"
    # the suite's own uv (from uv.lock) first: the version the suite is tested with
    own = Path(sys.executable).with_name("uv")
    uv = str(own) if own.exists() else shutil.which("uv")
    if uv is None:
        raise RuntimeError("uv not found: run scripts/bootstrap (it installs the pinned uv)")
    # A link left by an earlier run may point elsewhere or nowhere: replace it
    # atomically (rename over it) so concurrent workers never see it missing.
    if not (link.is_symlink() and os.readlink(link) == uv):
        tmp = where / f".uv-{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(uv)
        tmp.replace(link)
    return where


def run_make(
    root: Path, target: str, env: Mapping[str, str], timeout: float = MAKE_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", target],
        cwd=root,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def check_make(root: Path, target: str, env: Mapping[str, str]) -> None:
    result = run_make(root, target, env)
    assert result.returncode == 0, (
        f"`make {target}` in {root} exited {result.returncode}\n"
        f"--- stdout (tail) ---\n{result.stdout[-8000:]}\n"
        f"--- stderr (tail) ---\n{result.stderr[-8000:]}"
    )


def via_proxy(url: str, proxy: CuttableProxy) -> str:
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{proxy.host}:{proxy.port}" if userinfo else f"{proxy.host}:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass
class RunningService:
    base_url: str
    process: subprocess.Popen[bytes]
    proxy: CuttableProxy
    database_url: str  # direct (not proxied) URL, for test-side inspection
    stdout_path: Path
    stderr_path: Path

    def client(self, timeout: float = 10.0) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=timeout)

    def logs(self, limit: int = 6000) -> str:
        out = self.stdout_path.read_text(errors="replace")[-limit:]
        err = self.stderr_path.read_text(errors="replace")[-limit:]
        return f"--- service stdout (tail) ---\n{out}\n--- service stderr (tail) ---\n{err}"

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def wait_until_live(service: RunningService) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    with service.client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if service.process.poll() is not None:
                raise AssertionError(
                    f"the service exited with {service.process.returncode} during start-up\n"
                    + service.logs()
                )
            with contextlib.suppress(httpx.TransportError):
                if client.get("/healthz").status_code == 200:
                    return
            time.sleep(0.1)
    raise AssertionError(
        f"/healthz did not answer 200 within {STARTUP_TIMEOUT}s\n" + service.logs()
    )


@contextlib.contextmanager
def run_service(
    root: Path,
    stack: str,
    package_name: str,
    postgres: PostgresServer,
    env: Mapping[str, str],
    logdir: Path,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[RunningService]:
    """A migrated fresh database and the service on a free port, behind a proxy."""
    database_url = postgres.create_database("conformance")
    env = STACKS[stack].env(env)
    try:
        STACKS[stack].migrate(root, database_url, env)
        with proxy_to(postgres.host, postgres.port) as proxy:
            port = free_port()
            service_env = {
                **env,
                "DATABASE_URL": via_proxy(database_url, proxy),
                "PORT": str(port),
                "HOST": "127.0.0.1",
                "LOG_LEVEL": "info",
                # every teardown sends SIGTERM: the default 10 s grace would
                # dominate the suite's run time
                "SHUTDOWN_GRACE_SECONDS": "1",
                **(extra_env or {}),
            }
            logdir.mkdir(parents=True, exist_ok=True)
            stdout_path, stderr_path = logdir / "stdout.log", logdir / "stderr.log"
            with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
                process = subprocess.Popen(
                    STACKS[stack].command(root, package_name),
                    cwd=root,
                    env=service_env,
                    stdout=out,
                    stderr=err,
                )
            service = RunningService(
                f"http://127.0.0.1:{port}", process, proxy, database_url, stdout_path, stderr_path
            )
            try:
                wait_until_live(service)
                yield service
            finally:
                service.stop()
    finally:
        postgres.drop_database(database_url)
