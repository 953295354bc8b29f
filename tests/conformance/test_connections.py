"""HTTP connections: idle keep-alive connections outlive proxies' upstream pools."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

from tests.conformance.service import RunningService

# The contract asks for 65 s; waiting that long would dominate the suite. 10 s
# is past the few-second defaults of common servers (uvicorn 5 s, Node 5 s),
# which is what makes a proxy send a request on a closing connection.
IDLE_SECONDS = 10.0
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: conformance\r\n\r\n"


def _read_response(sock: socket.socket) -> bytes:
    """One HTTP/1.1 response with a Content-Length body; b"" if the peer closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")[1:]
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_idle_keep_alive_connection_stays_open(service: RunningService) -> None:
    url = urlsplit(service.base_url)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(REQUEST)
        first = _read_response(sock)
        assert first.startswith(b"HTTP/1.1 200"), first
        assert b"connection: close" not in first.lower(), first

        time.sleep(IDLE_SECONDS)  # idle, as in a proxy's connection pool

        try:
            sock.sendall(REQUEST)
            second = _read_response(sock)
        except OSError as exc:  # reset: the service had closed it
            second = repr(exc).encode()
    assert second.startswith(b"HTTP/1.1 200"), (
        f"the service closed an idle keep-alive connection within {IDLE_SECONDS:g} s: {second!r}"
    )
