"""A neutral `chat.Request` planned into what the engine runs: sampling, and the tool-use guidance.

Tool use has one owner here: the strict grammar (every call matches its tool's input_schema) and its
fallback (any JSON object per tool, for a schema llguidance refuses) are planned once, in the proxy,
and travel in `SamplingOptions`; the inference process only picks the fallback when the runtime
refuses the strict one (engine.ort.GrammarRefused), and the parser (serving.generation) validates
every call against its schema either way.

Sampling: the model's published sampling applies when the request sets none of temperature, top_p
and top_k (Claude Code sets none); a request that sets any of them gets Anthropic's rules
(temperature 1.0 unless given, top_k clamped).
"""

from __future__ import annotations

from dataclasses import replace

from ..chat import Prompt, Request, Sampling, ToolChoice, ToolSpec
from ..engine.base import GenerationRequest, SamplingOptions
from ..errors import InvalidRequestError
from ..models.catalog import Sampling as ModelSampling
from ..tooluse import Guidance, UnknownTool, plan
from ..tooluse.codeblocks import with_code_fields

# Below the vocabulary of every model the proxy serves (the smallest, SmolLM2's, has 49,152 tokens);
# past the first thousand candidates the probabilities left are negligible.
TOP_K_MAX = 1000


def tool_syntax(prompt: Prompt, code_blocks: bool) -> Prompt:
    """`code_blocks`: the tools' code fields are written as fenced blocks after the call's JSON
    (tooluse/codeblocks.py), in the prompt, the grammar and the parser alike."""
    return replace(prompt, tools=with_code_fields(prompt.tools)) if code_blocks and prompt.tools else prompt


def generation_request(req: Request, default: ModelSampling | None = None) -> GenerationRequest:
    """Raises InvalidRequestError (400) when tool_choice names a tool that is not there."""
    return GenerationRequest(req.prompt, sampling_options(req, default))


def sampling_options(req: Request, default: ModelSampling | None = None) -> SamplingOptions:
    options = _sampling(req.sampling, default)
    strict, fallback = guidance(req.prompt.tools, req.prompt.choice or ToolChoice())
    return replace(options, guidance=strict, fallback=fallback)


def guidance(tools: tuple[ToolSpec, ...], choice: ToolChoice) -> tuple[Guidance | None, Guidance | None]:
    """The strict grammar and the looser one to fall back on (None when nothing is looser)."""
    try:
        strict = plan(tools, choice).guidance
    except UnknownTool as exc:
        raise InvalidRequestError(f"tool_choice.name: {exc}") from None
    if strict is None:
        return None, None
    loose = plan(tuple(ToolSpec(t.name, t.description, None) for t in tools), choice).guidance
    return strict, loose if loose != strict else None


def _sampling(sampling: Sampling, default: ModelSampling | None) -> SamplingOptions:
    unset = sampling.temperature is None and sampling.top_p is None and sampling.top_k is None
    if default is not None and unset:
        return SamplingOptions(max_tokens=sampling.max_tokens, temperature=default.temperature,
                               top_p=default.top_p, top_k=default.top_k, stop_sequences=sampling.stop_sequences,
                               seed=sampling.seed)
    return SamplingOptions(
        max_tokens=sampling.max_tokens,
        temperature=1.0 if sampling.temperature is None else sampling.temperature,  # Anthropic's default
        top_p=sampling.top_p,
        # Above TOP_K_MAX top_k is clamped, so the engine never sees a value beyond its vocabulary or
        # its 32-bit integer.
        top_k=min(sampling.top_k, TOP_K_MAX) if sampling.top_k else None,
        stop_sequences=sampling.stop_sequences,
        seed=sampling.seed,
    )
