"""The aiohttp application: routes and middlewares."""

from __future__ import annotations

from aiohttp import web

from . import openai_views, views
from .middlewares import API_KEY, auth_middleware, errors_middleware
from .state import STATE, ProxyState


def create_app(state: ProxyState, *, api_key: str | None, max_body: int) -> web.Application:
    # The idle clock sees every request, a refused one too (proxy/idle.py).
    app = web.Application(middlewares=[state.idle.middleware(), errors_middleware, auth_middleware],
                          client_max_size=max_body)
    app[STATE] = state
    app[API_KEY] = api_key or ""
    # Query strings (Claude Code sends ?beta=true) do not take part in routing.
    app.router.add_post("/v1/messages", views.messages)
    app.router.add_post("/v1/messages/count_tokens", views.count_tokens)
    app.router.add_post(openai_views.CHAT_COMPLETIONS, openai_views.chat_completions)
    app.router.add_get("/v1/models", views.list_models)
    app.router.add_get("/v1/models/{model_id}", views.get_model)
    # OpenAI clients configured with a base URL without /v1 (llama.cpp's tests, several others).
    app.router.add_post(openai_views.CHAT_COMPLETIONS_BARE, openai_views.chat_completions)
    app.router.add_get("/models", views.list_models)
    app.router.add_get("/models/{model_id}", views.get_model)
    app.router.add_get("/health", views.health)
    return app
