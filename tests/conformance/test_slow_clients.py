"""Slow clients: a request whose head or body stalls is closed after 10 s.

The three kinds run side by side (one wait for all), each on its own connection.
An idle keep-alive connection is not a slow client: test_connections.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable

import pytest

from tests.conformance.rawhttp import (
    Closed,
    connect,
    post_head,
    read_body,
    read_head,
    wait_for_close,
)
from tests.conformance.service import RunningService

LIMIT = 10.0  # the contract's header and body timeouts
MARGIN = 5.0  # timer granularity and a busy CI box
DEADLINE = LIMIT + MARGIN
HALF_HEAD = b"GET /healthz HTTP/1.1\r\nHost: conformance\r\n"


def _half_sent_head(sock: socket.socket) -> None:
    sock.sendall(HALF_HEAD)


def _trickled_head(sock: socket.socket) -> None:
    # a byte every 2 s: never idle for long, never complete ("slowloris")
    def trickle() -> None:
        chunks = [HALF_HEAD] + [b"X"] * (int(DEADLINE) // 2 + 2)
        for chunk in chunks:
            try:
                sock.sendall(chunk)
            except OSError:
                return
            time.sleep(2.0)

    threading.Thread(target=trickle, daemon=True).start()


def _stalled_body(sock: socket.socket) -> None:
    body = b'{"name": "stalled"}'
    sock.sendall(post_head("/items", len(body)) + body[:5])


KINDS: dict[str, Callable[[socket.socket], None]] = {
    "half-sent-head": _half_sent_head,
    "trickled-head": _trickled_head,
    "stalled-body": _stalled_body,
}


@pytest.fixture(scope="module")
def closes(service: RunningService) -> dict[str, Closed]:
    results: dict[str, Closed] = {}

    def run(kind: str) -> None:
        with connect(service) as sock:
            KINDS[kind](sock)
            results[kind] = wait_for_close(sock, DEADLINE)

    threads = [threading.Thread(target=run, args=(kind,)) for kind in KINDS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE + 10)
    return results


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_stalled_request_is_closed(closes: dict[str, Closed], kind: str) -> None:
    result = closes[kind]
    assert result.closed, f"{kind}: connection still open {DEADLINE:g} s later"
    if result.received:
        # "a 408 JSON body may be sent first"
        reader, writer = socket.socketpair()
        with reader, writer:
            writer.sendall(result.received)
            writer.shutdown(socket.SHUT_WR)
            head = read_head(reader)
            body, _ = read_body(reader, head)
        assert head.status == 408, f"{kind}: {result.received[:300]!r}"
        assert head.headers.get("content-type", "").startswith("application/json"), head.headers
        assert json.loads(body).get("error"), body
