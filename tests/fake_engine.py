"""A fake engine that implements the real interface (agentic_flow.engine.base.Engine), for handler
and serializer tests that need exact, scripted output.  The end-to-end tests use the real model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from agentic_flow.chat import TokenLogprob
from agentic_flow.engine.base import Completion, EngineInfo, EngineStats, GenerationRequest, Prompt


class FakeGeneration:
    """Implements the engine's Generation protocol: yields deltas, then fills in the completion."""

    def __init__(self, deltas: list[str], final: Completion, input_tokens: int = 7,
                 fail: Exception | None = None, delay: float = 0.0) -> None:
        self.input_tokens = input_tokens
        self.expected_cached_tokens = final.cached_tokens
        self.completion = Completion()
        self.logprobs: list[TokenLogprob] = []
        self.closed = False
        self._deltas = deltas
        self._final = final
        self._fail = fail
        self._delay = delay

    def __aiter__(self) -> AsyncIterator[str]:
        return self._run()

    async def _run(self) -> AsyncIterator[str]:
        for delta in self._deltas:
            if self._delay:
                await asyncio.sleep(self._delay)
            yield delta
        if self._fail is not None:
            raise self._fail
        self.completion = self._final

    async def aclose(self) -> None:
        self.closed = True


class FakeEngine:
    """Answers every request with `script` (or what `next_generation` returns); records requests."""

    def __init__(self, deltas: list[str] | None = None, final: Completion | None = None,
                 fail: Exception | None = None, delay: float = 0.0) -> None:
        self.info = EngineInfo("fake-model", "/models/fake", ("cpu",), 8192)
        self.deltas = deltas if deltas is not None else ["Hel", "lo"]
        self.final = final or Completion("end_turn", None, len(self.deltas))
        self.fail = fail
        self.delay = delay
        self.requests: list[GenerationRequest] = []
        self.generations: list[FakeGeneration] = []
        self.closed = False

    async def count_tokens(self, prompt: Prompt) -> int:
        for turn in prompt.turns:
            turn.content.encode()  # as the real tokenizer, which takes UTF-8: a lone surrogate fails here
        tools = sum(len(f"{t.name} {t.description} {t.input_schema}".split()) for t in prompt.tools)
        return sum(len(turn.content.split()) + 3 for turn in prompt.turns) + tools

    async def generate(self, request: GenerationRequest) -> FakeGeneration:
        self.requests.append(request)
        gen = FakeGeneration(list(self.deltas), self.final, await self.count_tokens(request.prompt),
                             self.fail, self.delay)
        self.generations.append(gen)
        return gen

    def stats(self) -> EngineStats:
        return EngineStats(running=sum(not g.closed for g in self.generations))

    async def close(self) -> None:
        self.closed = True
