"""The test's own connections to a service's database: locks, bulk rows, read counts."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import psycopg

# pg_stat_activity shows a terminated backend for a moment after the signal.
BACKEND_EXIT_DEADLINE = 10.0


@contextlib.contextmanager
def table_locked(database_url: str) -> Iterator[None]:
    """Hold `LOCK TABLE items` (ACCESS EXCLUSIVE: blocks reads too) until the block ends."""
    with psycopg.connect(database_url) as conn:
        conn.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            conn.rollback()


def seed_items(database_url: str, count: int) -> None:
    """Insert `count` items in one statement (ids ascending, as the service would assign)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO items (name) SELECT 'seeded ' || n FROM generate_series(1, %s) AS n",
            (count,),
        )


def rows_read(database_url: str) -> int:
    """Rows of `items` read so far by every backend: sequential scans plus index entries.

    PostgreSQL publishes a backend's counts when it goes idle (at most once a
    second) or exits; `flush_service_counts` makes the service's backends exit.
    """
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(t.seq_tup_read, 0)"
            " + coalesce((SELECT sum(i.idx_tup_read) FROM pg_stat_user_indexes i"
            "             WHERE i.relid = t.relid), 0)"
            " FROM pg_stat_user_tables t WHERE t.relname = 'items'"
        ).fetchone()
    assert row is not None, "no table items"
    return int(row[0])


def flush_service_counts(database_url: str) -> None:
    """End every other backend on the database (the service's pool reconnects);
    each publishes its statistics on exit."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        deadline = time.monotonic() + BACKEND_EXIT_DEADLINE
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
            if row is not None and row[0] == 0:
                return
            time.sleep(0.1)
    raise AssertionError("the service's database sessions did not end")
