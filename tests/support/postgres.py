"""A real PostgreSQL for the tests: the one in DATABASE_URL, or a throwaway cluster.

The throwaway cluster lives in a temporary folder, listens on a free loopback
port and trusts local connections. `initdb` refuses to run as root, so as root
the cluster is created and run as the `postgres` system user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg


@dataclass(frozen=True)
class PostgresServer:
    """Where the server is, and how to make an isolated database on it."""

    url: str  # admin connection (database `postgres` or the one given)

    def url_for(self, dbname: str) -> str:
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(path=f"/{dbname}"))

    def create_database(self, prefix: str = "t") -> str:
        """A fresh, empty database; returns its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def drop_database(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def databases(self) -> set[str]:
        """Every database on the server: a gate that leaves one behind leaks."""
        with psycopg.connect(self.url) as conn:
            rows = conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate")
            return {name for (name,) in rows.fetchall()}

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 5432


def tables(url: str) -> list[str]:
    """The public schema's tables in the database at `url`."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return sorted(name for (name,) in rows.fetchall())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if not candidates:
        raise RuntimeError(
            f"PostgreSQL's {name} was not found: install it (apt-get install postgresql) "
            "or set DATABASE_URL to a running server."
        )
    return candidates[0]


def _as_user() -> tuple[list[str], int | None, int | None]:
    """Command prefix and ids to run the server as a non-root user."""
    if os.geteuid() != 0:
        return [], None, None
    user = pwd.getpwnam("postgres")
    return ["runuser", "-u", "postgres", "--"], user.pw_uid, user.pw_gid


@contextlib.contextmanager
def start_postgres(workdir: Path) -> Iterator[PostgresServer]:
    if url := os.environ.get("DATABASE_URL"):
        yield PostgresServer(url)
        return

    prefix, uid, gid = _as_user()
    data = workdir / "data"
    data.mkdir()
    if uid is not None and gid is not None:
        # the temp folders above it must be traversable by the postgres user
        for parent in [workdir, *workdir.parents]:
            if parent == Path("/"):
                break
            parent.chmod(parent.stat().st_mode | 0o011)
        os.chown(workdir, uid, gid)
        os.chown(data, uid, gid)
    subprocess.run(
        [
            *prefix,
            _pg_bin("initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    log = workdir / "server.log"
    opts = (
        f"-k {workdir} -c listen_addresses=127.0.0.1 -p {port} -c fsync=off -c full_page_writes=off"
    )
    subprocess.run(
        [*prefix, _pg_bin("pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts, "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield PostgresServer(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    finally:
        subprocess.run(
            [*prefix, _pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )
