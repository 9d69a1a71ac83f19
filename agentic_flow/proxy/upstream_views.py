"""Upstream mode: the proxy's Anthropic endpoints answered by an OpenAI-compatible server (vLLM, Ray
Serve, OpenRouter, Gemini, another agentic-flow proxy) through `openai.upstream.UpstreamClient`.

Validation stays ours (the request was parsed as on the local path); the client translates to Chat
Completions and back, retries before any output, and closes the upstream response when our client goes
away.  The stream is prepared only once the upstream's first event arrived, so an upstream failure
before it is a real HTTP status (with `retry-after` passed on) rather than an error inside a 200.

count_tokens has no tokenizer here: it answers an estimate, len(JSON of the prompt) / 4, which is
what clients use it for (budgeting a context), and says so in a header.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping
from contextlib import aclosing
from typing import Any

from aiohttp import web

from ..anthropic import sse
from ..anthropic.types import MessagesRequest
from ..openai.upstream import UpstreamClient
from .middlewares import REQUEST_ID
from .state import STATE

CHARS_PER_TOKEN = 4
ESTIMATE_HEADER = "agentic-flow-token-count"  # "estimate": no tokenizer for the upstream's model


async def messages(request: web.Request, body: Mapping[str, Any], req: MessagesRequest,
                   client: UpstreamClient) -> web.StreamResponse:
    state = request.app[STATE]
    # The admission bounds what waits here (529 beyond max_queue) and lets shutdown drain.
    async with state.admission.slot():
        if not req.stream:
            return web.json_response(await client.messages(body))
        async with aclosing(client.stream(body)) as events:
            first = await anext(events)  # an UpstreamError here becomes an HTTP error (middleware)
            response = web.StreamResponse(headers={**sse.HEADERS, "request-id": request[REQUEST_ID]})
            await response.prepare(request)
            task = asyncio.current_task()
            assert task is not None
            state.streams.add(task)
            try:
                await response.write(_frame(first))
                async for event in events:
                    await response.write(_frame(event))
            except asyncio.CancelledError:
                if not state.grace_over:
                    raise  # the client went away: aclosing closes the upstream response
                await response.write(sse.error_event("overloaded_error", "the server is shutting down; retry"))
            finally:
                state.streams.discard(task)
    await response.write_eof()
    return response


def _frame(event: Mapping[str, Any]) -> bytes:
    return sse.frame(str(event.get("type", "message")), event)


def count_tokens(body: Mapping[str, Any]) -> web.Response:
    prompt = {key: body.get(key) for key in ("system", "messages", "tools")}
    estimate = math.ceil(len(json.dumps(prompt, ensure_ascii=False)) / CHARS_PER_TOKEN)
    return web.json_response({"input_tokens": estimate}, headers={ESTIMATE_HEADER: "estimate"})


def model_entry(client: UpstreamClient) -> dict[str, str]:
    config = client.config
    name = config.model or config.provider
    return {"type": "model", "id": name, "display_name": f"{name} (via {config.provider} at {config.base_url})",
            "created_at": "2024-11-01T00:00:00Z"}
