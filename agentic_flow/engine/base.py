"""The narrow interface between the proxy and an inference engine.

The proxy sees only this module: a `Prompt` (the neutral chat turns with their tool calls and results,
and the tools on offer: agentic_flow.chat), `SamplingOptions` (with the tool-use guidance), and
an `Engine` whose `generate()` returns a `Generation`, an async iterator of text deltas that knows
its stop reason and usage once exhausted.  The real engine lives in `engine.client` (driving the
inference process) and a fake in tests implements the same interface.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ..chat import Prompt, Role, TokenLogprob, Turn
from ..errors import EngineError
from ..tooluse import Guidance

# The engine's own reasons: tool_use is the parser's to decide (serving.generation), never the engine's.
StopReason = Literal["end_turn", "max_tokens", "stop_sequence"]
# ok: serving; restarting: the inference process died and a new one is loading (requests are refused
# meanwhile); fatal: it kept dying and the engine gave up (the proxy exits).
EngineState = Literal["ok", "restarting", "fatal"]
# Batches the inference process steps in turn (engine.scheduler): the engine runs up to
# max_batch x MAX_BATCHES generations at once, and the proxy admits that many.
MAX_BATCHES = 2

__all__ = [
    "MAX_BATCHES",
    "Completion",
    "Engine",
    "EngineInfo",
    "EngineState",
    "EngineStats",
    "Generation",
    "GenerationRequest",
    "GrammarRefused",
    "Prompt",
    "Role",
    "SamplingOptions",
    "StopReason",
    "Turn",
]


class GrammarRefused(EngineError):
    """The runtime (llguidance) refused a request's grammar when its generator was created
    (engine.ort); the scheduler then takes the request's `SamplingOptions.fallback`."""


@dataclass(frozen=True)
class SamplingOptions:
    max_tokens: int
    temperature: float = 1.0  # 0 means greedy
    top_p: float | None = None
    top_k: int | None = None
    stop_sequences: tuple[str, ...] = ()
    seed: int | None = None
    # The constraint of a request with tools (tooluse.plan).  A guided request runs in a batch of its
    # own and is never rebuilt from its tokens: tokens re-appended at a rebuild are not fed to the grammar.
    guidance: Guidance | None = None
    # The looser grammar (any JSON object per tool) the worker takes when llguidance refuses `guidance`
    # (engine.ort raises GrammarRefused); planned with it, in the proxy (serving.planning).
    fallback: Guidance | None = None
    # Score every generated token (its log probability and this many alternatives, engine.logprobs);
    # None: no scores, and no logits are read for this request.
    logprobs: int | None = None


@dataclass(frozen=True)
class GenerationRequest:
    prompt: Prompt
    options: SamplingOptions
    # The caller shows nothing before the generation ends (a non-streaming answer): the engine may hold
    # the text back until then, so that a failure of the inference process at any point can be re-run
    # unseen.  A streaming caller leaves it False: then only a failure before the first delta is.
    buffered: bool = False


@dataclass
class Completion:
    """Filled in when a generation ends."""

    stop_reason: StopReason = "end_turn"
    stop_sequence: str | None = None
    output_tokens: int = 0
    # Prompt tokens whose KV cache was reused from an earlier request (a prefix-cache hit): counted in
    # Generation.input_tokens too; the proxy reports them as cache_read_input_tokens and the rest as
    # input_tokens, as Anthropic does.
    cached_tokens: int = 0


class Generation(Protocol):
    """One running generation.  Iterate it for text deltas; `completion` is final once iteration ends.
    `aclose()` (or abandoning the iteration) cancels it and frees the engine's resources at once."""

    input_tokens: int
    # The prefix-cache reuse expected when the request was queued (known before the first token, for
    # message_start); `completion.cached_tokens` is what was actually reused.
    expected_cached_tokens: int
    completion: Completion
    # Every generated token's score so far, in order (SamplingOptions.logprobs; empty otherwise): a
    # token's score arrives before the text it adds is yielded.
    logprobs: list[TokenLogprob]

    def __aiter__(self) -> AsyncIterator[str]: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class EngineInfo:
    model_name: str
    model_path: str
    providers: tuple[str, ...]
    context_length: int
    created_at: str = "2024-11-01T00:00:00Z"  # surfaces in /v1/models
    speculation: str = "off"  # speculative decoding, in words (engine/ort.py), shown in /health


@dataclass
class EngineStats:
    running: int = 0
    error: str | None = None  # set when the engine can no longer serve (e.g. its process died)
    state: EngineState = "ok"
    extra: dict[str, object] = field(default_factory=dict)


class Engine(Protocol):
    info: EngineInfo

    async def count_tokens(self, prompt: Prompt) -> int: ...

    async def generate(self, request: GenerationRequest) -> Generation:
        """Start a generation.  Raises PromptTooLong (with both numbers) before any text is produced,
        so the caller can still answer with an HTTP error."""
        ...

    def stats(self) -> EngineStats: ...

    async def close(self) -> None: ...
