"""OpenAI's Chat Completions: `POST /v1/chat/completions` (and `/v1/models` in OpenAI's shape, in views).

A Chat Completions request is validated in OpenAI's terms (`openai.types`) and handed to the backend,
which decodes it into the neutral request (`openai.serve_request`) and answers in OpenAI's shape
(`openai.serve_response`); it never passes through the Anthropic route's types.  Errors on this route
are rendered in OpenAI's envelope by the error middleware (`middlewares.OPENAI_ROUTES`).
"""

from __future__ import annotations

from aiohttp import web

from ..openai import types as oai
from .state import STATE
from .streaming import respond
from .views import read_json

CHAT_COMPLETIONS = "/v1/chat/completions"
CHAT_COMPLETIONS_BARE = "/chat/completions"  # the same route without /v1


async def chat_completions(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    state.backend.check_chat_completions()
    req = oai.parse_chat_request(await read_json(request))
    job = state.backend.chat_completions(req)
    async with state.admission.slot():
        return await respond(request, await job())
