"""DB_TIMEOUT_MS: a held table lock or a hung database never makes a request,
or the shutdown, wait without bound."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.conformance.checks import assert_error
from tests.conformance.conftest import StartFn
from tests.conformance.database import table_locked
from tests.conformance.service import RunningService

# Every (tool, stack) pair runs this module:
# the table the locks and timeouts act on comes from the migrations.
EVERY_PAIR = True

TIMEOUT_MS = 1000  # the contract's range is 100-60000; small keeps the suite fast
BOUND = TIMEOUT_MS / 1000 + 1.0  # "answers within DB_TIMEOUT_MS + 1 s"
GRACE = 1  # SHUTDOWN_GRACE_SECONDS
DRAIN = 5.0  # the contract's drain after the grace period
EXIT_SLACK = 3.0  # a busy CI box


@pytest.fixture(scope="module")
def bounded(start_service: StartFn) -> Iterator[tuple[RunningService, int]]:
    with start_service({"DB_TIMEOUT_MS": str(TIMEOUT_MS)}) as service, service.client() as client:
        created = client.post("/items", json={"name": "before the lock"})
        assert created.status_code == 201, created.text
        yield service, created.json()["id"]


def _requests(item_id: int) -> list[tuple[str, str, Any]]:
    return [
        ("GET", "/items", None),
        ("GET", f"/items/{item_id}", None),
        ("POST", "/items", {"name": "while locked"}),
    ]


def _timed(client: httpx.Client, method: str, path: str, body: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    resp = client.request(method, path, json=body)
    return resp, time.monotonic() - started


def _assert_bounded_503(resp: httpx.Response, elapsed: float) -> None:
    assert_error(resp, 503, "unavailable")
    assert resp.headers.get("retry-after") == "1", resp.headers
    assert elapsed <= BOUND, (
        f"{resp.request.method} {resp.request.url.path} took {elapsed:.1f} s with the table "
        f"locked; DB_TIMEOUT_MS={TIMEOUT_MS} allows {BOUND:g} s"
    )


@pytest.mark.parametrize("which", [0, 1, 2], ids=["list", "get", "create"])
def test_a_held_table_lock_gives_503_within_the_bound(
    bounded: tuple[RunningService, int], which: int
) -> None:
    service, item_id = bounded
    method, path, body = _requests(item_id)[which]
    with service.client(timeout=30.0) as client:
        with table_locked(service.database_url):
            resp, elapsed = _timed(client, method, path, body)
        _assert_bounded_503(resp, elapsed)
        # the lock is gone: the same request succeeds on the same pool
        again = client.request(method, path, json=body)
    assert again.status_code in {200, 201}, again.text


def test_many_requests_behind_a_lock_are_each_bounded(bounded: tuple[RunningService, int]) -> None:
    # more requests than a typical pool has connections: waiting for a
    # connection counts against the same bound
    service, item_id = bounded
    calls = _requests(item_id) * 8
    with (
        service.client(timeout=30.0) as client,
        table_locked(service.database_url),
        ThreadPoolExecutor(len(calls)) as pool,
    ):
        results = list(pool.map(lambda call: _timed(client, *call), calls))
    for resp, elapsed in results:
        _assert_bounded_503(resp, elapsed)


def test_shutdown_is_bounded_while_requests_wait_on_a_hung_database(
    start_service: StartFn,
) -> None:
    with start_service({"SHUTDOWN_GRACE_SECONDS": str(GRACE)}) as service:
        with service.client() as client:
            assert client.post("/items", json={"name": "pool warm"}).status_code == 201
        service.proxy.freeze()  # connections open, no answers

        outcomes: list[object] = []

        def in_flight() -> None:
            try:
                outcomes.append(httpx.get(f"{service.base_url}/items", timeout=60.0).status_code)
            except httpx.TransportError as exc:  # closed at exit: also an answer
                outcomes.append(type(exc).__name__)

        threads = [threading.Thread(target=in_flight, daemon=True) for _ in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)  # the requests reach the database

        service.process.send_signal(signal.SIGTERM)
        deadline = GRACE + DRAIN + EXIT_SLACK
        try:
            code = service.process.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"still running {deadline:g} s after SIGTERM while requests wait on a hung "
                f"database\n{service.logs()}"
            ) from None
        for thread in threads:
            thread.join(timeout=5)
    assert code == 0, service.logs()
    assert len(outcomes) == 3, "a request was left hanging after the service exited"
