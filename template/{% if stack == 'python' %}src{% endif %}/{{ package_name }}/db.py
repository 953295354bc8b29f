"""The connection pool, the per-request bound on database work, and the readiness ping."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import URL

# libpq's minimum; a dead database fails fast instead of hanging requests.
CONNECT_TIMEOUT_SECONDS = 2
# Connections kept open, and opened beyond that under load. Each replica may
# hold POOL_SIZE + POOL_OVERFLOW: production's 10 replicas then use all of
# PostgreSQL's default max_connections (100); more per replica would need a
# bigger database or a connection pooler.
POOL_SIZE = 5
POOL_OVERFLOW = 5
# The database's own timeouts usually end a slow statement first (its
# connection stays usable); this margin makes the service's clock the backstop
# for a database that does not answer at all.
BACKSTOP_MARGIN_SECONDS = 0.3

T = TypeVar("T")


class DatabaseTimeoutError(Exception):
    """A request's database work passed DB_TIMEOUT_MS (a hung or unreachable database)."""


def create_db_engine(url: URL, *, application_name: str, timeout_ms: int) -> Engine:
    """A pool that survives database restarts, with every wait bounded by `timeout_ms`."""
    return create_engine(
        url,
        # No pre-ping (a SELECT 1 round trip before every request). After a
        # database restart the first query on a stale connection fails (503,
        # retryable), and SQLAlchemy then discards every older pooled
        # connection, so the service recovers without a restart.
        pool_pre_ping=False,
        pool_size=POOL_SIZE,
        max_overflow=POOL_OVERFLOW,
        pool_timeout=timeout_ms / 1000,
        connect_args={
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "application_name": application_name,
            # Set at connect time: no extra round trip per request. A held
            # lock (LOCK TABLE, a long migration) ends the wait with an error.
            "options": f"-c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms}",
            # A database host that vanished (packets dropped, no reset) fails
            # the connection once sent data stays unacknowledged this long,
            # instead of the kernel's ~15 minutes of retries; frees the
            # worker threads the backstop below abandoned.
            "tcp_user_timeout": timeout_ms,
        },
    )


async def run_bounded(engine: Engine, timeout_ms: int, work: Callable[[Connection], T]) -> T:
    """Run `work` on a pooled connection in a worker thread, answering within the bound.

    A database that does not answer at all (a frozen host, dropped packets)
    trips no server-side timeout: past the bound the thread is abandoned, and
    finishes or fails on its own; the request gets its 503 now.
    """

    def in_thread() -> T:
        with engine.connect() as conn:
            return work(conn)

    try:
        with anyio.fail_after(timeout_ms / 1000 + BACKSTOP_MARGIN_SECONDS):
            return await anyio.to_thread.run_sync(in_thread, abandon_on_cancel=True)
    except TimeoutError:
        raise DatabaseTimeoutError(f"no answer from the database within {timeout_ms} ms") from None


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
