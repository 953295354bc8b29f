"""The example resource: create, list (paginated), get by id."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError
from sqlalchemy import func, select

from .deps import SessionDep
from .errors import ApiError, JsonBodyRoute
from .models import Item
from .schemas import ItemCreate, ItemOut, ItemPage

# Ids and offsets beyond PostgreSQL's bigint are refused (422), not sent to the database.
BIGINT_MAX = 2**63 - 1
_DIGITS = re.compile(r"[+-]?[0-9]+")


def _integer_text(value: object) -> object:
    # Pydantic would read "1.0" as 1; in a URL that is not an integer.
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise PydanticCustomError("int_parsing", "Input should be a valid integer")
    return value


# Bounds before the validator, so they reach the OpenAPI schema as minimum/maximum.
Limit = Annotated[int, Field(ge=1, le=100), BeforeValidator(_integer_text)]
Offset = Annotated[int, Field(ge=0, le=BIGINT_MAX), BeforeValidator(_integer_text)]
ItemId = Annotated[int, Field(gt=0, le=BIGINT_MAX), BeforeValidator(_integer_text)]

router = APIRouter(prefix="/items", tags=["items"], route_class=JsonBodyRoute)


@router.post("", status_code=201)
def create_item(payload: ItemCreate, session: SessionDep, response: Response) -> ItemOut:
    item = Item(name=payload.name, description=payload.description)
    session.add(item)
    session.commit()
    response.headers["Location"] = f"/items/{item.id}"
    return ItemOut.model_validate(item)


@router.get("")
def list_items(
    session: SessionDep,
    limit: Annotated[Limit, Query()] = 20,
    offset: Annotated[Offset, Query()] = 0,
) -> ItemPage:
    # One snapshot for both queries, so `total` matches the page.
    session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    total = session.scalar(select(func.count()).select_from(Item)) or 0
    rows = session.scalars(select(Item).order_by(Item.id).limit(limit).offset(offset))
    return ItemPage(
        items=[ItemOut.model_validate(row) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{id}")
def get_item(item_id: Annotated[ItemId, Path(alias="id")], session: SessionDep) -> ItemOut:
    item = session.get(Item, item_id)
    if item is None:
        raise ApiError(404, "not_found", f"item {item_id} does not exist")
    return ItemOut.model_validate(item)
