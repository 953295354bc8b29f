"""SIGTERM: readiness drops at once, in-flight requests finish, exit code 0."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import time
from urllib.parse import urlsplit

import httpx

from tests.conformance.conftest import StartFn

GRACE = 3  # SHUTDOWN_GRACE_SECONDS for this instance
DEADLINE = GRACE + 15.0  # "grace period plus a few seconds", with slack for a busy CI box


def test_sigterm_drains_in_flight_requests_then_exits_zero(start_service: StartFn) -> None:
    with start_service({"SHUTDOWN_GRACE_SECONDS": str(GRACE)}) as service:
        url = urlsplit(service.base_url)
        # http.client (not httpx) because the request body must stop half-way:
        # the request is in flight, from the server's point of view, until the
        # rest arrives.
        conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
        conn.request("GET", "/healthz")  # the connection is now the server's, not in a backlog
        assert conn.getresponse().read()
        body = json.dumps({"name": "in flight"}).encode()
        conn.putrequest("POST", "/items")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body[:5])
        time.sleep(0.5)  # let the server parse the head; correctness does not depend on it

        service.process.send_signal(signal.SIGTERM)
        with service.client(timeout=2.0) as client:
            resp = client.get("/readyz")
            assert resp.status_code == 503, resp.text
            assert resp.json() == {"status": "shutting down", "reason": "SIGTERM received"}
            assert client.get("/healthz").status_code == 200, "liveness must hold while draining"

            # after the grace period the listener closes (a new connection per
            # probe: a pooled one could fail for other reasons) ...
            deadline = time.monotonic() + DEADLINE
            while time.monotonic() < deadline:
                try:
                    httpx.get(f"{service.base_url}/healthz", timeout=2.0)
                except httpx.TransportError:
                    break
                time.sleep(0.2)
            else:
                raise AssertionError("still accepting connections long after the grace period")

        # ... but the request that started before SIGTERM still completes
        conn.send(body[5:])
        answer = conn.getresponse()
        payload = json.loads(answer.read())
        assert answer.status == 201, payload
        assert payload["name"] == "in flight"
        conn.close()

        assert service.process.wait(timeout=DEADLINE) == 0, service.logs()


def test_a_hung_database_fails_readiness_and_does_not_block_exit(start_service: StartFn) -> None:
    with start_service({"SHUTDOWN_GRACE_SECONDS": str(GRACE)}) as service:
        with service.client(timeout=DEADLINE) as client:
            created = client.post("/items", json={"name": "before the hang"})
            assert created.status_code == 201, created.text  # the pool holds a connection

            # connections stay open but the database never answers again
            service.proxy.freeze()
            # "ready only if SELECT 1 answers within 2 s": a hang is not ready
            resp = client.get("/readyz")
            assert resp.status_code == 503, resp.text
            assert resp.json().get("status") == "unavailable", resp.text

        # whatever still waits on the database must not keep the process alive
        # past the grace period and the drain
        service.process.send_signal(signal.SIGTERM)
        try:
            code = service.process.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"still running {DEADLINE:g} s after SIGTERM while the database hangs\n"
                + service.logs()
            ) from None
        assert code == 0, service.logs()
