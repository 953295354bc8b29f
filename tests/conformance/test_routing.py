"""Unknown paths and wrong methods answer with the contract's JSON errors."""

from __future__ import annotations

import pytest

from tests.conformance.checks import assert_error, json_body
from tests.conformance.service import RunningService


@pytest.mark.parametrize("path", ["/nope", "/items/1/extra", "/healthz/deeper", "/ITEMS", "/"])
def test_unknown_path_is_404_json(service: RunningService, path: str) -> None:
    with service.client() as client:
        resp = client.get(path)
    assert_error(resp, 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/items"),
        ("PUT", "/items"),
        ("PATCH", "/items/1"),
        ("DELETE", "/items/1"),
        ("POST", "/items/1"),
        ("POST", "/healthz"),
        ("PUT", "/readyz"),
        ("POST", "/metrics"),
    ],
)
def test_wrong_method_is_405_json(service: RunningService, method: str, path: str) -> None:
    with service.client() as client:
        resp = client.request(method, path)
    assert_error(resp, 405, "method_not_allowed")


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/items", "/items/1", "/nope"])
def test_json_endpoints_declare_json(service: RunningService, path: str) -> None:
    with service.client() as client:
        resp = client.get(path)
    json_body(resp)  # asserts the Content-Type, then parses
