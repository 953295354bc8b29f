"""The connection pool, and the short-timeout ping behind readiness."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL

# libpq's minimum; a dead database fails fast instead of hanging requests.
CONNECT_TIMEOUT_SECONDS = 2
# How long a request waits for a free pooled connection before it gets a 503.
POOL_TIMEOUT_SECONDS = 5.0


def create_db_engine(url: URL, *, application_name: str) -> Engine:
    """A pool that survives database restarts: stale connections are replaced on checkout."""
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        connect_args={
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "application_name": application_name,
        },
    )


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
