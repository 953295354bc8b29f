"""HEAD wherever GET is served (RFC 9110): same status and headers, no body."""

from __future__ import annotations

import pytest

from tests.conformance.observe import requests, settled, stable
from tests.conformance.rawhttp import connect, get_request, read_body, read_head
from tests.conformance.service import RunningService

# Headers that may differ between two answers to the same request.
VOLATILE = {"date", "content-length", "connection", "keep-alive"}
# Bodies that do not change between the two requests, so their lengths must match.
STABLE_BODIES = {"/healthz", "/items/{id}", "/items/987654321", "/items?limit=0", "/nope"}


@pytest.fixture(scope="module")
def item_path(service: RunningService) -> str:
    with service.client() as client:
        resp = client.post("/items", json={"name": "headed"})
    assert resp.status_code == 201, resp.text
    return f"/items/{resp.json()['id']}"


@pytest.mark.parametrize(
    "path",
    [
        "/healthz",
        "/readyz",
        "/metrics",
        "/items",
        "/items/{id}",
        "/items/987654321",  # 404
        "/items?limit=0",  # 422
        "/nope",  # unknown path: 404 for GET, so for HEAD too
    ],
)
def test_head_answers_like_get_without_a_body(
    service: RunningService, item_path: str, path: str
) -> None:
    target = path.replace("/items/{id}", item_path)
    with connect(service) as sock:
        sock.sendall(get_request(target))
        got = read_head(sock)
        get_body, rest = read_body(sock, got)
        assert not rest
        # HEAD, then a GET on the same connection: if HEAD sent a body, its
        # bytes come before the second response's status line
        sock.sendall(get_request(target, "HEAD") + get_request("/healthz"))
        head = read_head(sock)
        after = head.rest
        while b"\r\n\r\n" not in after and (chunk := sock.recv(65536)):
            after += chunk
    assert head.status == got.status, f"HEAD {target} -> {head.status}, GET -> {got.status}"
    assert after.startswith(b"HTTP/1.1 200 "), f"HEAD {target} sent a body: {after[:200]!r}"
    same = {k: v for k, v in got.headers.items() if k not in VOLATILE}
    assert {k: v for k, v in head.headers.items() if k in same} == same, (
        f"HEAD {target} headers {head.headers} differ from GET's {got.headers}"
    )
    if path in STABLE_BODIES and "content-length" in head.headers:
        assert int(head.headers["content-length"]) == len(get_body), head.headers


def test_head_is_counted_as_head(service: RunningService) -> None:
    labels = {"method": "HEAD", "route": "/healthz", "status": "200"}
    with service.client() as client:
        before = stable(client, lambda f: requests(f, **labels))
        assert client.head("/healthz").status_code == 200
        families = settled(client, lambda f: requests(f, **labels) >= before + 1)
    assert requests(families, **labels) == before + 1
