"""The narrow interface between the proxy and an inference engine.

The proxy sees only this module: a `ChatPrompt` (chat turns with their tool calls and results, and the
tools on offer, converted from Anthropic blocks), `SamplingOptions` (with the tool-use guidance), and
an `Engine` whose `generate()` returns a `Generation`, an async iterator of text deltas that knows
its stop reason and usage once exhausted.  The real engine lives in `engine.client` (driving the
inference process) and a fake in tests implements the same interface.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ..tooluse import Guidance, ToolCall, ToolChoice, ToolResult, ToolSpec, Turn

StopReason = Literal["end_turn", "max_tokens", "stop_sequence"]
# ok: serving; restarting: the inference process died and a new one is loading (requests are refused
# meanwhile); fatal: it kept dying and the engine gave up (the proxy exits).
EngineState = Literal["ok", "restarting", "fatal"]
Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatTurn:
    role: Role
    content: str
    # Tool use, as the model's chat template renders it (tooluse.render): an assistant turn's calls
    # follow its text; a user turn's results come before its text.
    calls: tuple[ToolCall, ...] = ()
    results: tuple[ToolResult, ...] = ()

    def turn(self) -> Turn:
        return Turn(self.role, self.content, self.calls, self.results)


@dataclass(frozen=True)
class ChatPrompt:
    """What the model's chat template renders.  A final assistant turn is a prefill: the reply
    continues it (the template gets the turns before it plus a generation prompt, then its text)."""

    turns: tuple[ChatTurn, ...]
    tools: tuple[ToolSpec, ...] = ()  # rendered into the prompt the way the template lists tools
    choice: ToolChoice | None = None  # None: auto

    @property
    def prefill(self) -> str:
        if self.turns and self.turns[-1].role == "assistant" and not self.turns[-1].calls:
            return self.turns[-1].content
        return ""


@dataclass(frozen=True)
class SamplingOptions:
    max_tokens: int
    temperature: float = 1.0  # 0 means greedy
    top_p: float | None = None
    top_k: int | None = None
    stop_sequences: tuple[str, ...] = ()
    seed: int | None = None
    # The constraint of a request with tools (tooluse.plan).  A guided request runs in a batch of its
    # own and is never rebuilt from its tokens (the grammar would restart): see tooluse/INTEGRATION.md.
    guidance: Guidance | None = None


@dataclass(frozen=True)
class GenerationRequest:
    prompt: ChatPrompt
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

    def __aiter__(self) -> AsyncIterator[str]: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class EngineInfo:
    model_name: str
    model_path: str
    providers: tuple[str, ...]
    context_length: int
    created_at: str = "2024-11-01T00:00:00Z"  # surfaces in /v1/models


@dataclass
class EngineStats:
    running: int = 0
    error: str | None = None  # set when the engine can no longer serve (e.g. its process died)
    state: EngineState = "ok"
    extra: dict[str, object] = field(default_factory=dict)


class Engine(Protocol):
    info: EngineInfo

    async def count_tokens(self, prompt: ChatPrompt) -> int: ...

    async def generate(self, request: GenerationRequest) -> Generation:
        """Start a generation.  Raises PromptTooLong (with both numbers) before any text is produced,
        so the caller can still answer with an HTTP error."""
        ...

    def stats(self) -> EngineStats: ...

    async def close(self) -> None: ...
