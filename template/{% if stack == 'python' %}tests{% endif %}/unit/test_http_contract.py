"""Every endpoint's answers that need no database, bad input above all.

The database here is down, so a request that passes validation ends in a 503:
that proves both the validation and the outage mapping.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

JSON = {"Content-Type": "application/json"}


def assert_error(response: Any, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["error"] == error
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


def test_liveness_needs_no_database(offline_client: TestClient) -> None:
    response = offline_client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readiness_reports_the_database_down(offline_client: TestClient) -> None:
    response = offline_client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "reason": "database unreachable"}


def test_readiness_fails_once_shutdown_starts(offline_client: TestClient) -> None:
    offline_client.app.state.runtime.lifecycle.shutting_down = True  # type: ignore[attr-defined]
    response = offline_client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "shutting down", "reason": "SIGTERM received"}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form-urlencoded"}],
)
def test_post_without_json_content_type_is_415(
    offline_client: TestClient, headers: dict[str, str]
) -> None:
    response = offline_client.post("/items", content=b'{"name": "x"}', headers=headers)
    assert_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize("body", [b"", b"{", b'{"name": "x",}', b"\xff\xfe\x00", b"[" * 60_000])
def test_body_that_is_not_json_is_400(offline_client: TestClient, body: bytes) -> None:
    response = offline_client.post("/items", content=body, headers=JSON)
    assert_error(response, 400, "invalid_json")


def test_bodies_over_64_kib_are_413_with_or_without_a_length(offline_client: TestClient) -> None:
    cap = 64 * 1024
    at_cap = b'{"name": "x"' + b" " * (cap - 13) + b"}"  # valid JSON, valid item
    assert len(at_cap) == cap
    over = at_cap + b" "
    declared = offline_client.post("/items", content=over, headers=JSON)
    assert_error(declared, 413, "payload_too_large")
    # a generator body is sent chunked: no Content-Length to judge by
    chunked = offline_client.post("/items", content=iter([over[:1000], over[1000:]]), headers=JSON)
    assert chunked.request.headers.get("transfer-encoding") == "chunked"
    assert_error(chunked, 413, "payload_too_large")
    # at the cap the item is valid: it gets as far as the (offline) database
    assert_error(offline_client.post("/items", content=at_cap, headers=JSON), 503, "unavailable")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([], "body"),
        ("name", "body"),
        (1, "body"),
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": 42}, "name"),
        ({"name": None}, "name"),
        ({"name": "a\u0000b"}, "name"),
        ({"name": "x", "description": "d" * 2001}, "description"),
        ({"name": "x", "description": 7}, "description"),
        ({"name": "x", "colour": "red"}, "colour"),
    ],
)
def test_invalid_items_are_422_with_the_field(
    offline_client: TestClient, payload: Any, field: str
) -> None:
    response = offline_client.post("/items", json=payload)
    body = assert_error(response, 422, "validation_error")
    assert field in [f["field"] for f in body["fields"]]
    assert all(f["reason"] for f in body["fields"])


@pytest.mark.parametrize("body", [b"null", b'{"name": "\\ud800"}'])
def test_json_that_cannot_be_an_item_is_422(offline_client: TestClient, body: bytes) -> None:
    response = offline_client.post("/items", content=body, headers=JSON)
    assert_error(response, 422, "validation_error")


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "x"},
        {"name": "  " + "x" * 200 + "\t"},  # 200 characters once trimmed
        {"name": "x", "description": None},
        {"name": "x", "description": "d" * 2000},
    ],
)
def test_valid_items_reach_the_database(offline_client: TestClient, payload: Any) -> None:
    response = offline_client.post(
        "/items", json=payload, headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert_error(response, 503, "unavailable")
    assert response.headers["retry-after"] == "1"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("limit=1.5", "limit"),
        ("limit=1.0", "limit"),
        ("cursor=", "cursor"),
        ("cursor=not%20issued", "cursor"),
        ("cursor=" + "x" * 201, "cursor"),
        ("cursor=MA", "cursor"),  # a well-formed encoding of id 0, which no page ends with
    ],
)
def test_bad_pagination_is_422(offline_client: TestClient, query: str, field: str) -> None:
    body = assert_error(offline_client.get(f"/items?{query}"), 422, "validation_error")
    assert [f["field"] for f in body["fields"]] == [field]


@pytest.mark.parametrize("query", ["", "limit=1", "limit=100&cursor=MQ", "offset=5"])
def test_good_pagination_reaches_the_database(offline_client: TestClient, query: str) -> None:
    assert_error(offline_client.get(f"/items?{query}"), 503, "unavailable")


@pytest.mark.parametrize("item_id", ["abc", "0", "-1", "1.0", str(2**63)])
def test_ids_that_are_not_positive_bigints_are_422(
    offline_client: TestClient, item_id: str
) -> None:
    body = assert_error(offline_client.get(f"/items/{item_id}"), 422, "validation_error")
    assert [f["field"] for f in body["fields"]] == ["id"]


@pytest.mark.parametrize("path", ["/nope", "/items/1/extra", "/items/", "/healthz/"])
def test_unknown_paths_are_404(offline_client: TestClient, path: str) -> None:
    body = assert_error(offline_client.get(path), 404, "not_found")
    assert path in body["detail"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/items", {"GET", "HEAD", "POST"}),
        ("PUT", "/items/1", {"GET", "HEAD"}),
        ("POST", "/healthz", {"GET", "HEAD"}),
        ("PATCH", "/metrics", {"GET", "HEAD"}),
    ],
)
def test_known_paths_with_the_wrong_method_are_405(
    offline_client: TestClient, method: str, path: str, allowed: set[str]
) -> None:
    response = offline_client.request(method, path, json={})
    assert_error(response, 405, "method_not_allowed")
    assert set(response.headers["allow"].replace(" ", "").split(",")) == allowed


def test_openapi_documents_the_parameter_bounds(offline_client: TestClient) -> None:
    paths = offline_client.get("/openapi.json").json()["paths"]
    (item_id,) = paths["/items/{id}"]["get"]["parameters"]
    assert item_id["schema"] == {
        "type": "integer",
        "exclusiveMinimum": 0,
        "maximum": 2**63 - 1,
        "title": "Id",
    }
    limit = paths["/items"]["get"]["parameters"][0]["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 100, 20)
