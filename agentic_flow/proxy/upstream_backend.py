"""The upstream backend: the proxy's Anthropic endpoints answered by an OpenAI-compatible server (vLLM,
Ray Serve, OpenRouter, Gemini, another agentic-flow proxy) through `openai.upstream.UpstreamClient`.

Validation stays ours (the request was parsed as on the local path); the client translates to Chat
Completions and back, retries before any output, and closes the upstream response when our client goes
away.  The answer is checked against what the request asked for (serving.contract: a forced tool
call, the tools offered, their schemas): one that breaks it is a 502 (BrokenContract) before a stream,
an `error` event inside one, never a success.  The stream writer prepares the response only once the
upstream's first event arrived, so an upstream failure before it is a real HTTP status (with
`retry-after` passed on) rather than an error inside a 200.

count_tokens has no tokenizer here: it answers an estimate, len(JSON of the prompt) / 4, which is
what clients use it for (budgeting a context), and says so in a header.  Chat Completions are not
served in this mode: the client can call the upstream directly.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any

from ..anthropic import sse
from ..anthropic.types import CountTokensRequest, MessagesRequest
from ..errors import InvalidRequestError, NotFound
from ..openai.errors import BrokenContract
from ..openai.types import ChatCompletionRequest
from ..openai.upstream import UpstreamClient
from ..serving import contract
from .backend import Answer, BackendHealth, Job, Stream, TokenCount
from .health import HealthStatus

CHARS_PER_TOKEN = 4
CHAT_COMPLETIONS = "/v1/chat/completions"


class UpstreamBackend:
    def __init__(self, client: UpstreamClient) -> None:
        self.client = client

    @property
    def capacity(self) -> int:
        return self.client.config.max_in_flight  # as many as the upstream client sends at once

    async def start(self) -> None:
        await self.client.start()

    def messages(self, body: Mapping[str, Any], req: MessagesRequest) -> Job:
        if req.output_schema is not None:  # never passed off as conforming by a host that ignores it
            raise InvalidRequestError(f"{req.output_path}: structured output is not served in upstream mode")

        async def run() -> Answer:
            if not req.stream:
                message = await self.client.messages(body)
                if (problem := contract.check(body, message)) is not None:
                    raise BrokenContract(problem)
                return message
            return Stream(_frames(_honest(body, self.client.stream(body))), sse.error_event)
        return run

    def check_chat_completions(self) -> None:
        raise NotFound(f"{CHAT_COMPLETIONS} is not served in upstream mode: call the upstream "
                       f"({self.client.config.base_url}) directly")

    def chat_completions(self, req: ChatCompletionRequest) -> Job:
        raise NotFound(f"{CHAT_COMPLETIONS} is not served in upstream mode: call the upstream "
                       f"({self.client.config.base_url}) directly")

    async def count_tokens(self, body: Mapping[str, Any], req: CountTokensRequest) -> TokenCount:
        prompt = {key: body.get(key) for key in ("system", "messages", "tools")}
        return TokenCount(math.ceil(len(json.dumps(prompt, ensure_ascii=False)) / CHARS_PER_TOKEN), estimate=True)

    def model_entry(self) -> dict[str, str]:
        config = self.client.config
        name = config.model or config.provider
        return {"type": "model", "id": name, "display_name": f"{name} (via {config.provider} at {config.base_url})",
                "created_at": "2024-11-01T00:00:00Z"}

    def health(self) -> BackendHealth:
        config = self.client.config
        return BackendHealth(status=HealthStatus.OK, model=config.model or "(the client's model name)",
                             provider=config.provider, upstream=config.base_url)

    async def close(self) -> None:
        await self.client.close()


async def _honest(body: Mapping[str, Any], events: AsyncGenerator[dict[str, Any], None]
                  ) -> AsyncGenerator[dict[str, Any], None]:
    """The upstream's events while they keep the request's promises (serving.contract); an `error`
    event instead of the first one that breaks them, and nothing after it."""
    watch = contract.StreamCheck.of(body)
    async with aclosing(events):
        async for event in events:
            if (problem := watch.feed(event)) is not None:
                yield BrokenContract(problem).anthropic_body()
                return
            yield event


async def _frames(events: AsyncGenerator[dict[str, Any], None]) -> AsyncGenerator[bytes, None]:
    """The upstream's Anthropic events, framed; closing this closes the upstream response."""
    async with aclosing(events):
        async for event in events:
            yield sse.frame(str(event.get("type", "message")), event)
