"""GET /metrics: Prometheus text with per-route counters and latency histograms."""

from __future__ import annotations

import time
import uuid

from tests.conformance.observe import (
    COUNTER,
    HISTOGRAM,
    Families,
    requests,
    scrape,
    settled,
    stable,
    value,
)
from tests.conformance.service import RunningService

# Every route label the service may emit: templates only, never raw paths.
ROUTES = {"/healthz", "/readyz", "/metrics", "/items", "/items/{id}", "unmatched"}


def test_counter_counts_a_request_by_route_template(service: RunningService) -> None:
    labels = {"method": "GET", "route": "/items/{id}", "status": "200"}
    with service.client() as client:
        item_id = client.post("/items", json={"name": "metered"}).json()["id"]
        before = stable(client, lambda f: requests(f, **labels))

        assert client.get(f"/items/{item_id}").status_code == 200
        settled(client, lambda f: requests(f, **labels) >= before + 1)
        time.sleep(0.3)  # a double count would show by now
        after = scrape(client)
    assert COUNTER in after, "no counter family http_requests_total"
    assert requests(after, **labels) == before + 1


def test_latency_histogram_has_buckets_sum_and_count(service: RunningService) -> None:
    labels = {"method": "GET", "route": "/items"}

    def count(families: Families) -> float:
        return value(families, HISTOGRAM, "http_request_duration_seconds_count", **labels)

    with service.client() as client:
        assert client.get("/items").status_code == 200
        families = settled(client, lambda f: count(f) >= 1)
    assert HISTOGRAM in families, "no histogram family http_request_duration_seconds"
    buckets = [
        s
        for s in families[HISTOGRAM]
        if s.name.endswith("_bucket") and s.labels.get("route") == "/items"
    ]
    assert any(s.labels.get("le") == "+Inf" for s in buckets), buckets
    assert count(families) >= 1
    assert value(families, HISTOGRAM, "http_request_duration_seconds_sum", **labels) > 0


def test_unmatched_paths_collapse_into_one_route(service: RunningService) -> None:
    token = uuid.uuid4().hex
    with service.client() as client:
        for n in range(3):
            assert client.get(f"/{token}/{n}").status_code == 404
        assert client.get("/items/424242").status_code == 404
        families = settled(
            client,
            lambda f: (
                requests(f, route="unmatched", status="404") >= 3
                and requests(f, route="/items/{id}", status="404") >= 1
            ),
        )
    assert token not in repr(families), "a raw path became a label value"
    assert requests(families, route="unmatched", status="404") >= 3
    # the missing item is a matched route: its template, not /items/424242
    assert requests(families, method="GET", route="/items/{id}", status="404") >= 1
    emitted = {s.labels["route"] for f in families.values() for s in f if "route" in s.labels}
    assert emitted <= ROUTES, f"unexpected route labels: {sorted(emitted - ROUTES)}"


def test_non_standard_methods_collapse_into_other(service: RunningService) -> None:
    # a method is any token a client sends: labelled as-is, a scanner could
    # create one series per request
    token = f"X{uuid.uuid4().hex[:12].upper()}"
    labels = {"method": "other", "route": "/items", "status": "405"}
    with service.client() as client:
        before = stable(client, lambda f: requests(f, **labels))
        # a registered method outside the standard seven (RFC 4918)
        assert client.request("PROPFIND", "/items").status_code == 405
        # an arbitrary token: 405, or a 400 from an HTTP parser that knows
        # only registered methods (the contract's parse-error exception)
        assert client.request(token, "/items").status_code in {400, 405}
        families = settled(client, lambda f: requests(f, **labels) >= before + 1)
    assert token not in repr(families), "a raw method became a label value"
    assert "PROPFIND" not in repr(families), "a raw method became a label value"
    assert requests(families, **labels) >= before + 1
