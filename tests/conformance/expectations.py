"""The HTTP contract (docs/service-contract.md) as data.

The conformance tests check running services against these facts, and
tests/test_contract_document.py checks every stack's committed OpenAPI
document against the same facts: one contract for the example resource,
whatever the language.
"""

from __future__ import annotations

import re

ITEM_FIELDS = frozenset({"id", "name", "description", "created_at"})
ITEM_CREATE_FIELDS = frozenset({"name", "description"})
PAGE_FIELDS = frozenset({"items", "limit", "next"})
ERROR_FIELDS = frozenset({"error", "detail"})
VALIDATION_ERROR_FIELDS = ERROR_FIELDS | {"fields"}
FIELD_ERROR_FIELDS = frozenset({"field", "reason"})

NAME_MAX = 200  # characters after trimming surrounding whitespace
DESCRIPTION_MAX = 2000
LIMIT_MIN, LIMIT_MAX, LIMIT_DEFAULT = 1, 100, 20
CURSOR_MAX = 200
# "a URL-safe string of at most 200 characters" (RFC 3986 unreserved characters)
CURSOR = re.compile(rf"^[A-Za-z0-9._~-]{{1,{CURSOR_MAX}}}$")

# Every operation and the statuses the contract gives it. HEAD is allowed
# wherever GET is, with the same statuses (RFC 9110). Unknown paths (404) and
# wrong methods (405) belong to no operation.
_GETS: dict[str, frozenset[int]] = {
    "/healthz": frozenset({200}),
    "/readyz": frozenset({200, 503}),
    "/metrics": frozenset({200}),
    "/items": frozenset({200, 422, 503}),
    "/items/{id}": frozenset({200, 404, 422, 503}),
}
STATUSES: dict[tuple[str, str], frozenset[int]] = {
    ("post", "/items"): frozenset({201, 400, 413, 415, 422, 503}),
    **{("get", path): statuses for path, statuses in _GETS.items()},
    **{("head", path): statuses for path, statuses in _GETS.items()},
}
# The `error` code of each error status (the table in the contract's Errors section).
ERROR_CODES = {
    400: "invalid_json",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    503: "unavailable",
}
