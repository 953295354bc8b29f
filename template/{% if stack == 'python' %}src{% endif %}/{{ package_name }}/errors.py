"""Uniform JSON error bodies: {"error": <code>, "detail": <reason>[, "fields": [...]]}.

Every failure a client can cause maps to a 4xx here; a database outage maps to
503. Only a bug gives a 500.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, NoReturn, cast

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from .db import DatabaseTimeoutError

log = logging.getLogger(__name__)

# Codes for the statuses Starlette raises by itself.
_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}
# The contract's cap on request bodies. The largest valid item is under 30 KiB
# of JSON even with every character escaped; without a cap, one request could
# make the service read any amount into memory.
MAX_BODY_BYTES = 64 * 1024
# Where FastAPI found a bad value; dropped from the field name clients see.
_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})


class ApiError(Exception):
    """An expected failure with its status and error code."""

    def __init__(
        self,
        status: int,
        error: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers


def error_response(
    status: int,
    error: str,
    detail: str,
    *,
    fields: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"error": error, "detail": detail}
    if fields is not None:
        body["fields"] = fields
    return JSONResponse(body, status_code=status, headers=headers)


def field_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Pydantic errors as [{"field": "name", "reason": "..."}]."""
    fields = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        where = loc.pop(0) if loc and loc[0] in _LOCATIONS else "body"
        fields.append({"field": ".".join(loc) or where, "reason": str(error.get("msg", ""))})
    return fields


# Starlette types every handler as (Request, Exception); each is registered
# for one class only, hence the casts.


async def _on_api_error(_: Request, exc: Exception) -> Response:
    error = cast(ApiError, exc)
    return error_response(error.status, error.error, error.detail, headers=error.headers)


async def _on_validation_error(_: Request, exc: Exception) -> Response:
    errors = cast(RequestValidationError, exc).errors()
    if any(error.get("type") == "json_invalid" for error in errors):
        return error_response(400, "invalid_json", "request body is not valid JSON")
    fields = field_errors(errors)
    names = ", ".join(dict.fromkeys(f["field"] for f in fields))
    return error_response(422, "validation_error", f"invalid input: {names}", fields=fields)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    http_error = cast(HTTPException, exc)
    status = http_error.status_code
    headers = http_error.headers
    if status == 404:
        detail = f"no resource at {request.url.path}"
    elif status == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
        headers = {"Allow": ", ".join(_allowed_methods(request))}
    else:
        detail = str(http_error.detail)
    error = _HTTP_CODES.get(status, "bad_request" if status < 500 else "internal_error")
    return error_response(status, error, detail, headers=headers)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    # Starlette's Allow header names only the first route that matched the
    # path, but a path has one route per method (GET /items, POST /items).
    # HEAD is served wherever GET is (the telemetry middleware routes it as GET).
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]
    if "GET" in allowed and "HEAD" not in allowed:
        allowed.insert(allowed.index("GET") + 1, "HEAD")
    return allowed


async def _on_database_unavailable(request: Request, exc: Exception) -> Response:
    # Connection-level failures and timeouts (DB_TIMEOUT_MS: statement, lock or
    # pool wait): the request itself was fine, a retry may succeed.
    log.warning(
        "database unavailable",
        extra={"path": request.url.path, "error": type(exc).__name__, "reason": str(exc)[:300]},
    )
    return error_response(
        503,
        "unavailable",
        "the database is unavailable; retry later",
        headers={"Retry-After": "1"},
    )


async def _on_unexpected(_: Request, __: Exception) -> Response:
    # A bug. uvicorn logs the traceback; the client gets no internals.
    return error_response(500, "internal_error", "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    handlers: dict[type[Exception], Callable[[Request, Exception], Awaitable[Response]]] = {
        ApiError: _on_api_error,
        RequestValidationError: _on_validation_error,
        HTTPException: _on_http_error,
        OperationalError: _on_database_unavailable,
        InterfaceError: _on_database_unavailable,
        PoolTimeoutError: _on_database_unavailable,
        DatabaseTimeoutError: _on_database_unavailable,
        Exception: _on_unexpected,
    }
    for exc_class, handler in handlers.items():
        app.add_exception_handler(exc_class, handler)


class JsonBodyRoute(APIRoute):
    """Checks a body's media type, size and JSON syntax before FastAPI validates it.

    So a wrong Content-Type is a 415 (not a confusing 422), a body over
    MAX_BODY_BYTES is a 413 before more of it is read, and anything that is
    not JSON, an empty body included, is a 400.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def checked_handler(request: Request) -> Response:
            content_type = request.headers.get("content-type", "")
            if content_type.split(";")[0].strip().lower() != "application/json":
                raise ApiError(
                    415,
                    "unsupported_media_type",
                    f"{request.method} {request.url.path} takes Content-Type: application/json",
                )
            body = await _read_capped(request)
            try:
                parsed = json.loads(body, parse_constant=_not_json, parse_int=_integer)
            except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
                if isinstance(exc, json.JSONDecodeError):
                    reason = exc.msg
                else:
                    reason = str(exc) if isinstance(exc, _NotJsonError) else type(exc).__name__
                raise ApiError(
                    400, "invalid_json", f"request body is not valid JSON: {reason}"
                ) from None
            # Starlette's cache of the parsed body: FastAPI validates this one.
            request._json = parsed
            return await handler(request)

        return checked_handler


class _NotJsonError(ValueError):
    pass


def _not_json(literal: str) -> NoReturn:
    # Python's json module accepts these by default; RFC 8259 has no such values.
    raise _NotJsonError(f"{literal} is not a JSON value")


class OversizedInteger:
    """A JSON integer with more digits than int() converts (CPython refuses
    over 4,300: converting is quadratic). Valid JSON, so not a 400; no field
    takes one, so validation answers 422 naming the field."""

    __slots__ = ()


_MAX_INT_DIGITS = 4000
_OVERSIZED = OversizedInteger()


def _integer(text: str) -> object:
    return int(text) if len(text) <= _MAX_INT_DIGITS else _OVERSIZED


async def _read_capped(request: Request) -> bytes:
    too_large = ApiError(
        413, "payload_too_large", f"request body is larger than {MAX_BODY_BYTES} bytes"
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # chunked bodies declare no length
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
    # Starlette's cache of the body: FastAPI reads it from there once more.
    request._body = b"".join(chunks)
    return request._body
