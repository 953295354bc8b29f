"""Configuration, read from the environment only (one image, every environment)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

LogLevel = Literal["debug", "info", "warning", "error", "critical"]

# libpq spellings people paste, plus SQLAlchemy's explicit psycopg 3 form.
_ACCEPTED_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+psycopg"})
_ENCODE_HINT = "percent-encode special characters in the password, e.g. '@' as %40"


def sqlalchemy_url(database_url: str) -> URL:
    """DATABASE_URL (libpq style) as a SQLAlchemy URL on the psycopg 3 driver.

    SQLAlchemy would pick psycopg2 for a bare `postgresql://`, which is not installed.
    """
    try:
        url = make_url(database_url)
    except (ArgumentError, ValueError):
        # Never the parser's own message: it quotes the text it failed on (a
        # "port" that is really the end of a password with an "@" in it).
        raise ValueError(
            f"must look like postgresql://user:password@host:5432/dbname ({_ENCODE_HINT})"
        ) from None
    if "@" in (url.host or ""):
        # A host cannot contain "@": the password has one, and the part after
        # it would be logged as the host name by every failed connection.
        raise ValueError(f"has more than one '@' before the host; {_ENCODE_HINT}")
    if url.drivername not in _ACCEPTED_SCHEMES:
        raise ValueError(f"must start with postgresql://, not {url.drivername}://")
    if not url.database:
        raise ValueError("must name a database, e.g. postgresql://user@host:5432/dbname")
    return url.set(drivername="postgresql+psycopg")


class DatabaseSettings(BaseSettings):
    """What migrations need: only the database."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    # repr=False: the URL carries the password; keep it out of reprs and logs.
    database_url: Annotated[str, Field(repr=False)]

    @field_validator("database_url")
    @classmethod
    def _valid_database_url(cls, value: str) -> str:
        sqlalchemy_url(value)
        return value

    @property
    def sqlalchemy_url(self) -> URL:
        return sqlalchemy_url(self.database_url)


class Settings(DatabaseSettings):
    """Everything the server reads (names are the upper-case environment variables)."""

    host: str = "0.0.0.0"  # noqa: S104 - a container must listen beyond its loopback
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    log_level: LogLevel = "info"
    # Long enough for the load balancer to notice the failing readiness probe.
    shutdown_grace_seconds: Annotated[float, Field(ge=0, le=300)] = 10.0
    # The bound on one request's database work: statement, lock and pool waits.
    db_timeout_ms: Annotated[int, Field(ge=100, le=60_000)] = 5000

    @field_validator("log_level", mode="before")
    @classmethod
    def _case_insensitive_level(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


def describe_errors(exc: ValidationError) -> str:
    """One line per bad variable, named as it is set; values are never echoed."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        name = "_".join(str(part) for part in error["loc"]).upper() or "environment"
        lines.append(f"{name}: {error['msg']}")
    return "; ".join(lines)
