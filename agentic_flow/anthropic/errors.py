"""Anthropic's error envelope and the one table between HTTP statuses and its error types.

    {"type": "error", "error": {"type": "invalid_request_error", "message": "..."}, "request_id": "req_..."}

The project's exception tree (`agentic_flow.errors`) takes each class's `error_type` from this table,
and the proxy's middleware uses it for aiohttp's own HTTP errors, so a status maps to one type only.
This module imports nothing from the project: `agentic_flow.errors` depends on it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

# https://docs.anthropic.com/en/api/errors; 405 is not listed there, Anthropic answers it as a bad request.
ERROR_TYPES: Mapping[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",  # Anthropic has no type of its own for "not ready"
    529: "overloaded_error",
}

FALLBACK_TYPE = "api_error"  # any other status


def error_type_for(status: int) -> str:
    return ERROR_TYPES.get(status, FALLBACK_TYPE)


def error_body(error_type: str, message: str, request_id: str | None = None) -> dict[str, object]:
    """The JSON body of an HTTP error response."""
    body: dict[str, object] = {"type": "error", "error": {"type": error_type, "message": message}}
    if request_id is not None:
        body["request_id"] = request_id
    return body


def parse_error_body(body: str, reason: str | None = None) -> tuple[str, str]:
    """(type, message) from an error envelope; for a body that is not one (an HTML page from a gateway,
    nothing at all), ("error", the start of the body or the HTTP reason)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error.get("type") or "error"), error["message"]
    return "error", body.strip()[:300] or reason or "no details"
