"""The example resource: create, list (keyset pages), get by id."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BeforeValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError
from sqlalchemy import Connection, bindparam, insert, select

from .deps import RuntimeDep
from .errors import ApiError, JsonBodyRoute
from .models import Item
from .openapi import CURSOR_PATTERN, errors
from .schemas import ItemCreate, ItemOut, ItemPage

# Ids beyond PostgreSQL's bigint are refused (422), not sent to the database.
BIGINT_MAX = 2**63 - 1
_DIGITS = re.compile(r"[+-]?[0-9]+")
# What encode_cursor can produce: base64url of a bigint's digits, unpadded.
_CURSOR = re.compile(r"[A-Za-z0-9_-]{1,27}")
_COLUMNS = (Item.id, Item.name, Item.description, Item.created_at)
# Built once: SQLAlchemy then finds each compiled statement in its cache
# without rebuilding and hashing a new statement per request.
_INSERT = insert(Item).returning(*_COLUMNS)
_GET = select(*_COLUMNS).where(Item.id == bindparam("id"))
# Keyset: the primary-key index finds the page start, so a page costs the
# same at any depth and any table size (no count(*), no OFFSET).
_FIRST_PAGE = select(*_COLUMNS).order_by(Item.id).limit(bindparam("rows"))
_NEXT_PAGE = _FIRST_PAGE.where(Item.id > bindparam("after"))


def _integer_text(value: object) -> object:
    # Pydantic would read "1.0" as 1; in a URL that is not an integer.
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise PydanticCustomError("int_parsing", "Input should be a valid integer")
    return value


def encode_cursor(last_id: int) -> str:
    """The position after `last_id`, opaque to clients (they must not build their own)."""
    return base64.urlsafe_b64encode(str(last_id).encode()).rstrip(b"=").decode()


def decode_cursor(value: object) -> object:
    """The id a cursor from encode_cursor stands for; anything else is a 422."""
    if value is None:
        return None
    not_issued = PydanticCustomError("cursor", "not a cursor this service issued")
    if not isinstance(value, str) or not _CURSOR.fullmatch(value):
        raise not_issued
    try:
        digits = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        raise not_issued from None
    if not digits.isdigit() or len(digits) > 19 or encode_cursor(int(digits)) != value:
        raise not_issued
    last_id = int(digits)
    if not 0 < last_id <= BIGINT_MAX:
        raise not_issued
    return last_id


# Bounds before the validator, so they reach the OpenAPI schema as minimum/maximum.
Limit = Annotated[int, Field(ge=1, le=100), BeforeValidator(_integer_text)]
ItemId = Annotated[int, Field(gt=0, le=BIGINT_MAX), BeforeValidator(_integer_text)]
Cursor = Annotated[
    int | None,
    BeforeValidator(decode_cursor),
    # what clients see: a string to pass back, not the id inside it
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "pattern": CURSOR_PATTERN,
            "description": "The `next` of an earlier page (opaque).",
        }
    ),
]

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
async def create_item(payload: ItemCreate, runtime: RuntimeDep, response: Response) -> ItemOut:
    def create(conn: Connection) -> ItemOut:
        values = {"name": payload.name, "description": payload.description}
        row = conn.execute(_INSERT, values).one()  # committed on its own (Runtime.db)
        return ItemOut.model_validate(row)

    item = await runtime.db(create)
    response.headers["Location"] = f"/items/{item.id}"
    return item


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
async def list_items(
    runtime: RuntimeDep,
    limit: Annotated[Limit, Query()] = 20,
    cursor: Annotated[Cursor, Query()] = None,
) -> ItemPage:
    # One row more than the page tells whether another page follows.
    if cursor is None:
        query, params = _FIRST_PAGE, {"rows": limit + 1}
    else:
        query, params = _NEXT_PAGE, {"rows": limit + 1, "after": cursor}

    def fetch(conn: Connection) -> list[ItemOut]:
        return [ItemOut.model_validate(row) for row in conn.execute(query, params)]

    rows = await runtime.db(fetch)
    page = rows[:limit]
    more = len(rows) > limit
    return ItemPage(items=page, limit=limit, next=encode_cursor(page[-1].id) if more else None)


@router.get(
    "/{id}",
    operation_id="getItem",
    summary="Get an item by id",
    responses=errors(404, 422, 503),
)
async def get_item(item_id: Annotated[ItemId, Path(alias="id")], runtime: RuntimeDep) -> ItemOut:
    def fetch(conn: Connection) -> ItemOut | None:
        row = conn.execute(_GET, {"id": item_id}).one_or_none()
        return None if row is None else ItemOut.model_validate(row)

    item = await runtime.db(fetch)
    if item is None:
        raise ApiError(404, "not_found", f"item {item_id} does not exist")
    return item
