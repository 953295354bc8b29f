"""Socket-level HTTP/1.1 for checks an HTTP client library hides: half-sent
requests, hang-ups, bodies after HEAD, and when the server closes."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from tests.conformance.service import RunningService


@contextlib.contextmanager
def connect(service: RunningService, timeout: float = 30.0) -> Iterator[socket.socket]:
    url = urlsplit(service.base_url)
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as sock:
        yield sock


@dataclass
class Head:
    status: int
    headers: dict[str, str]  # lower-case names; a repeated header keeps the last value
    rest: bytes  # what followed the blank line (the body, or the next response)


def read_head(sock: socket.socket, data: bytes = b"") -> Head:
    """Read up to the end of one response head; raises ConnectionError if the peer closed."""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a complete response head: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Head(int(status_line.split()[1]), headers, rest)


def read_body(sock: socket.socket, head: Head) -> tuple[bytes, bytes]:
    """The body of a Content-Length response, and any bytes after it."""
    length = int(head.headers.get("content-length", "0"))
    data = head.rest
    while len(data) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data[:length], data[length:]


@dataclass
class Closed:
    closed: bool  # the server closed (EOF or reset) before the deadline
    after: float  # seconds from the start of the wait to the close (or the deadline)
    received: bytes  # anything the server sent first (a 408, say)


def wait_for_close(sock: socket.socket, deadline: float) -> Closed:
    """Wait until the server closes the connection or `deadline` seconds pass."""
    started = time.monotonic()
    received = b""
    while (left := deadline - (time.monotonic() - started)) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except OSError:  # reset by the server: closed too
            return Closed(True, time.monotonic() - started, received)
        if not chunk:
            return Closed(True, time.monotonic() - started, received)
        received += chunk
    return Closed(False, time.monotonic() - started, received)


def post_head(path: str, length: int, content_type: str = "application/json") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: conformance\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def get_request(path: str, method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: conformance\r\n\r\n".encode()
