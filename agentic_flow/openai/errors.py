"""Errors across the OpenAI <-> Anthropic boundary, in both directions.

UPSTREAM: an OpenAI-compatible engine answered with an HTTP error; `upstream_error` turns it into an
`UpstreamError`, an `ApiError` that carries the Anthropic status and type the proxy's error middleware
already knows how to render, plus the upstream's `retry-after` to pass on.

SERVE: `openai_error_body` is OpenAI's error envelope, `{"error": {"message", "type", "param", "code"}}`,
and `openai_error_type` picks its type from an HTTP status.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from ..errors import ApiError

# Anthropic's error types with the status Anthropic answers them with.
ANTHROPIC_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

_UPSTREAM_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    422: "invalid_request_error",  # vLLM answers schema errors with 422 in some versions
    429: "rate_limit_error",
    # A 503 from vLLM, Ray Serve or a gateway means "no capacity right now", which is what Anthropic's
    # overloaded_error (529) tells a client: back off and retry.
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}

# Statuses worth another try: the request itself was fine, the upstream was busy or failing.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 529})


class UpstreamError(ApiError):
    """The upstream engine failed the request; rendered as Anthropic's envelope by the proxy's
    middleware (which reads `status` and `error_type`), with `retry_after` passed on as a header."""

    def __init__(
        self, message: str, *, error_type: str = "api_error", upstream_status: int | None = None,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.status = ANTHROPIC_STATUS.get(error_type, 500)
        self.upstream_status = upstream_status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.upstream_status is None or self.upstream_status in RETRYABLE_STATUSES

    def anthropic_body(self) -> dict[str, object]:
        return {"type": "error", "error": {"type": self.error_type, "message": str(self)}}


class BrokenContract(UpstreamError):
    """The upstream answered 200, but not what the request asked for (serving.contract): a forced tool
    call answered with text, a tool that was not offered, an input that breaks its schema.  A 502, as a
    gateway answers for a bad reply from the server behind it; not retried (the same request would most
    likely get the same answer)."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"the upstream's answer does not honour the request: {problem}", upstream_status=200)
        self.status = 502


def anthropic_error_type(status: int) -> str:
    if status in _UPSTREAM_TYPES:
        return _UPSTREAM_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def upstream_error(status: int, body: bytes | str, headers: Mapping[str, str]) -> UpstreamError:
    """An upstream HTTP error response as an UpstreamError, its message taken from the OpenAI error
    envelope (or OpenRouter's, whose `code` is a number) when the body has one."""
    message = error_message(body) or f"HTTP {status}"
    return UpstreamError(
        f"upstream error {status}: {message}",
        error_type=anthropic_error_type(status),
        upstream_status=status,
        retry_after=headers.get("retry-after") or headers.get("Retry-After"),
    )


def error_message(body: bytes | str | Mapping[str, object]) -> str:
    """The human message inside an OpenAI-style error body; the raw text (shortened) otherwise."""
    data: object = body
    if isinstance(body, bytes | str):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return text.strip()[:500]
    if isinstance(data, list) and data:  # Gemini wraps its error object in a list
        data = data[0]
    if isinstance(data, Mapping):
        error = data.get("error", data)
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return str(data)[:500]


# --- the SERVE direction: OpenAI's envelope ------------------------------------------------------

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}

_ANTHROPIC_TO_OPENAI = {
    "invalid_request_error": "invalid_request_error",
    "authentication_error": "authentication_error",
    "permission_error": "permission_error",
    "not_found_error": "not_found_error",
    "request_too_large": "invalid_request_error",
    "rate_limit_error": "rate_limit_error",
    "overloaded_error": "server_error",
    "api_error": "server_error",
    "timeout_error": "server_error",
}


def openai_error_type(status: int) -> str:
    return _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")


def openai_error_from_anthropic(error_type: str) -> str:
    """The OpenAI error type for an Anthropic one (an error the core raised, shown to an OpenAI client)."""
    return _ANTHROPIC_TO_OPENAI.get(error_type, "server_error")


def openai_error_body(
    message: str, error_type: str, *, param: str | None = None, code: str | None = None
) -> dict[str, object]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}
