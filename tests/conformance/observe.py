"""What a test can observe besides responses: /metrics samples and the service's logs."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.conformance.service import RunningService

Families = dict[str, list[Sample]]  # "name:type" -> samples

SETTLE_DEADLINE = 5.0  # against hanging only
COUNTER = "http_requests:counter"
HISTOGRAM = "http_request_duration_seconds:histogram"
# Stack traces as the stacks' runtimes print them (Python, Go, Node).
TRACEBACK = re.compile(
    r"Traceback \(most recent call last\)|^goroutine \d+ \[|^\s+at .+:\d+:\d+\)?$", re.M
)
ERROR_LEVELS = frozenset({"error", "critical", "fatal", "panic"})


def scrape(client: httpx.Client) -> Families:
    resp = client.get("/metrics")
    assert resp.status_code == 200, resp.text
    ctype = resp.headers.get("content-type", "")
    assert ctype.startswith("text/plain"), ctype
    families: Families = {}
    for family in text_string_to_metric_families(resp.text):
        families.setdefault(f"{family.name}:{family.type}", []).extend(family.samples)
    return families


def value(families: Families, family: str, name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in families.get(family, [])
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def requests(families: Families, **labels: str) -> float:
    return value(families, COUNTER, "http_requests_total", **labels)


def server_errors(families: Families) -> float:
    """Every request counted with a 5xx status, whatever its route."""
    return sum(
        s.value
        for s in families.get(COUNTER, [])
        if s.name == "http_requests_total" and s.labels.get("status", "").startswith("5")
    )


def settled(client: httpx.Client, ready: Callable[[Families], bool]) -> Families:
    """Scrape until `ready`: a server may record a request just after answering it."""
    deadline = time.monotonic() + SETTLE_DEADLINE
    families = scrape(client)
    while not ready(families) and time.monotonic() < deadline:
        time.sleep(0.1)
        families = scrape(client)
    return families


def stable(client: httpx.Client, read: Callable[[Families], float]) -> float:
    """A value that stopped changing: earlier requests are all recorded."""
    deadline = time.monotonic() + SETTLE_DEADLINE
    current = read(scrape(client))
    while time.monotonic() < deadline:
        time.sleep(0.3)
        current, previous = read(scrape(client)), current
        if current == previous:
            break
    return current


def log_records(service: RunningService) -> list[dict[str, Any]]:
    """The JSON log lines on stdout (other lines are skipped: test_health checks them)."""
    records = []
    for line in service.stdout_path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def assert_no_error_logs(service: RunningService) -> None:
    """No error-level line and no stack trace on stdout or stderr."""
    errors = [r for r in log_records(service) if str(r.get("level", "")).lower() in ERROR_LEVELS]
    assert not errors, f"error-level log lines: {errors[:3]}\n{service.logs()}"
    for stream in (service.stdout_path, service.stderr_path):
        text = stream.read_text(errors="replace")
        assert not TRACEBACK.search(text), f"a stack trace in {stream.name}:\n{service.logs()}"
