"""The OpenAPI document the service emits, which must equal the committed openapi.yaml.

FastAPI derives operations, parameters and bodies from the routes; the routes
declare their error statuses with `errors(...)`. What FastAPI cannot derive
is added here: a HEAD operation for every GET (the telemetry middleware
serves HEAD as GET; same statuses and headers, no body) and the responses
that belong to no single operation (unknown path, wrong method, the HTTP
server's own refusals). `make openapi` writes the
document, `make openapi-check` fails when the code and the file disagree,
and `make contract` holds the running service to the file.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

# The API's version, not the package's. Bump the major version for a change
# that breaks clients: `make contract-diff` accepts breaking changes only then.
API_VERSION = "1.0.0"

DESCRIPTION = (
    "Every 4xx/5xx body is JSON: `Error`, or `ValidationError` for 422. Answers that "
    "belong to no operation are in `components.responses`: an unknown path (404), a "
    "known path with an undeclared method (405, with `Allow`), and what the HTTP "
    "server itself may refuse before routing (a request it cannot parse 400, a slow "
    "client 408, request headers over 64 KiB 431). A client that hangs up before "
    "the answer gets none: the service records it as 499. Request bodies are limited "
    "to 64 KiB (413)."
)

# Unicode White_Space: what the service trims from names (pydantic strips this
# set). The characters themselves, not `\s` (each regex engine has its own
# set) nor `\u` escapes (ECMA-262 has them, Go's and Rust's engines do not):
# every JSON Schema validator reads a literal character the same way.
WHITESPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NUL = "\x00"  # PostgreSQL text cannot hold it
NO_NUL = f"^[^{NUL}]*$"
# Cursors are opaque to clients; the document promises only their alphabet and length.
CURSOR_PATTERN = "^[A-Za-z0-9._~-]+$"  # RFC 3986 unreserved: safe in a URL as is


class Error(BaseModel):
    """The body of every 4xx/5xx answer except 422."""

    model_config = ConfigDict(extra="forbid")

    error: Annotated[
        str,
        Field(
            pattern=r"^[a-z][a-z_]*$",
            description="Machine-readable code, e.g. not_found, invalid_json, unavailable.",
        ),
    ]
    detail: Annotated[str, Field(pattern=r"\S", description="Human-readable reason.")]


class FieldError(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: Annotated[str, Field(min_length=1, description="The offending field or parameter.")]
    reason: Annotated[str, Field(pattern=r"\S")]


class ValidationError(BaseModel):
    """The body of a 422: which inputs are wrong, and why."""

    model_config = ConfigDict(extra="forbid")

    error: Literal["validation_error"]
    detail: Annotated[str, Field(pattern=r"\S")]
    fields: Annotated[list[FieldError], Field(min_length=1)]


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 0},
    }
}
_ALLOW = {
    "Allow": {
        "description": "The methods the path accepts.",
        "schema": {"type": "string", "pattern": r"^[A-Z]+(, [A-Z]+)*$"},
    }
}

# Every error status an operation may declare, with its meaning.
_ERRORS: dict[int, dict[str, Any]] = {
    400: {"model": Error, "description": "The body is not valid JSON (`invalid_json`)."},
    404: {"model": Error, "description": "No such resource (`not_found`)."},
    413: {"model": Error, "description": "The body is over 64 KiB (`payload_too_large`)."},
    415: {
        "model": Error,
        "description": "Content-Type is not application/json (`unsupported_media_type`).",
    },
    422: {"model": ValidationError, "description": "Invalid input (`validation_error`)."},
    503: {
        "model": Error,
        "description": "The database is unavailable or too slow (`unavailable`); retry later.",
        "headers": _RETRY_AFTER,
    },
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entries for the error statuses a route can answer."""
    return {status: copy.deepcopy(_ERRORS[status]) for status in statuses}


def _shared_responses() -> dict[str, Any]:
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {
        "NotFound": {"description": "No route at this path (`not_found`).", "content": error},
        "MethodNotAllowed": {
            "description": "The path exists; the method does not (`method_not_allowed`).",
            "headers": _ALLOW,
            "content": error,
        },
        # The HTTP server's own refusals, before any route (http_protocol.py).
        "BadRequest": {
            "description": "Not a parsable HTTP request (`bad_request`).",
            "content": error,
        },
        "RequestTimeout": {
            "description": "The request head or body stalled for 10 s (`request_timeout`).",
            "content": error,
        },
        "RequestHeaderFieldsTooLarge": {
            "description": "The request line and headers are over 64 KiB "
            "(`request_header_fields_too_large`).",
            "content": error,
        },
    }


def _head_of(get: dict[str, Any]) -> dict[str, Any]:
    """HEAD answers as GET does, without a body (RFC 9110)."""
    head = copy.deepcopy(get)
    head["operationId"] = f"{get['operationId']}Head"
    head["summary"] = f"{get.get('summary', '')} (headers only)".strip()
    for response in head.get("responses", {}).values():
        response.pop("content", None)
        response.pop("links", None)
    return head


def _whole_numbers_as_ints(node: Any) -> Any:
    # FastAPI's OpenAPI model types bounds as floats (`minimum: 1.0`); an
    # integer's bounds read better, and diff better, as integers.
    if isinstance(node, dict):
        return {key: _whole_numbers_as_ints(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_whole_numbers_as_ints(value) for value in node]
    if isinstance(node, float) and node.is_integer():
        return int(node)
    return node


def build_openapi(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(
        title=app.title,
        version=API_VERSION,
        openapi_version="3.1.0",
        description=DESCRIPTION,
        routes=app.routes,
    )
    paths: dict[str, dict[str, Any]] = document.get("paths", {})
    for path, operations in paths.items():
        if "get" in operations:
            # Next to its GET, so the file reads in method order (a HEAD the
            # routes declare themselves is replaced: it would describe a body).
            operations_in_order = {}
            for method, operation in operations.items():
                if method == "head":
                    continue
                operations_in_order[method] = operation
                if method == "get":
                    operations_in_order["head"] = _head_of(operation)
            paths[path] = operations_in_order
    ids = [op["operationId"] for ops in paths.values() for op in ops.values()]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ValueError(f"operationIds used more than once: {duplicated}")
    document.setdefault("components", {})["responses"] = _shared_responses()
    return dict(_whole_numbers_as_ints(document))


def install_openapi(app: FastAPI) -> None:
    """Serve the truthful document at /openapi.json (built once, on first request)."""
    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not cache:
            cache.update(build_openapi(app))
        return cache

    setattr(app, "openapi", openapi)  # noqa: B010 - FastAPI's documented override
