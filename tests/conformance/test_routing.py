"""Unknown paths and wrong methods answer with the contract's JSON errors."""

from __future__ import annotations

import json

import pytest

from tests.conformance.checks import assert_error, json_body
from tests.conformance.rawhttp import connect, read_body, read_head
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


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"NOT A REQUEST LINE\r\n\r\n",
        b"POST /items HTTP/1.1\r\nHost: c\r\nContent-Length: abc\r\n\r\n",
        # over any server's limit (Go's default is 1 MiB, Node's 16 KiB)
        b"GET /healthz HTTP/1.1\r\nHost: c\r\nX-Big: " + b"a" * (2 * 1024 * 1024) + b"\r\n\r\n",
    ],
    ids=["garbage-request-line", "content-length-abc", "2-mib-header"],
)
def test_requests_the_http_server_refuses_are_client_errors(
    service: RunningService, request_bytes: bytes
) -> None:
    # the documented exception: these may be the server's own plain text,
    # but never a 5xx; where the body is JSON it has the contract's shape
    with connect(service) as sock:
        try:
            sock.sendall(request_bytes)
            head = read_head(sock)
        except (ConnectionError, OSError):
            return  # closed without an answer: also a refusal
        body, _ = read_body(sock, head)
    assert 400 <= head.status < 500, f"{head.status}: {body[:300]!r}"
    if head.headers.get("content-type", "").startswith("application/json"):
        assert isinstance(json.loads(body).get("error"), str), body
