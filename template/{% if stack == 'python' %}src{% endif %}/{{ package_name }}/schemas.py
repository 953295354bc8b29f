"""The JSON shapes of the items API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, field_serializer

from .models import DESCRIPTION_MAX, NAME_MAX


def _storable(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and lone surrogates cannot be encoded as
    # UTF-8: refuse both here (422) instead of failing in the driver (500).
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX),
    AfterValidator(_storable),
]
Description = Annotated[
    str, StringConstraints(max_length=DESCRIPTION_MAX), AfterValidator(_storable)
]


class ItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    description: Description | None = None


class ItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str | None
    created_at: datetime

    @field_serializer("created_at")
    def _rfc3339_utc(self, value: datetime) -> str:
        # The database answers in its session time zone; clients get UTC with "Z".
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class ItemPage(BaseModel):
    items: list[ItemOut]
    limit: int
    # The cursor of the next page; null on the last one.
    next: str | None
