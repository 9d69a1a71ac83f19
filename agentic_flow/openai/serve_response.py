"""SERVE direction, response: the neutral answer of a generation (`agentic_flow.chat`) -> OpenAI's
`chat.completion` or chunk stream.

`to_chat_completion` converts whole `chat.Answer`s (one per choice).  `ChunkEncoder` converts the
neutral events of a generation one at a time into `chat.completion.chunk` dicts, in OpenAI's order:

    a role chunk ({"role": "assistant", "content": null}, as OpenAI), content deltas, tool_calls deltas (the first
    for each call carries index, id, type and name with empty arguments, later ones argument
    fragments), a final chunk with `finish_reason`, then - with stream_options.include_usage - a
    chunk with `choices: []` and the usage.  Every chunk and completion carries `system_fingerprint`
when the backend names its model build (`fingerprint`).

Several choices (`n`): their events come interleaved as `chat.ChoiceEvent`s and each chunk names its
choice's `index`; the usage chunk follows the last choice's finish.  Usage as OpenAI counts it: the
prompt once (the first choice's count and cache reads), the completion tokens of every choice summed.

Log probabilities (a request with `logprobs: true`): each text event's token scores become
`logprobs.content` entries, {token, logprob, bytes, top_logprobs}; `bytes` is the UTF-8 of `token`.

`chat_stream` frames that as SSE bytes ending with `data: [DONE]`.  Usage: OpenAI's prompt_tokens
counts every prompt token, cached or not, and cached_tokens the prefix-cache reads.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from datetime import datetime

from .. import chat
from .errors import openai_error_body, openai_error_from_anthropic
from .sse import DONE, data_frame

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: object) -> str:
    return FINISH_REASONS.get(str(stop_reason), "stop")


def chat_usage(usage: chat.Usage) -> dict[str, object]:
    prompt, completion = usage.input_tokens, usage.output_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


def new_completion_id() -> str:
    return chat.new_id("chatcmpl-")


def fingerprint(model_name: str, build: str) -> str:
    """`system_fingerprint`: the served model's name and a digest of its build (what changes when the
    model files are rebuilt), e.g. `smollm2-135m@3fa9c2d1`."""
    return f"{model_name}@{hashlib.sha256(build.encode()).hexdigest()[:8]}"


def summed_usage(usages: Sequence[chat.Usage]) -> chat.Usage:
    """Several choices' usage as OpenAI reports it: the prompt once, the completions summed."""
    first = usages[0]
    return chat.Usage(first.input_tokens, first.cached_tokens, sum(u.output_tokens for u in usages))


def token_logprobs(scores: Sequence[chat.TokenLogprob]) -> list[dict[str, object]]:
    return [{"token": s.token, "logprob": s.logprob, "bytes": list(s.token.encode()),
             "top_logprobs": [{"token": c.token, "logprob": c.logprob, "bytes": list(c.token.encode())}
                              for c in s.top]}
            for s in scores]


def choice_logprobs(scores: Sequence[chat.TokenLogprob]) -> dict[str, object]:
    return {"content": token_logprobs(scores), "refusal": None}


def to_chat_completion(answer: chat.Answer | Sequence[chat.Answer], *, completion_id: str, model: str,
                       created: int | None = None, system_fingerprint: str | None = None,
                       logprobs: bool = False) -> dict:
    """Whole answers (one, or one per choice in order) as a `chat.completion`; `model` is echoed as the
    client sent it.  `logprobs`: the request asked for them."""
    answers = (answer,) if isinstance(answer, chat.Answer) else tuple(answer)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": model,
        "choices": [{"index": i, "message": _message(a), "logprobs": choice_logprobs(a.logprobs) if logprobs else None,
                     "finish_reason": finish_reason(a.stop.reason)} for i, a in enumerate(answers)],
        "usage": chat_usage(summed_usage([a.stop.usage for a in answers])),
        "system_fingerprint": system_fingerprint,
    }


def _message(answer: chat.Answer) -> dict[str, object]:
    texts = [part for part in answer.content if isinstance(part, str)]
    calls = [{"id": part.id, "type": "function",
              "function": {"name": part.name, "arguments": json.dumps(dict(part.input), ensure_ascii=False)}}
             for part in answer.content if isinstance(part, chat.ToolCall)]
    # OpenAI sends content null, not "", when the reply is only tool calls.
    content = "".join(texts) if texts or not calls else None
    reply: dict[str, object] = {"role": "assistant", "content": content}
    if calls:
        reply["tool_calls"] = calls
    return reply


