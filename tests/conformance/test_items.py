"""POST /items and GET /items/{id}: shapes, trimming, validation, media types."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.checks import assert_error, assert_item, json_body
from tests.conformance.service import RunningService

# Every (tool, stack) pair runs this module:
# column types, lengths and constraints come from the migrations.
EVERY_PAIR = True


def test_create_returns_201_location_and_the_trimmed_item(service: RunningService) -> None:
    with service.client() as client:
        resp = client.post("/items", json={"name": "  Widget  ", "description": "A thing."})
        assert resp.status_code == 201, resp.text
        item = assert_item(json_body(resp), name="Widget", description="A thing.")
        assert resp.headers.get("location") == f"/items/{item['id']}"

        fetched = client.get(resp.headers["location"])
    assert fetched.status_code == 200, fetched.text
    assert json_body(fetched) == item


@pytest.mark.parametrize(
    "payload",
    [{"name": "no description"}, {"name": "null description", "description": None}],
    ids=["omitted", "null"],
)
def test_description_is_optional_and_nullable(
    service: RunningService, payload: dict[str, Any]
) -> None:
    with service.client() as client:
        resp = client.post("/items", json=payload)
    assert resp.status_code == 201, resp.text
    assert_item(json_body(resp), name=payload["name"], description=None)


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("x" * 200, "x" * 200),
        ("  " + "y" * 200 + "\t\n", "y" * 200),  # the limit applies after trimming
        ("Zoë ☃ 名前 🚀", "Zoë ☃ 名前 🚀"),
        ('quote " backslash \\ {{ 7*7 }}', 'quote " backslash \\ {{ 7*7 }}'),
    ],
    ids=["200-chars", "200-after-trim", "unicode", "punctuation"],
)
def test_names_at_the_limits_round_trip(service: RunningService, name: str, stored: str) -> None:
    with service.client() as client:
        resp = client.post("/items", json={"name": name, "description": "d" * 2000})
        assert resp.status_code == 201, resp.text
        item = assert_item(json_body(resp), name=stored, description="d" * 2000)
        assert json_body(client.get(f"/items/{item['id']}")) == item


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "name"),
        ({"description": "no name"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   \t"}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": None}, "name"),
        ({"name": 123}, "name"),
        ({"name": ["a"]}, "name"),
        ({"name": "ok", "description": "d" * 2001}, "description"),
        ({"name": "ok", "description": 5}, "description"),
        ({"name": "ok", "description": {"nested": True}}, "description"),
        ({"name": "ok", "colour": "red"}, "colour"),
        ({"name": "ok", "id": 7}, "id"),
    ],
    ids=[
        "empty-object",
        "missing-name",
        "empty-name",
        "blank-name",
        "name-201",
        "null-name",
        "int-name",
        "list-name",
        "description-2001",
        "int-description",
        "object-description",
        "unknown-field",
        "client-id",
    ],
)
def test_invalid_fields_are_422_naming_the_field(
    service: RunningService, payload: dict[str, Any], field: str
) -> None:
    with service.client() as client:
        resp = client.post("/items", json=payload)
    assert_error(resp, 422, "validation_error", fields={field})


@pytest.mark.parametrize("raw", ["[]", '["name"]', '"Widget"', "42", "null", "true"])
def test_json_that_is_not_an_object_is_422(service: RunningService, raw: str) -> None:
    with service.client() as client:
        resp = client.post("/items", content=raw, headers={"content-type": "application/json"})
    assert_error(resp, 422, "validation_error")


@pytest.mark.parametrize(
    "raw", ['{"name": ', "{'name': 'x'}", "", "name=x", '{"name": "x"} trailing', "\xff"]
)
def test_malformed_json_is_400(service: RunningService, raw: str) -> None:
    with service.client() as client:
        resp = client.post(
            "/items", content=raw.encode("latin-1"), headers={"content-type": "application/json"}
        )
    assert_error(resp, 400, "invalid_json")


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_post_without_json_content_type_is_415(
    service: RunningService, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    with service.client() as client:
        resp = client.post("/items", content=b'{"name": "x"}', headers=headers)
    assert_error(resp, 415, "unsupported_media_type")


def test_json_content_type_with_charset_is_accepted(service: RunningService) -> None:
    with service.client() as client:
        resp = client.post(
            "/items",
            content=b'{"name": "charset"}',
            headers={"content-type": "application/json; charset=utf-8"},
        )
    assert resp.status_code == 201, resp.text


def test_missing_item_is_404_naming_the_id(service: RunningService) -> None:
    with service.client() as client:
        resp = client.get("/items/987654321")
    body = assert_error(resp, 404, "not_found")
    assert "987654321" in body["detail"]


@pytest.mark.parametrize("raw_id", ["abc", "0", "-1", "1.5", "1e3", "%20", "0x10"])
def test_non_positive_integer_id_is_422(service: RunningService, raw_id: str) -> None:
    with service.client() as client:
        resp = client.get(f"/items/{raw_id}")
    assert_error(resp, 422, "validation_error")


def test_id_beyond_bigint_is_a_client_error(service: RunningService) -> None:
    # a positive integer no row can have: 404 or 422 are both honest, a 500 is not
    with service.client() as client:
        resp = client.get("/items/99999999999999999999999")
    assert resp.status_code in {404, 422}, resp.text
    assert_error(
        resp, resp.status_code, "not_found" if resp.status_code == 404 else "validation_error"
    )


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_over_64_kib_is_413(service: RunningService, chunked: bool) -> None:
    # a valid item padded with whitespace: only its size is wrong, and a
    # service that reads any size into memory can be made to run out of it
    raw = b'{"name": "padded"' + b" " * (64 * 1024) + b"}"
    # a generator body goes out chunked: no length to judge it by up front
    content = iter([raw[:4096], raw[4096:]]) if chunked else raw
    with service.client() as client:
        resp = client.post("/items", content=content, headers={"content-type": "application/json"})
    assert ("transfer-encoding" in resp.request.headers) is chunked
    assert_error(resp, 413, "payload_too_large")


@pytest.mark.parametrize(
    "raw",
    ['{"name": NaN}', '{"name": "x", "description": Infinity}', '{"name": -Infinity}', "NaN"],
    ids=["nan", "infinity", "minus-infinity", "bare-nan"],
)
def test_nan_and_infinity_are_not_json(service: RunningService, raw: str) -> None:
    # RFC 8259 has no such literals; many parsers accept them by default
    with service.client() as client:
        resp = client.post("/items", content=raw, headers={"content-type": "application/json"})
    assert_error(resp, 400, "invalid_json")


@pytest.mark.parametrize("field", ["name", "description"])
def test_a_huge_integer_is_valid_json_of_the_wrong_type(
    service: RunningService, field: str
) -> None:
    # valid JSON (no size limit in RFC 8259) where a string belongs: a 422,
    # not a parser's refusal passed off as invalid JSON
    digits = "7" * 5000
    fields = {"name": digits} if field == "name" else {"name": '"ok"', "description": digits}
    raw = "{" + ", ".join(f'"{key}": {value}' for key, value in fields.items()) + "}"
    with service.client() as client:
        resp = client.post("/items", content=raw, headers={"content-type": "application/json"})
    assert_error(resp, 422, "validation_error", fields={field})
