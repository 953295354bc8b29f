"""GET /items: shape, ordering, total and limit/offset bounds, on a known data set."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conformance.checks import assert_error, assert_item, json_body
from tests.conformance.conftest import StartFn
from tests.conformance.service import RunningService

SEEDED = 25


@pytest.fixture(scope="module")
def seeded(start_service: StartFn) -> Iterator[tuple[RunningService, list[dict[str, Any]]]]:
    """Its own instance and database: totals are exact, not relative."""
    with start_service() as service, service.client() as client:
        items = []
        for n in range(SEEDED):
            resp = client.post("/items", json={"name": f"item {n:02d}"})
            assert resp.status_code == 201, resp.text
            items.append(resp.json())
        yield service, items


def _page(seeded: tuple[RunningService, list[dict[str, Any]]], query: str) -> dict[str, Any]:
    service, _ = seeded
    with service.client() as client:
        resp = client.get(f"/items{query}")
    assert resp.status_code == 200, resp.text
    body = json_body(resp)
    assert set(body) == {"items", "total", "limit", "offset"}, body
    for item in body["items"]:
        assert_item(item)
    return dict(body)


def test_defaults_are_limit_20_offset_0_ordered_by_id(seeded: Any) -> None:
    _, items = seeded
    body = _page(seeded, "")
    assert (body["total"], body["limit"], body["offset"]) == (SEEDED, 20, 0)
    assert body["items"] == items[:20]
    ids = [item["id"] for item in body["items"]]
    assert ids == sorted(ids)


@pytest.mark.parametrize(
    ("query", "start", "stop"),
    [
        ("?limit=10&offset=20", 20, 25),
        ("?limit=1", 0, 1),
        ("?limit=100", 0, 25),
        ("?offset=24", 24, 25),
        ("?offset=25", 25, 25),
        ("?offset=1000", 25, 25),
        ("?limit=5&offset=5", 5, 10),
    ],
)
def test_limit_and_offset_select_the_window(seeded: Any, query: str, start: int, stop: int) -> None:
    _, items = seeded
    body = _page(seeded, query)
    assert body["total"] == SEEDED
    assert body["items"] == items[start:stop]
    params = dict(p.split("=") for p in query.lstrip("?").split("&"))
    assert body["limit"] == int(params.get("limit", 20))
    assert body["offset"] == int(params.get("offset", 0))


def test_pages_cover_every_item_once(seeded: Any) -> None:
    _, items = seeded
    seen: list[dict[str, Any]] = []
    for offset in range(0, SEEDED, 7):
        seen += _page(seeded, f"?limit=7&offset={offset}")["items"]
    assert seen == items


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?limit=-1", "limit"),
        ("?limit=abc", "limit"),
        ("?limit=1.5", "limit"),
        ("?limit=", "limit"),
        ("?offset=-1", "offset"),
        ("?offset=x", "offset"),
    ],
)
def test_out_of_range_or_non_integer_parameters_are_422(
    seeded: Any, query: str, field: str
) -> None:
    service, _ = seeded
    with service.client() as client:
        resp = client.get(f"/items{query}")
    assert_error(resp, 422, "validation_error", fields={field})


def test_offset_beyond_bigint_is_not_a_server_error(seeded: Any) -> None:
    # ">= 0" has no upper bound in the contract: an empty page or a 422 are both honest
    service, _ = seeded
    with service.client() as client:
        resp = client.get("/items?offset=99999999999999999999999")
    if resp.status_code == 422:
        assert_error(resp, 422, "validation_error", fields={"offset"})
    else:
        assert resp.status_code == 200, resp.text
        assert json_body(resp)["items"] == []
