"""A client that hangs up is not a server error: 499 in /metrics, info in the logs."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from tests.conformance.conftest import StartFn
from tests.conformance.database import table_locked
from tests.conformance.observe import (
    assert_no_error_logs,
    log_records,
    requests,
    server_errors,
    settled,
    stable,
)
from tests.conformance.rawhttp import connect, get_request, post_head
from tests.conformance.service import RunningService

TIMEOUT_MS = 1000
GRACE = 1
EXIT_DEADLINE = GRACE + 5.0 + 3.0  # grace, drain, slack for a busy box
BODY = b'{"name": "never finished"}'


@pytest.fixture(scope="module")
def service(start_service: StartFn) -> Iterator[RunningService]:
    """Its own instance: the log checks must see only these tests' requests."""
    with start_service({"DB_TIMEOUT_MS": str(TIMEOUT_MS)}) as running:
        yield running


def _access_lines(service: RunningService, method: str, path: str) -> list[dict[str, object]]:
    return [
        r
        for r in log_records(service)
        if r.get("method") == method and r.get("path") == path and "status" in r
    ]


def test_a_half_sent_body_then_a_hang_up_counts_499(service: RunningService) -> None:
    labels = {"method": "POST", "route": "/items", "status": "499"}
    with service.client() as client:
        before = stable(client, lambda f: requests(f, **labels))
        errors_before = server_errors(settled(client, lambda f: True))
        with connect(service) as sock:
            sock.sendall(post_head("/items", len(BODY)) + BODY[:8])
            time.sleep(0.5)  # the server has the head and waits for the body
        families = settled(client, lambda f: requests(f, **labels) >= before + 1)
    assert requests(families, **labels) == before + 1, "the hang-up is not counted as 499"
    assert server_errors(families) == errors_before, "a client hang-up counted as a 5xx"
    assert_no_error_logs(service)
    lines = [r for r in _access_lines(service, "POST", "/items") if str(r["status"]) == "499"]
    assert lines, f"no access log line with status 499\n{service.logs()}"
    assert all(str(r.get("level")).lower() == "info" for r in lines), lines


def test_a_hang_up_while_the_database_is_slow_counts_499(service: RunningService) -> None:
    labels = {"method": "GET", "route": "/items", "status": "499"}
    with service.client() as client:
        before = stable(client, lambda f: requests(f, **labels))
        errors_before = server_errors(settled(client, lambda f: True))
        with table_locked(service.database_url):
            with connect(service) as sock:
                sock.sendall(get_request("/items"))
                time.sleep(0.3)  # the request waits on the lock
            # the service's own bound passes before the lock is released
            time.sleep(TIMEOUT_MS / 1000 + 1.0)
        families = settled(client, lambda f: requests(f, **labels) >= before + 1)
    assert requests(families, **labels) == before + 1, (
        "a client that hung up while its request waited is not counted as 499"
    )
    assert server_errors(families) == errors_before, "a client hang-up counted as a 5xx"
    assert_no_error_logs(service)


def test_a_request_cut_at_shutdown_is_logged_as_499(start_service: StartFn) -> None:
    with start_service({"SHUTDOWN_GRACE_SECONDS": str(GRACE)}) as service:
        with connect(service) as sock:
            sock.sendall(post_head("/items", len(BODY)) + BODY[:8])
            time.sleep(0.5)
            service.process.send_signal(signal.SIGTERM)
            # the body never comes: the drain ends and the request is cut
            code = service.process.wait(timeout=EXIT_DEADLINE)
        assert code == 0, service.logs()
        lines = _access_lines(service, "POST", "/items")
        assert [str(r["status"]) for r in lines] == ["499"], (
            f"the cut request is not logged once with status 499\n{service.logs()}"
        )
        assert str(lines[0].get("level")).lower() == "info", lines
        assert_no_error_logs(service)
