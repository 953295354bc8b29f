"""The connection pool, the per-request bound on database work, and the readiness ping."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import URL

# libpq's minimum; a dead database fails fast instead of hanging requests.
CONNECT_TIMEOUT_SECONDS = 2
# Connections per replica, all kept open: production's 10 replicas then use
# all of PostgreSQL's default max_connections (100); more per replica would
# need a bigger database or a connection pooler. No overflow: a connection
# opened beyond the pool is closed again as soon as it is returned, so under
# sustained load every request past the pool paid for a new connection (and
# PostgreSQL for a new backend process).
POOL_SIZE = 10
POOL_OVERFLOW = 0
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
            # Timestamps arrive in UTC, as the API writes them (schemas.py).
            "options": (
                f"-c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms} -c TimeZone=UTC"
            ),
            # A database host that vanished (packets dropped, no reset) fails
            # the connection once sent data stays unacknowledged this long,
            # instead of the kernel's ~15 minutes of retries; frees the
            # worker threads the backstop below abandoned.
            "tcp_user_timeout": timeout_ms,
        },
    )


def database_threads() -> ThreadPoolExecutor:
    """The threads that run database work: one per pooled connection.

    More threads would only wait for a connection; fewer would leave
    connections idle while requests queue.
    """
    return ThreadPoolExecutor(POOL_SIZE, thread_name_prefix="db")


async def in_thread(threads: ThreadPoolExecutor, seconds: float, work: Callable[[], T]) -> T:
    """`work` in one of `threads`, abandoned if it takes longer than `seconds`.

    A database that does not answer at all (a frozen host, dropped packets)
    trips no server-side timeout: past the bound the thread is left to finish
    or fail on its own, and the caller gets TimeoutError now. Work still queued
    for a thread when its caller gives up (a timeout, a client hang-up) never
    runs.
    """
    async with asyncio.timeout(seconds):
        return await asyncio.get_running_loop().run_in_executor(threads, work)


async def run_bounded(
    engine: Engine, threads: ThreadPoolExecutor, timeout_ms: int, work: Callable[[Connection], T]
) -> T:
    """Run `work` on a pooled connection, answering within the bound."""

    def on_connection() -> T:
        with engine.connect() as conn:
            return work(conn)

    try:
        return await in_thread(threads, timeout_ms / 1000 + BACKSTOP_MARGIN_SECONDS, on_connection)
    except TimeoutError:
        raise DatabaseTimeoutError(f"no answer from the database within {timeout_ms} ms") from None


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
