"""The example resource: create, list (keyset-paginated), get by id."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BeforeValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError
from sqlalchemy import select

from .deps import SessionDep
from .errors import ApiError, JsonBodyRoute
from .models import Item
from .openapi import CURSOR_PATTERN, errors
from .schemas import ItemCreate, ItemOut, ItemPage

# Ids beyond PostgreSQL's bigint are refused (422), not sent to the database.
BIGINT_MAX = 2**63 - 1
_DIGITS = re.compile(r"[+-]?[0-9]+")
CURSOR_MAX = 200


def _integer_text(value: object) -> object:
    # Pydantic would read "1.0" as 1; in a URL that is not an integer.
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise PydanticCustomError("int_parsing", "Input should be a valid integer")
    return value


# Bounds before the validator, so they reach the OpenAPI schema as minimum/maximum.
Limit = Annotated[int, Field(ge=1, le=100), BeforeValidator(_integer_text)]
ItemId = Annotated[int, Field(gt=0, le=BIGINT_MAX), BeforeValidator(_integer_text)]
Cursor = Annotated[str, Field(min_length=1, max_length=CURSOR_MAX, pattern=CURSOR_PATTERN)]


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(str(last_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The id a page ends with, from a cursor this service issued; else 422."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not (text.isdigit() and 0 < int(text) <= BIGINT_MAX and encode_cursor(int(text)) == cursor):
        reason = "not a cursor this service issued"
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("query", "cursor"), "msg": reason}]
        )
    return int(text)


router = APIRouter(prefix="/items", tags=["items"], route_class=JsonBodyRoute)

# Links tell clients (and `make contract`'s stateful tests) how answers chain.
_ITEM_LINKS: dict[str, Any] = {
    "GetItem": {"operationId": "getItem", "parameters": {"id": "$response.body#/id"}},
}


@router.post(
    "",
    status_code=201,
    operation_id="createItem",
    summary="Create an item",
    responses={
        201: {
            "headers": {
                "Location": {
                    "description": "The new item's path.",
                    "schema": {"type": "string", "pattern": "^/items/[1-9][0-9]*$"},
                }
            },
            "links": _ITEM_LINKS,
        },
        **errors(400, 413, 415, 422, 503),
    },
)
def create_item(payload: ItemCreate, session: SessionDep, response: Response) -> ItemOut:
    item = Item(name=payload.name, description=payload.description)
    session.add(item)
    session.commit()
    response.headers["Location"] = f"/items/{item.id}"
    return ItemOut.model_validate(item)


@router.get(
    "",
    operation_id="listItems",
    summary="List items by id, one page at a time",
    responses={
        200: {
            "links": {
                "NextPage": {
                    "operationId": "listItems",
                    "parameters": {"cursor": "$response.body#/next"},
                }
            }
        },
        **errors(422, 503),
    },
)
def list_items(
    session: SessionDep,
    limit: Annotated[Limit, Query()] = 20,
    # Documented as the string it is: a query parameter is never null.
    cursor: Annotated[
        Cursor | None,
        WithJsonSchema(
            {"type": "string", "minLength": 1, "maxLength": CURSOR_MAX, "pattern": CURSOR_PATTERN}
        ),
        Query(description="The `next` of an earlier page (opaque)."),
    ] = None,
) -> ItemPage:
    after = decode_cursor(cursor) if cursor is not None else 0
    # One row more than the page: whether it exists says if there is a next page.
    rows = list(
        session.scalars(select(Item).where(Item.id > after).order_by(Item.id).limit(limit + 1))
    )
    page = rows[:limit]
    more = len(rows) > limit
    return ItemPage(
        items=[ItemOut.model_validate(row) for row in page],
        limit=limit,
        next=encode_cursor(page[-1].id) if more else None,
    )


@router.get(
    "/{id}",
    operation_id="getItem",
    summary="Get an item by id",
    responses=errors(404, 422, 503),
)
def get_item(item_id: Annotated[ItemId, Path(alias="id")], session: SessionDep) -> ItemOut:
    item = session.get(Item, item_id)
    if item is None:
        raise ApiError(404, "not_found", f"item {item_id} does not exist")
    return ItemOut.model_validate(item)
