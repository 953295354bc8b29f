"""Every stack's committed openapi.yaml states the contract the conformance suite checks.

The facts come from tests/conformance/expectations.py, which the conformance
tests use against running services: a document that drifts from them fails
here, before any client is generated from it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.conformance import expectations as contract
from tests.conformance.stacks import STACKS
from tests.conftest import RenderFn

READY_STACKS = sorted(STACKS)  # every stack the registry ships


@pytest.fixture(scope="module", params=READY_STACKS)
def document(request: pytest.FixtureRequest, render: RenderFn) -> dict[str, Any]:
    root = render(**STACKS[request.param].answers)
    return dict(yaml.safe_load((root / "openapi.yaml").read_text(encoding="utf-8")))


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        *_, section, name = node["$ref"].split("/")
        node = document["components"][section][name]
    return node


def schema_of(document: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    return resolve(document, response["content"]["application/json"]["schema"])


def operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return dict(document["paths"][path][method])


def parameter(document: dict[str, Any], method: str, path: str, name: str) -> dict[str, Any]:
    params = operation(document, method, path).get("parameters", [])
    return next(p for p in params if p["name"] == name)


def test_is_openapi_3_1_with_a_semantic_version(document: dict[str, Any]) -> None:
    # (tests/test_contract_gates.py validates the whole document with oasdiff)
    assert document["openapi"].startswith("3.1.")
    # contract-diff compares majors: the version must be semantic
    assert re.fullmatch(r"\d+\.\d+\.\d+", document["info"]["version"]), document["info"]


def test_operations_and_statuses_are_the_contracts(document: dict[str, Any]) -> None:
    documented = {
        (method, path): frozenset(int(status) for status in op["responses"])
        for path, ops in document["paths"].items()
        for method, op in ops.items()
    }
    assert documented == contract.STATUSES


def request_schema(document: dict[str, Any]) -> dict[str, Any]:
    request = operation(document, "post", "/items")["requestBody"]
    assert request["required"] is True
    return resolve(document, request["content"]["application/json"]["schema"])


def test_errors_share_one_error_and_one_validation_error_schema(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    error, invalid = schemas["Error"], schemas["ValidationError"]
    assert set(error["properties"]) == set(error["required"]) == contract.ERROR_FIELDS
    assert (
        set(invalid["properties"]) == set(invalid["required"]) == contract.VALIDATION_ERROR_FIELDS
    )
    field = resolve(document, invalid["properties"]["fields"]["items"])
    assert set(field["properties"]) == contract.FIELD_ERROR_FIELDS
    assert error["additionalProperties"] is False and invalid["additionalProperties"] is False
    for (method, path), statuses in contract.STATUSES.items():
        for status in statuses - {200, 201}:
            response = operation(document, method, path)["responses"][str(status)]
            if method == "head":
                assert "content" not in response, f"HEAD {path} {status} has a body"
                continue
            if path == "/readyz":
                continue  # readiness reports {status, reason}, not an error
            expected = "#/components/schemas/" + ("ValidationError" if status == 422 else "Error")
            ref = response["content"]["application/json"]["schema"]["$ref"]
            assert ref == expected, f"{method} {path} {status}: {ref}"
            assert contract.ERROR_CODES[status] in response["description"]
        if 503 in statuses and path != "/readyz":
            headers = operation(document, method, path)["responses"]["503"].get("headers", {})
            assert "Retry-After" in headers, f"{method} {path}: 503 without Retry-After"
    shared = document["components"]["responses"]
    assert schema_of(document, shared["NotFound"]) is error
    assert schema_of(document, shared["MethodNotAllowed"]) is error
    assert "Allow" in shared["MethodNotAllowed"]["headers"]


def test_item_shapes_and_limits(document: dict[str, Any]) -> None:
    created = operation(document, "post", "/items")["responses"]["201"]
    item = schema_of(document, created)
    assert set(item["properties"]) == set(item["required"]) == contract.ITEM_FIELDS
    assert item["additionalProperties"] is False
    assert item["properties"]["created_at"]["format"] == "date-time"
    assert item["properties"]["name"]["maxLength"] == contract.NAME_MAX
    assert "Location" in created["headers"]
    fetched = operation(document, "get", "/items/{id}")["responses"]["200"]
    assert schema_of(document, fetched) is item

    body = request_schema(document)
    assert set(body["properties"]) == contract.ITEM_CREATE_FIELDS
    assert body["required"] == ["name"] and body["additionalProperties"] is False
    description = body["properties"]["description"]["anyOf"]
    assert {"type": "null"} in description
    assert any(s.get("maxLength") == contract.DESCRIPTION_MAX for s in description)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("x", True),
        ("x" * contract.NAME_MAX, True),
        ("  " + "y" * contract.NAME_MAX + "\t\n", True),  # the limit applies after trimming
        ("a b", True),
        ("Zoë ☃ 名前 🚀", True),
        ("", False),
        ("   \t", False),
        ("\u3000\u00a0", False),  # Unicode whitespace is trimmed too
        ("x" * (contract.NAME_MAX + 1), False),
        ("nul\x00inside", False),
    ],
)
def test_the_name_pattern_is_the_trimming_rule(
    document: dict[str, Any], name: str, valid: bool
) -> None:
    pattern = request_schema(document)["properties"]["name"]["pattern"]
    assert bool(re.search(pattern, name)) is valid, (name, pattern)


def test_listing_is_keyset_paginated(document: dict[str, Any]) -> None:
    page = schema_of(document, operation(document, "get", "/items")["responses"]["200"])
    assert set(page["properties"]) == set(page["required"]) == contract.PAGE_FIELDS
    assert page["additionalProperties"] is False
    limit = parameter(document, "get", "/items", "limit")["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (
        contract.LIMIT_MIN,
        contract.LIMIT_MAX,
        contract.LIMIT_DEFAULT,
    )
    cursor = parameter(document, "get", "/items", "cursor")
    assert cursor["required"] is False
    assert cursor["schema"]["maxLength"] == contract.CURSOR_MAX
    # the documented alphabet is the contract's URL-safe one
    for sample in ("abc-DEF_1.2~3", "x" * contract.CURSOR_MAX):
        assert re.search(cursor["schema"]["pattern"], sample)
        assert contract.CURSOR.match(sample)
    for sample in ("a+b", "a/b", "a=b", "a b"):
        assert not re.search(cursor["schema"]["pattern"], sample)
    next_ = page["properties"]["next"]["anyOf"]
    assert {"type": "null"} in next_
    assert any(s.get("maxLength") == contract.CURSOR_MAX for s in next_)
    # no offset, no total (removed in 0.2.0)
    names = {p["name"] for p in operation(document, "get", "/items")["parameters"]}
    assert names == {"limit", "cursor"}


def _drop_503_from_listing(d: dict[str, Any]) -> None:
    del d["paths"]["/items"]["get"]["responses"]["503"]


def _add_total_to_pages(d: dict[str, Any]) -> None:
    page = d["components"]["schemas"]["ItemPage"]
    page["properties"]["total"] = {"type": "integer"}
    page["required"].append("total")


def _count_whitespace_in_names(d: dict[str, Any]) -> None:
    name = request_schema(d)["properties"]["name"]
    name["pattern"] = "^[^\x00]{1,200}$"


def _forget_retry_after(d: dict[str, Any]) -> None:
    del d["paths"]["/items/{id}"]["get"]["responses"]["503"]["headers"]


@pytest.mark.parametrize(
    ("plant", "check", "args"),
    [
        (_drop_503_from_listing, test_operations_and_statuses_are_the_contracts, ()),
        (_add_total_to_pages, test_listing_is_keyset_paginated, ()),
        (_count_whitespace_in_names, test_the_name_pattern_is_the_trimming_rule, ("   ", False)),
        (_forget_retry_after, test_errors_share_one_error_and_one_validation_error_schema, ()),
    ],
    ids=["status", "page-field", "name-rule", "retry-after"],
)
def test_each_check_fails_on_a_planted_drift(
    document: dict[str, Any],
    plant: Callable[[dict[str, Any]], None],
    check: Callable[..., None],
    args: tuple[Any, ...],
) -> None:
    check(document, *args)  # the control
    broken = copy.deepcopy(document)
    plant(broken)
    with pytest.raises(AssertionError):
        check(broken, *args)
