"""A neutral `chat.Request` planned into what the engine runs: sampling, and the tool-use guidance.

Tool use has one owner here: the strict grammar (every call matches its tool's input_schema) and its
fallback (any JSON object per tool, for a schema llguidance refuses) are planned once, in the proxy,
and travel in `SamplingOptions`; the inference process only picks the fallback when the runtime
refuses the strict one (engine.ort.GrammarRefused), and the parser (serving.generation) validates
every call against its schema either way.

Structured output (`chat.OutputFormat`, OpenAI's response_format and Anthropic's output format) is
planned here too, through the same machinery: the schema is made safe as a tool's is
(tooluse.schema.prepare_any), and one with a keyword llguidance cannot enforce is refused with a 400
naming it, strict or not (a reply under a looser grammar would be passed off as conforming).  The
grammar is the whole reply (tooluse.grammar.output_guidance), with no fallback: a schema the runtime
still refuses is a 400 too (proxy.local_backend).  The schema is also shown to the model, in the
system turn (`OUTPUT_INSTRUCTION`), so that what the grammar allows is also what the model aims at.
Tools together with an output format are refused (400) unless tool_choice is none.

Sampling: the model's published sampling applies when the request sets none of temperature, top_p
and top_k (Claude Code sets none); a request that sets any of them gets Anthropic's rules
(temperature 1.0 unless given, top_k clamped).
"""

from __future__ import annotations

import json
from dataclasses import replace

from ..chat import OutputFormat, Prompt, Request, Sampling, ToolChoice, ToolSpec, Turn
from ..engine.base import GenerationRequest, SamplingOptions
from ..errors import InvalidRequestError
from ..models.catalog import Sampling as ModelSampling
from ..tooluse import Guidance, UnknownTool, plan
from ..tooluse.codeblocks import with_code_fields
from ..tooluse.grammar import output_guidance
from ..tooluse.schema import prepare_any

# Below the vocabulary of every model the proxy serves (the smallest, SmolLM2's, has 49,152 tokens);
# past the first thousand candidates the probabilities left are negligible.
TOP_K_MAX = 1000
OUTPUT_INSTRUCTION = "Answer with one JSON value that matches this JSON schema:\n{schema}"
OBJECT_INSTRUCTION = "Answer with one JSON object."
MAX_SHOWN_SCHEMA = 4000  # characters of the schema shown in the prompt (the grammar gets all of it)


def tool_syntax(prompt: Prompt, code_blocks: bool) -> Prompt:
    """`code_blocks`: the tools' code fields are written as fenced blocks after the call's JSON
    (tooluse/codeblocks.py), in the prompt, the grammar and the parser alike."""
    return replace(prompt, tools=with_code_fields(prompt.tools)) if code_blocks and prompt.tools else prompt


def generation_request(req: Request, default: ModelSampling | None = None) -> GenerationRequest:
    """Raises InvalidRequestError (400) when tool_choice names a tool that is not there, or for an
    output schema llguidance cannot enforce."""
    options = sampling_options(req, default)
    prompt = req.prompt if req.output is None else with_output_instruction(req.prompt, req.output)
    # buffered: a non-streaming answer is re-run unseen if the inference process dies at any point.
    return GenerationRequest(prompt, options, buffered=not req.stream)


def sampling_options(req: Request, default: ModelSampling | None = None) -> SamplingOptions:
    options = replace(_sampling(req.sampling, default), logprobs=req.logprobs)
    choice = req.prompt.choice or ToolChoice()
    if req.output is not None:
        if req.prompt.tools and choice.mode != "none":
            raise InvalidRequestError(f"{req.output.path}: an output format together with tools is not "
                                      "supported; send one or the other (or tool_choice none)")
        if req.prompt.prefill:
            raise InvalidRequestError(f"{req.output.path}: an output format cannot continue a final "
                                      "assistant message (prefill)")
        return replace(options, guidance=output_plan(req.output), fallback=None)
    strict, fallback = guidance(req.prompt.tools, choice)
    return replace(options, guidance=strict, fallback=fallback)


def output_plan(output: OutputFormat) -> Guidance:
    """The grammar of a structured reply; a 400 naming what llguidance cannot enforce."""
    if output.schema is None:
        return output_guidance(None)
    prepared = prepare_any(output.schema)
    if prepared.cut:
        raise InvalidRequestError(
            f"{output.path}: this schema uses {', '.join(sorted(prepared.cut))}, which the grammar cannot "
            "enforce (also: unknown formats, look-around patterns, unresolvable $refs); remove them")
    return output_guidance(prepared.schema)


def with_output_instruction(prompt: Prompt, output: OutputFormat) -> Prompt:
    """The system turn gains the schema (a first system turn is added when there is none)."""
    if output.schema is None:
        note = OBJECT_INSTRUCTION
    else:
        note = OUTPUT_INSTRUCTION.format(schema=json.dumps(output.schema, ensure_ascii=False)[:MAX_SHOWN_SCHEMA])
    turns = prompt.turns
    if turns and turns[0].role == "system":
        head = replace(turns[0], content=f"{turns[0].content}\n\n{note}" if turns[0].content else note)
        return replace(prompt, turns=(head, *turns[1:]))
    return replace(prompt, turns=(Turn("system", note), *turns))


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
