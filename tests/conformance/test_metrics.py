"""GET /metrics: Prometheus text with per-route counters and latency histograms."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.conformance.service import RunningService

Families = dict[str, list[Sample]]  # "name:type" -> samples

SETTLE_DEADLINE = 5.0  # against hanging only
COUNTER = "http_requests:counter"
HISTOGRAM = "http_request_duration_seconds:histogram"
# Every route label the service may emit: templates only, never raw paths.
ROUTES = {"/healthz", "/readyz", "/metrics", "/items", "/items/{id}", "unmatched"}


def _scrape(client: httpx.Client) -> Families:
    resp = client.get("/metrics")
    assert resp.status_code == 200, resp.text
    ctype = resp.headers.get("content-type", "")
    assert ctype.startswith("text/plain"), ctype
    families: Families = {}
    for family in text_string_to_metric_families(resp.text):
        families.setdefault(f"{family.name}:{family.type}", []).extend(family.samples)
    return families


def _value(families: Families, family: str, name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in families.get(family, [])
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def _requests(families: Families, **labels: str) -> float:
    return _value(families, COUNTER, "http_requests_total", **labels)


def _settled(client: httpx.Client, ready: Callable[[Families], bool]) -> Families:
    """Scrape until `ready`: a server may record a request just after answering it."""
    deadline = time.monotonic() + SETTLE_DEADLINE
    families = _scrape(client)
    while not ready(families) and time.monotonic() < deadline:
        time.sleep(0.1)
        families = _scrape(client)
    return families


def _stable(client: httpx.Client, read: Callable[[Families], float]) -> float:
    """A value that stopped changing: earlier requests are all recorded."""
    deadline = time.monotonic() + SETTLE_DEADLINE
    value = read(_scrape(client))
    while time.monotonic() < deadline:
        time.sleep(0.3)
        value, previous = read(_scrape(client)), value
        if value == previous:
            break
    return value


def test_counter_counts_a_request_by_route_template(service: RunningService) -> None:
    labels = {"method": "GET", "route": "/items/{id}", "status": "200"}
    with service.client() as client:
        item_id = client.post("/items", json={"name": "metered"}).json()["id"]
        before = _stable(client, lambda f: _requests(f, **labels))

        assert client.get(f"/items/{item_id}").status_code == 200
        _settled(client, lambda f: _requests(f, **labels) >= before + 1)
        time.sleep(0.3)  # a double count would show by now
        after = _scrape(client)
    assert COUNTER in after, "no counter family http_requests_total"
    assert _requests(after, **labels) == before + 1


def test_latency_histogram_has_buckets_sum_and_count(service: RunningService) -> None:
    labels = {"method": "GET", "route": "/items"}

    def count(families: Families) -> float:
        return _value(families, HISTOGRAM, "http_request_duration_seconds_count", **labels)

    with service.client() as client:
        assert client.get("/items").status_code == 200
        families = _settled(client, lambda f: count(f) >= 1)
    assert HISTOGRAM in families, "no histogram family http_request_duration_seconds"
    buckets = [
        s
        for s in families[HISTOGRAM]
        if s.name.endswith("_bucket") and s.labels.get("route") == "/items"
    ]
    assert any(s.labels.get("le") == "+Inf" for s in buckets), buckets
    assert count(families) >= 1
    assert _value(families, HISTOGRAM, "http_request_duration_seconds_sum", **labels) > 0


def test_unmatched_paths_collapse_into_one_route(service: RunningService) -> None:
    token = uuid.uuid4().hex
    with service.client() as client:
        for n in range(3):
            assert client.get(f"/{token}/{n}").status_code == 404
        assert client.get("/items/424242").status_code == 404
        families = _settled(
            client,
            lambda f: (
                _requests(f, route="unmatched", status="404") >= 3
                and _requests(f, route="/items/{id}", status="404") >= 1
            ),
        )
    assert token not in repr(families), "a raw path became a label value"
    assert _requests(families, route="unmatched", status="404") >= 3
    # the missing item is a matched route: its template, not /items/424242
    assert _requests(families, method="GET", route="/items/{id}", status="404") >= 1
    emitted = {s.labels["route"] for f in families.values() for s in f if "route" in s.labels}
    assert emitted <= ROUTES, f"unexpected route labels: {sorted(emitted - ROUTES)}"


def test_non_standard_methods_collapse_into_other(service: RunningService) -> None:
    # a method is any token a client sends: labelled as-is, a scanner could
    # create one series per request
    token = f"X{uuid.uuid4().hex[:12].upper()}"
    with service.client() as client:
        assert client.request(token, "/items").status_code == 405
        families = _settled(
            client, lambda f: _requests(f, method="other", route="/items", status="405") >= 1
        )
    assert token not in repr(families), "a raw method became a label value"
    assert _requests(families, method="other", route="/items", status="405") >= 1
