"""Liveness, readiness (including a database outage and its recovery) and logs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest

from tests.conformance.checks import assert_error, json_body
from tests.conformance.conftest import StartFn
from tests.conformance.service import RunningService

OUTAGE_DEADLINE = 30.0  # against hanging only; the contract's own bound is 2 s per check


def test_healthz_is_ok(service: RunningService) -> None:
    with service.client() as client:
        resp = client.get("/healthz")
    assert resp.status_code == 200
    assert json_body(resp) == {"status": "ok"}


def test_readyz_is_ready_with_a_database(service: RunningService) -> None:
    with service.client() as client:
        resp = client.get("/readyz")
    assert resp.status_code == 200, resp.text
    assert json_body(resp) == {"status": "ready"}


def _poll(
    client: httpx.Client, path: str, until: Callable[[httpx.Response], bool]
) -> httpx.Response:
    deadline = time.monotonic() + OUTAGE_DEADLINE
    while True:
        resp = client.get(path)
        if until(resp) or time.monotonic() > deadline:
            return resp
        time.sleep(0.2)


def test_readiness_follows_the_database_without_a_restart(start_service: StartFn) -> None:
    with start_service() as service, service.client() as client:
        created = client.post("/items", json={"name": "before the outage"})
        assert created.status_code == 201, created.text

        service.proxy.cut()
        down = _poll(client, "/readyz", lambda r: r.status_code != 200)
        assert down.status_code == 503, down.text
        body = json_body(down)
        assert body.get("status") == "unavailable", body
        assert isinstance(body.get("reason"), str) and body["reason"].strip(), body
        # liveness does not depend on the database: no restart loop during an outage
        assert client.get("/healthz").status_code == 200
        assert_error(client.get("/items"), 503, "unavailable")
        assert_error(client.post("/items", json={"name": "during"}), 503, "unavailable")

        service.proxy.restore()
        up = _poll(client, "/readyz", lambda r: r.status_code == 200)
        assert up.status_code == 200, up.text
        assert json_body(up) == {"status": "ready"}
        listed = _poll(client, "/items", lambda r: r.status_code == 200)
        assert listed.status_code == 200, listed.text
        assert [item["name"] for item in listed.json()["items"]] == ["before the outage"]
        assert service.process.poll() is None, "the service restarted or exited"


def test_logs_are_json_lines_with_access_fields(start_service: StartFn) -> None:
    with start_service() as service:
        with service.client() as client:
            assert client.get("/healthz").status_code == 200
            assert client.get("/no-such-path").status_code == 404
        assert service.stop() == 0
        lines = [ln for ln in service.stdout_path.read_text().splitlines() if ln.strip()]
    assert lines, "no log lines on stdout"
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"stdout line is not JSON: {line!r}")
        assert isinstance(record, dict), line
        assert {"ts", "level", "msg"} <= set(record), f"missing ts/level/msg: {line}"
        records.append(record)
    access = [r for r in records if r.get("path") == "/no-such-path"]
    assert access, "no access log line for GET /no-such-path"
    assert access[0].get("method") == "GET"
    assert str(access[0].get("status")) == "404"
    assert isinstance(access[0].get("duration_ms"), int | float)
