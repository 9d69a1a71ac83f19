"""Prompts and sampling shared by the tests that drive the real engine directly (the `engine` fixture
of conftest), without the proxy in front."""

from __future__ import annotations

from agentic_flow.engine.base import Prompt, SamplingOptions, Turn

FRANCE = Prompt((Turn("user", "What is the capital of France?"),))
STORY = Prompt((Turn("user", "Write a very long story about a dragon and a knight."),))


def greedy(max_tokens: int, stops: tuple[str, ...] = ()) -> SamplingOptions:
    return SamplingOptions(max_tokens=max_tokens, temperature=0.0, stop_sequences=stops)
