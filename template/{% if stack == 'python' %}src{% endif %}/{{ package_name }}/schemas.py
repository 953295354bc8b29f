"""The JSON shapes of the items API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from .models import DESCRIPTION_MAX, NAME_MAX
from .openapi import CURSOR_PATTERN, NO_NUL, NUL, WHITESPACE


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


# The documented rules are the validators' rules, in JSON Schema terms: a name
# is 1-NAME_MAX characters once the surrounding whitespace is trimmed, so its
# length limit is part of the pattern (maxLength would count the whitespace).
# Between the first and the last visible character (no f-string: its doubled
# braces look like unrendered template syntax).
_INNER = f"[^{NUL}]" + "{0," + str(NAME_MAX - 2) + "}"
_NAME_PATTERN = (
    f"^[{WHITESPACE}]*[^{WHITESPACE}{NUL}](?:{_INNER}[^{WHITESPACE}{NUL}])?[{WHITESPACE}]*$"
)
_STORED_NAME_PATTERN = f"^[^{WHITESPACE}{NUL}](?:[^{NUL}]*[^{WHITESPACE}{NUL}])?$"

Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX),
    AfterValidator(_storable),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _NAME_PATTERN,
            "description": f"1-{NAME_MAX} characters after trimming surrounding "
            "whitespace (stored trimmed); no NUL.",
        }
    ),
]
Description = Annotated[
    str,
    StringConstraints(max_length=DESCRIPTION_MAX),
    AfterValidator(_storable),
    WithJsonSchema({"type": "string", "maxLength": DESCRIPTION_MAX, "pattern": NO_NUL}),
]


class ItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    description: Description | None = None


# Response shapes forbid extra fields: the document then says "exactly these",
# and `make contract` catches a handler that leaks a field it does not list.
class ItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="forbid")

    id: Annotated[int, Field(ge=1, json_schema_extra={"format": "int64"})]
    name: Annotated[
        str,
        Field(
            json_schema_extra={
                "minLength": 1,
                "maxLength": NAME_MAX,
                "pattern": _STORED_NAME_PATTERN,
            }
        ),
    ]
    description: Annotated[
        str | None,
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "string", "maxLength": DESCRIPTION_MAX, "pattern": NO_NUL},
                    {"type": "null"},
                ]
            }
        ),
    ]
    # Written with "Z": the database session's time zone is UTC (db.py), and
    # pydantic writes a UTC datetime that way without a Python call per row.
    created_at: Annotated[
        datetime,
        WithJsonSchema({"type": "string", "format": "date-time", "description": "UTC (Z)."}),
    ]


class ItemPage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: Annotated[list[ItemOut], Field(json_schema_extra={"maxItems": 100})]
    limit: Annotated[int, Field(ge=1, le=100)]
    next: Annotated[
        str | None,
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "string", "maxLength": 200, "pattern": CURSOR_PATTERN},
                    {"type": "null"},
                ],
                "description": "The `cursor` of the next page; null on the last page.",
            }
        ),
    ]
