"""uvicorn's httptools protocol with read timeouts for slow clients, a cap on
the request head's size, and the contract's JSON bodies for parse errors.

uvicorn bounds neither how long a request's head may take to arrive nor how
long its body may stall: one connection that sends half a request holds its
slot until the client gives up (a slow-loris attack needs only a few
thousand of them). The contract: head complete within 10 s of the first byte
(of the connection, or of the next request on a kept-alive one), and no more
than 10 s between body chunks; otherwise a 408 and the connection is closed.
An idle kept-alive connection between requests is uvicorn's keep-alive timer's.
"""

from __future__ import annotations

import asyncio
import json
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .telemetry import SLOW_CLIENT_KEY

READ_TIMEOUT_SECONDS = 10.0
# httptools sets no limit on a request's head; uvicorn's h11 mode allows 16 KiB.
MAX_HEAD_BYTES = 64 * 1024

log = logging.getLogger(__name__)


def _json_response(status: int, reason: str, error: str, detail: str) -> bytes:
    body = json.dumps({"error": error, "detail": detail}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


_TIMED_OUT = _json_response(
    408,
    "Request Timeout",
    "request_timeout",
    f"the request was not received within {READ_TIMEOUT_SECONDS:g} s",
)


_HEAD_TOO_LARGE = _json_response(
    431,
    "Request Header Fields Too Large",
    "request_header_fields_too_large",
    f"the request line and headers are larger than {MAX_HEAD_BYTES} bytes",
)


class TimedHttpToolsProtocol(HttpToolsProtocol):
    _read_timer: asyncio.TimerHandle | None = None
    _reading_head = False
    _head_bytes = 0

    def _arm(self) -> None:
        self._disarm()
        self._read_timer = self.loop.call_later(READ_TIMEOUT_SECONDS, self._timed_out)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm()  # a new connection's first request is due at once

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._reading_head and self._head_bytes > MAX_HEAD_BYTES:
            self._reject(_HEAD_TOO_LARGE)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head, self._head_bytes = True, 0
        self._arm()

    def on_headers_complete(self) -> None:
        self._reading_head = False
        super().on_headers_complete()
        self._arm()  # now the body's clock; on_message_complete stops it

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._arm()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def _timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and cycle.response_started and not cycle.response_complete:
            self._arm()  # an earlier response is still being written: check again later
            return
        if cycle is not None and not cycle.response_complete:
            # The app is waiting for the body: it sees a disconnect and counts a 408.
            cycle.scope[SLOW_CLIENT_KEY] = True  # type: ignore[literal-required]
        log.info("closing a slow client's connection", extra={"client": self.client})
        self._reject(_TIMED_OUT)

    def send_400_response(self, msg: str) -> None:
        # The contract's JSON error body instead of uvicorn's plain text.
        self._reject(_json_response(400, "Bad Request", "bad_request", msg))

    def _reject(self, response: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()
