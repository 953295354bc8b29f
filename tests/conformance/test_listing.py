"""GET /items: keyset pagination ({items, limit, next}) on a known data set."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conformance.checks import assert_error, assert_item, json_body
from tests.conformance.conftest import StartFn
from tests.conformance.database import flush_service_counts, rows_read, seed_items
from tests.conformance.expectations import CURSOR, PAGE_FIELDS
from tests.conformance.service import RunningService

# Every (tool, stack) pair runs this module:
# the keyset order and its index come from the migrations.
EVERY_PAIR = True

SEEDED = 25
Seeded = tuple[RunningService, list[dict[str, Any]]]


@pytest.fixture(scope="module")
def seeded(start_service: StartFn) -> Iterator[Seeded]:
    """Its own instance and database: the item list is exact, not relative."""
    with start_service() as service, service.client() as client:
        items = []
        for n in range(SEEDED):
            resp = client.post("/items", json={"name": f"item {n:02d}"})
            assert resp.status_code == 201, resp.text
            items.append(resp.json())
        yield service, items


def _page(client: httpx.Client, **params: Any) -> dict[str, Any]:
    resp = client.get("/items", params=params)
    assert resp.status_code == 200, resp.text
    body = json_body(resp)
    assert set(body) == PAGE_FIELDS, f"page keys: {sorted(body)}"
    for item in body["items"]:
        assert_item(item)
    assert body["next"] is None or (isinstance(body["next"], str) and CURSOR.match(body["next"])), (
        f"`next` is not null or a URL-safe string of at most 200 characters: {body['next']!r}"
    )
    return dict(body)


def _walk(
    client: httpx.Client, limit: int, cursor: str | None = None
) -> list[list[dict[str, Any]]]:
    """Every page from `cursor` (or the start), following `next` until it is null."""
    pages = [_page(client, limit=limit, **({"cursor": cursor} if cursor else {}))]
    while pages[-1]["next"] is not None:
        assert len(pages) < 10_000, "`next` never became null"
        pages.append(_page(client, limit=limit, cursor=pages[-1]["next"]))
    return [page["items"] for page in pages]


def test_defaults_are_limit_20_ordered_by_id_with_a_next_cursor(seeded: Seeded) -> None:
    service, items = seeded
    with service.client() as client:
        body = _page(client)
    assert body["limit"] == 20
    assert body["items"] == items[:20]
    assert body["next"] is not None, "25 items, 20 shown: `next` must point at the rest"


@pytest.mark.parametrize("limit", [1, 3, 7, 20, 24, 100])
def test_following_next_visits_every_item_once_in_id_order(seeded: Seeded, limit: int) -> None:
    service, items = seeded
    with service.client() as client:
        pages = _walk(client, limit)
    assert [len(page) for page in pages[:-1]] == [limit] * (len(pages) - 1), (
        "short page before the end"
    )
    assert [item for page in pages for item in page] == items


@pytest.mark.parametrize("limit", [5, 25])
def test_next_is_null_on_a_full_last_page(seeded: Seeded, limit: int) -> None:
    # "null exactly when no item follows": no trailing empty page when the
    # item count is a multiple of the limit
    service, items = seeded
    with service.client() as client:
        pages = _walk(client, limit)
    assert [len(page) for page in pages] == [limit] * (SEEDED // limit)
    assert [item for page in pages for item in page] == items


def test_a_cursor_works_with_any_limit(seeded: Seeded) -> None:
    service, items = seeded
    with service.client() as client:
        first = _page(client, limit=4)
        rest = _walk(client, 9, cursor=first["next"])
    assert first["items"] + [item for page in rest for item in page] == items


def test_offset_and_total_are_gone(seeded: Seeded) -> None:
    # parameters other than limit and cursor are ignored
    service, items = seeded
    with service.client() as client:
        body = _page(client, limit=5, offset=10)
    assert body["items"] == items[:5]
    assert "total" not in body and "offset" not in body


@pytest.mark.parametrize(
    "value",
    [
        "0",
        "101",
        "-1",
        "abc",
        "1.5",
        "",
        "1e2",
        "9" * 30,
    ],
)
def test_out_of_range_or_non_integer_limit_is_422(seeded: Seeded, value: str) -> None:
    service, _ = seeded
    with service.client() as client:
        resp = client.get("/items", params={"limit": value})
    assert_error(resp, 422, "validation_error", fields={"limit"})


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",  # a space: not URL-safe
        "a+b/c=",  # standard base64 alphabet, not URL-safe
        "x" * 201,  # longer than any issued cursor
        "%ff%fe",
        "{}",
        "😀",
    ],
)
def test_a_cursor_the_service_did_not_issue_is_422(seeded: Seeded, cursor: str) -> None:
    service, _ = seeded
    with service.client() as client:
        resp = client.get("/items", params={"limit": 5, "cursor": cursor})
    assert_error(resp, 422, "validation_error", fields={"cursor"})


def test_items_added_while_paging_are_not_skipped(start_service: StartFn) -> None:
    with start_service() as service, service.client() as client:
        names = [f"early {n}" for n in range(6)]
        for name in names:
            assert client.post("/items", json={"name": name}).status_code == 201
        first = _page(client, limit=4)
        assert client.post("/items", json={"name": "late"}).status_code == 201
        rest = _walk(client, 4, cursor=first["next"])
    seen = [item["name"] for item in first["items"] + [i for page in rest for i in page]]
    assert seen == [*names, "late"]


# Large enough that PostgreSQL's planner walks the index: at 5,000 rows it
# prefers reading the whole table per page, whatever the query.
LARGE = 20_000
PAGE = 100


def test_a_page_reads_rows_in_proportion_to_the_page_not_the_table(start_service: StartFn) -> None:
    """A count(*) or an OFFSET makes every page (or every deep page) read the
    table; keyset reads about `limit + 1` rows. Counted by PostgreSQL itself
    (pg_stat_user_tables / _indexes), not timed."""
    with start_service() as service:
        seed_items(service.database_url, LARGE)
        before = rows_read(service.database_url)
        with service.client() as client:
            pages = _walk(client, PAGE)
        ids = [item["id"] for page in pages for item in page]
        assert len(ids) == LARGE and ids == sorted(set(ids)), "the walk did not see every row once"
        flush_service_counts(service.database_url)
        read = rows_read(service.database_url) - before
    # keyset: ~(PAGE + 1) per page, so ~LARGE in all; count(*) or OFFSET: ~LARGE per page
    assert read <= 3 * LARGE, (
        f"{len(pages)} pages of {PAGE} over {LARGE} rows read {read} rows: "
        f"about {read // len(pages)} per page, not bounded by the page"
    )
