"""Assertions shared by the conformance tests, phrased as the contract states them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.conformance.expectations import ITEM_FIELDS

# RFC 3339 date-time (section 5.6); fromisoformat alone accepts more forms.
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def describe(resp: httpx.Response) -> str:
    target = resp.request.url.raw_path.decode()
    return f"{resp.request.method} {target} -> {resp.status_code} {resp.text[:500]!r}"


def json_body(resp: httpx.Response) -> Any:
    ctype = resp.headers.get("content-type", "")
    assert ctype.split(";")[0].strip() == "application/json", (
        f"Content-Type {ctype!r} is not application/json: {describe(resp)}"
    )
    return resp.json()


def assert_error(
    resp: httpx.Response, status: int, code: str, fields: set[str] | None = None
) -> dict[str, Any]:
    """`{"error": code, "detail": "..."}` (+ `fields` on 422) with the status."""
    assert resp.status_code == status, f"expected {status}: {describe(resp)}"
    body = json_body(resp)
    assert isinstance(body, dict), describe(resp)
    assert body.get("error") == code, f"expected error {code!r}: {describe(resp)}"
    assert isinstance(body.get("detail"), str), f"no string `detail`: {describe(resp)}"
    assert body["detail"].strip(), f"empty `detail`: {describe(resp)}"
    if status == 422:
        listed = body.get("fields")
        assert isinstance(listed, list), f"422 without a `fields` list: {describe(resp)}"
        assert listed, f"422 with an empty `fields` list: {describe(resp)}"
        for entry in listed:
            assert isinstance(entry, dict), describe(resp)
            assert isinstance(entry.get("field"), str), describe(resp)
            assert isinstance(entry.get("reason"), str), describe(resp)
            assert entry["reason"].strip(), describe(resp)
        if fields is not None:
            named = {entry["field"] for entry in listed}
            assert fields <= named, f"fields {sorted(fields)} not all named: {describe(resp)}"
    return body


def assert_rfc3339_utc(value: Any) -> datetime:
    assert isinstance(value, str) and RFC3339.match(value), f"not RFC 3339: {value!r}"
    parsed = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    assert parsed.utcoffset() == timedelta(0), f"not UTC: {value!r}"
    # the test and the database share a clock: a wrong zone shows up as hours
    assert abs(datetime.now(UTC) - parsed) < timedelta(minutes=10), f"not now: {value!r}"
    return parsed


def assert_item(body: Any, name: str | None = None, description: Any = ...) -> dict[str, Any]:
    assert isinstance(body, dict), body
    assert set(body) == ITEM_FIELDS, f"item keys: {sorted(body)}"
    assert type(body["id"]) is int and body["id"] > 0, body
    assert isinstance(body["name"], str), body
    assert body["description"] is None or isinstance(body["description"], str), body
    assert_rfc3339_utc(body["created_at"])
    if name is not None:
        assert body["name"] == name, body
    if description is not ...:
        assert body["description"] == description, body
    return body
