"""The HTTP edge: request ids, authentication, and the one place where errors become Anthropic's
error envelope.  No stack trace ever reaches a response body; it goes to the log."""

from __future__ import annotations

import hmac
import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from ..anthropic.errors import error_body, error_type_for
from ..anthropic.sse import new_request_id
from ..errors import ApiError, AuthenticationFailed, EngineError, InvalidRequestError, PromptTooLong
from ..openai.errors import openai_error_body, openai_error_from_anthropic

log = logging.getLogger(__name__)

REQUEST_ID = web.RequestKey("request_id", str)
API_KEY = web.AppKey("api_key", str)


# Routes whose clients speak OpenAI's API: their errors use OpenAI's envelope, with the same status.
OPENAI_ROUTES = frozenset({"/v1/chat/completions", "/chat/completions"})


def error_response(status: int, error_type: str, message: str, request_id: str, *, openai: bool = False,
                   param: str | None = None, retry_after: str | None = None) -> web.Response:
    headers = {"request-id": request_id}
    if retry_after is not None:  # an upstream's rate limit, passed on so the client waits as asked
        headers["retry-after"] = retry_after
    if openai:
        body = openai_error_body(message, openai_error_from_anthropic(error_type), param=param)
    else:
        body = error_body(error_type, message, request_id)
    return web.json_response(body, status=status, headers=headers)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = new_request_id()
    request[REQUEST_ID] = request_id
    openai = request.path in OPENAI_ROUTES
    try:
        response = await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.error_type, str(exc), request_id, openai=openai,
                              param=getattr(exc, "param", None), retry_after=getattr(exc, "retry_after", None))
    except PromptTooLong as exc:
        return error_response(400, InvalidRequestError.error_type, str(exc), request_id, openai=openai)
    except EngineError as exc:  # inference failed (its process died twice under this request, say): no bug
        log.error("inference failed (%s): %s", request_id, exc)
        return error_response(500, error_type_for(500), f"inference failed: {exc}", request_id, openai=openai)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = _http_message(request, exc)
        return error_response(exc.status, error_type_for(exc.status), message, request_id, openai=openai)
    except Exception:
        log.exception("unexpected error while handling %s %s (%s)", request.method, request.path, request_id)
        return error_response(500, error_type_for(500), "Internal server error", request_id, openai=openai)
    if not response.prepared:
        response.headers["request-id"] = request_id
    return response


def _http_message(request: web.Request, exc: web.HTTPException) -> str:
    if exc.status == 404:
        return f"Not found: {request.method} {request.path}"
    if exc.status == 405:
        return f"Method {request.method} is not allowed on {request.path}"
    if exc.status == 413:
        return f"Request body is too large: {exc.text or ''}".strip()
    return exc.text or exc.reason


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    expected = request.app[API_KEY]
    if expected and request.path.startswith("/v1/"):
        given = request.headers.get("x-api-key")
        if given is None:
            auth = request.headers.get("Authorization", "")
            given = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        if given is None:
            raise AuthenticationFailed("x-api-key header is required")
        # aiohttp keeps header bytes that are not UTF-8 as surrogate escapes; encode them back the same
        # way, so such a key is simply a wrong key (401) rather than an encoding error (500).
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode()):
            raise AuthenticationFailed("invalid x-api-key")
    return await handler(request)
