"""Request handlers.  Each one validates its input through `anthropic.requests`, talks to the engine
through its narrow interface, and leaves every byte of the wire format to `anthropic.sse`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web

from ..anthropic import sse
from ..anthropic.reply import Reply, engine_options
from ..anthropic.requests import decode_body, parse_count_tokens_request, parse_messages_request
from ..anthropic.responses import StreamEvent
from ..anthropic.types import MessagesRequest
from ..engine.base import Engine, GenerationRequest
from ..errors import InvalidRequestError, NotFound, NotReady
from ..openai import serve_response
from . import upstream_views
from .middlewares import REQUEST_ID
from .prompt import sampling_options, to_chat_prompt
from .state import STATE, ProxyState

log = logging.getLogger(__name__)

SSE_HEADERS = sse.HEADERS


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


def ready_engine(state: ProxyState) -> Engine:
    if state.engine is None:
        raise NotReady("the model is still loading; retry in a moment")
    return state.engine


@dataclass(frozen=True)
class Wire:
    """How an answer is written back: Anthropic's Messages shape here, OpenAI's in openai_views.  The
    generation path is the same; only the last step (a message dict, typed events) is translated."""

    message: Callable[[dict[str, Any]], dict[str, Any]]  # the non-streaming body from an Anthropic message
    frames: Callable[[AsyncIterator[StreamEvent]], AsyncGenerator[bytes, None]]  # the stream's bytes
    error_frame: Callable[[str, str], bytes]  # (Anthropic error type, message) inside a started stream


async def _anthropic_frames(events: AsyncIterator[StreamEvent]) -> AsyncGenerator[bytes, None]:
    async for event in events:
        yield sse.frame_event(event)


ANTHROPIC = Wire(message=lambda message: message, frames=_anthropic_frames, error_frame=sse.error_event)


async def messages(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    req = parse_messages_request(body)
    upstream = request.app[STATE].upstream
    if upstream is not None:
        assert isinstance(body, dict)  # the parser accepted it
        return await upstream_views.messages(request, body, req, upstream)
    return await answer(request, req, ANTHROPIC)


async def answer(request: web.Request, req: MessagesRequest, wire: Wire, *,
                 seed: int | None = None) -> web.StreamResponse:
    """Generate the reply to a validated Messages request and write it in `wire`'s shape."""
    state = request.app[STATE]
    state.check_model_name(req.model)
    prompt = to_chat_prompt(req, code_blocks=state.code_blocks)
    options = replace(sampling_options(req, prompt, state.default_sampling), seed=seed)
    engine = ready_engine(state)
    async with state.admission.slot():
        # buffered: a non-streaming answer is re-run unseen if the inference process dies at any point.
        generation = await engine.generate(GenerationRequest(prompt, engine_options(options), buffered=not req.stream))
        reply = Reply(generation, prompt.tools, options, state.ping_interval, state.repetition_guard)
        try:
            if req.stream:
                return await _stream(request, req.model, reply, wire)
            payload = await sse.reply_json(sse.new_message_id(), req.model, reply)
            return web.json_response(wire.message(payload))
        finally:
            await generation.aclose()


async def _stream(request: web.Request, model: str, reply: Reply, wire: Wire) -> web.StreamResponse:
    state = request.app[STATE]
    response = web.StreamResponse(headers={**SSE_HEADERS, "request-id": request[REQUEST_ID]})
    await response.prepare(request)
    task = asyncio.current_task()
    assert task is not None
    state.streams.add(task)
    try:
        await _write_events(request, response, model, reply, wire)
    except asyncio.CancelledError:
        if not state.grace_over:
            raise  # the client went away
        # The proxy is stopping and the grace period is over: say so, as Anthropic does when it goes
        # away, rather than end the stream as if the answer were complete.
        await response.write(wire.error_frame("overloaded_error", "the server is shutting down; retry"))
    finally:
        state.streams.discard(task)
    await response.write_eof()
    return response


async def _write_events(request: web.Request, response: web.StreamResponse, model: str, reply: Reply,
                        wire: Wire) -> None:
    # aclosing: when the client goes away (a failed write, or the handler cancelled), the event
    # generators close at once, and with them the generation, freeing the engine within one token.
    async with aclosing(sse.stream_events(sse.new_message_id(), model, reply)) as events, \
            aclosing(wire.frames(events)) as frames:
        try:
            async for chunk in frames:
                await response.write(chunk)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:  # headers are sent: report it inside the stream, as Anthropic does
            log.exception("generation failed mid-stream (%s)", request[REQUEST_ID])
            await response.write(wire.error_frame("api_error", f"generation failed: {type(exc).__name__}"))


async def count_tokens(request: web.Request) -> web.Response:
    state = request.app[STATE]
    body = await read_json(request)
    req = parse_count_tokens_request(body)
    if state.upstream is not None:
        assert isinstance(body, dict)
        return upstream_views.count_tokens(body)
    state.check_model_name(req.model)
    engine = ready_engine(state)
    prompt = to_chat_prompt(req, code_blocks=state.code_blocks)
    return web.json_response({"input_tokens": await engine.count_tokens(prompt)})


def model_entry(state: ProxyState) -> dict[str, str]:
    if state.upstream is not None:
        return upstream_views.model_entry(state.upstream)
    info = ready_engine(state).info
    return {
        "type": "model",
        "id": info.model_name,
        "display_name": f"{info.model_name} (local, onnxruntime-genai)",
        "created_at": info.created_at,
    }


async def list_models(request: web.Request) -> web.Response:
    state = request.app[STATE]
    entries = [model_entry(state)]
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
    state = request.app[STATE]
    entry = model_entry(state)
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