class ChunkEncoder:
    """Neutral events in, `chat.completion.chunk` dicts out.  One instance per stream; `choices`: how
    many choices' events it is fed (`chat.ChoiceEvent`s when more than one)."""

    def __init__(self, *, completion_id: str, model: str, include_usage: bool, created: int | None = None,
                 system_fingerprint: str | None = None, choices: int = 1) -> None:
        self.id = completion_id
        self.system_fingerprint = system_fingerprint
        self.model = model
        self.include_usage = include_usage
        self.created = int(time.time()) if created is None else created
        self.choices = choices
        self._calls: dict[int, int] = {}  # tool calls started so far, per choice: the next one's OpenAI index
        self._usage: dict[int, chat.Usage] = {}  # of the choices that have finished

    def feed(self, item: chat.Event | chat.ChoiceEvent) -> list[dict[str, object]]:
        index, event = (item.index, item.event) if isinstance(item, chat.ChoiceEvent) else (0, item)
        match event:
            case chat.Start():
                return [self._chunk(index, {"role": "assistant", "content": None})]
            case chat.Text(text=text, logprobs=scores) if text or scores:
                return [self._chunk(index, {"content": text}, logprobs=scores)]
            case chat.ToolCallStart():
                calls = self._calls[index] = self._calls.get(index, 0) + 1
                call = {"index": calls - 1, "id": event.id, "type": "function",
                        "function": {"name": event.name, "arguments": ""}}
                return [self._chunk(index, {"tool_calls": [call]})]
            case chat.ToolInputDelta(partial_json=partial) if partial:
                call = {"index": max(self._calls.get(index, 0) - 1, 0), "function": {"arguments": partial}}
                return [self._chunk(index, {"tool_calls": [call]})]
            case chat.Stop():
                return self._finish(index, event)
            case chat.Failure():
                return [openai_error_body(event.message, openai_error_from_anthropic("api_error"))]
        return []  # pings, empty deltas, the end of a call: nothing OpenAI would show

    def _finish(self, index: int, stop: chat.Stop) -> list[dict[str, object]]:
        chunks = [self._chunk(index, {}, finish_reason(stop.reason))]
        self._usage[index] = stop.usage
        if self.include_usage and len(self._usage) == self.choices:
            usage = summed_usage([self._usage[i] for i in sorted(self._usage)])
            chunks.append({**self._envelope(), "choices": [], "usage": chat_usage(usage)})
        return chunks

    def _chunk(self, index: int, delta: dict[str, object], finish: str | None = None,
               logprobs: Sequence[chat.TokenLogprob] = ()) -> dict[str, object]:
        choice = {"index": index, "delta": delta, "logprobs": choice_logprobs(logprobs) if logprobs else None,
                  "finish_reason": finish}
        chunk: dict[str, object] = {**self._envelope(), "choices": [choice]}
        if self.include_usage:
            chunk["usage"] = None  # as OpenAI: every chunk but the last carries usage null
        return chunk

    def _envelope(self) -> dict[str, object]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "system_fingerprint": self.system_fingerprint}


async def chat_stream(
    events: AsyncGenerator[chat.Event, None] | AsyncGenerator[chat.ChoiceEvent, None], *, model: str,
    include_usage: bool, completion_id: str | None = None, system_fingerprint: str | None = None,
    choices: int = 1,
) -> AsyncGenerator[bytes, None]:
    """The SSE bytes of a streamed Chat Completion.  A `chat.Failure` becomes OpenAI's in-stream error
    (`data: {"error": ...}`) and ends the stream without [DONE], as OpenAI does.  Closing this
    generator closes `events` (and so cancels the generation)."""
    encoder = ChunkEncoder(completion_id=completion_id or new_completion_id(), model=model,
                           include_usage=include_usage, system_fingerprint=system_fingerprint, choices=choices)
    async with aclosing(events):
        async for event in events:
            for chunk in encoder.feed(event):
                yield data_frame(chunk)
                if "error" in chunk:
                    return
    yield DONE


# --- /v1/models ---------------------------------------------------------------------------------

OWNED_BY = "agentic-flow"


def to_model(entry: Mapping[str, object]) -> dict[str, object]:
    """An Anthropic model entry (`id`, `created_at` as ISO 8601) as OpenAI's model object."""
    return {"id": entry["id"], "object": "model", "created": _unix(entry.get("created_at")), "owned_by": OWNED_BY}


def to_model_list(entries: Sequence[Mapping[str, object]]) -> dict[str, object]:
    return {"object": "list", "data": [to_model(entry) for entry in entries]}


def _unix(iso: object) -> int:
    try:
        return int(datetime.fromisoformat(str(iso).replace("Z", "+00:00")).timestamp())
    except ValueError:
        return int(time.time())
