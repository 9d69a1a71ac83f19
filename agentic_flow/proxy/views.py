"""Request handlers.  Each one validates its input through its API's parser, hands it to the backend
(`state.backend`: the local engine or an upstream server, behind one protocol), and writes the answer:
a JSON body, or a stream through the one writer (`streaming`).  /v1/chat/completions is in
openai_views."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..anthropic.requests import decode_body, parse_count_tokens_request, parse_messages_request
from ..errors import InvalidRequestError, NotFound
from ..openai import serve_response
from .state import STATE
from .streaming import respond

# The response header of a count_tokens answer that is an estimate (no tokenizer for the model).
ESTIMATE_HEADER = "agentic-flow-token-count"


class BodyTimeout(InvalidRequestError):
    status = 408


async def read_json(request: web.Request) -> object:
    try:
        # A client that sends its headers and then the body a byte at a time would hold a connection
        # (and a descriptor) for as long as it likes.
        async with asyncio.timeout(request.app[STATE].body_timeout):
            raw = await request.read()
    except TimeoutError:
        raise BodyTimeout("the request body did not arrive in time") from None
    return decode_body(raw)


async def messages(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    body = await read_json(request)
    req = parse_messages_request(body)
    assert isinstance(body, dict)  # the parser accepted it
    job = state.backend.messages(body, req)
    # The admission bounds what runs and waits (529 beyond max_queue) and lets shutdown drain.
    async with state.admission.slot():
        return await respond(request, await job())


async def count_tokens(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await read_json(request)
    req = parse_count_tokens_request(body)
    assert isinstance(body, dict)
    count = await state.backend.count_tokens(body, req)
    headers = {ESTIMATE_HEADER: "estimate"} if count.estimate else None
    return web.json_response({"input_tokens": count.input_tokens}, headers=headers)


async def list_models(request: web.Request) -> web.Response:
    entries = [request.app[STATE].backend.model_entry()]
    if wants_openai(request):
        return web.json_response(serve_response.to_model_list(entries))
    limit = _int_query(request, "limit", 20, 1, 1000)
    after, before = request.query.get("after_id"), request.query.get("before_id")
    ids = [e["id"] for e in entries]
    if after is not None:
        entries = entries[ids.index(after) + 1:] if after in ids else []
    if before is not None:
        entries = entries[: ids.index(before)] if before in ids else []
    page = entries[-limit:] if before is not None and after is None else entries[:limit]
    return web.json_response({
        "data": page,
        "has_more": len(page) < len(entries),
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
    })


def _int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequestError(f"{name}: Input should be a valid integer") from None
    if not low <= value <= high:
        raise InvalidRequestError(f"{name}: Input should be between {low} and {high}")
    return value


async def get_model(request: web.Request) -> web.Response:
    entry = request.app[STATE].backend.model_entry()
    model_id = request.match_info["model_id"]
    if model_id != entry["id"]:
        raise NotFound(f"model: {model_id} (this proxy serves {entry['id']})")
    return web.json_response(serve_response.to_model(entry) if wants_openai(request) else entry)


def wants_openai(request: web.Request) -> bool:
    """/v1/models answers in the caller's shape: Anthropic's clients always send `anthropic-version`,
    OpenAI's never do."""
    return "anthropic-version" not in request.headers


async def health(request: web.Request) -> web.Response:
    report = request.app[STATE].health()
    return web.json_response(report.to_json(), status=report.status.http_status)
