"""OpenAI's Chat Completions on the local model: `POST /v1/chat/completions`, and `/v1/models` in
OpenAI's shape.

A Chat Completions request is validated in OpenAI's terms (`openai.types`), translated to an Anthropic
Messages request (`openai.serve_request`) and validated again by the same parser as /v1/messages; it
then takes exactly the /v1/messages path (`views.answer`: admission, engine, stop sequences, tool use)
and only the last step differs: the Anthropic message or its typed events become OpenAI's
`chat.completion` or chunk stream (`openai.serve_response`).  Errors on this route are rendered in
OpenAI's envelope by the error middleware (`middlewares.OPENAI_ROUTES`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

from aiohttp import web

from ..anthropic.requests import parse_messages_request
from ..anthropic.responses import StreamEvent
from ..errors import NotFound
from ..openai import serve_request, serve_response
from ..openai import types as oai
from ..openai.errors import openai_error_body, openai_error_from_anthropic
from ..openai.sse import data_frame
from .state import STATE, ProxyState
from .views import Wire, answer, read_json

CHAT_COMPLETIONS = "/v1/chat/completions"


async def chat_completions(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    if state.upstream is not None:
        raise NotFound(f"{CHAT_COMPLETIONS} is not served in upstream mode: call the upstream "
                       f"({state.upstream}) directly")
    req = oai.parse_chat_request(await read_json(request))
    body = serve_request.to_anthropic_request(req, default_max_tokens=_context_room(state))
    return await answer(request, parse_messages_request(body), _openai_wire(req), seed=req.seed)


def _context_room(state: ProxyState) -> int:
    """Chat Completions may leave the length open; Anthropic's parser needs one.  The engine clamps a
    limit beyond the context, so the whole context is the honest "no limit"."""
    if state.engine is None:
        return serve_request.DEFAULT_MAX_TOKENS  # the answer will be 503 "loading" anyway
    return state.engine.info.context_length


def _openai_wire(req: oai.ChatCompletionRequest) -> Wire:
    async def frames(events: AsyncIterator[StreamEvent]) -> AsyncGenerator[bytes, None]:
        dicts = (event.model_dump() async for event in events)
        stream: Any = serve_response.chat_stream(dicts, model=req.model, include_usage=req.include_usage)
        async with aclosing(stream) as chunks:
            async for chunk in chunks:
                yield chunk

    def message(anthropic_message: dict[str, Any]) -> dict[str, Any]:
        return serve_response.to_chat_completion(anthropic_message, model=req.model)

    return Wire(message=message, frames=frames, error_frame=_error_frame)


def _error_frame(error_type: str, message: str) -> bytes:
    return data_frame(openai_error_body(message, openai_error_from_anthropic(error_type)))
