"""UPSTREAM direction, response: an OpenAI-compatible engine's answer -> Anthropic's message or events.

`to_anthropic_message` converts a whole `chat.completion`.  `StreamTranslator` converts chunks one at
a time into Anthropic stream events (dicts), emitting message_start on the first chunk, then text
and tool_use blocks with `input_json_delta`s, then message_delta and message_stop at the end.

Host quirks handled (golden tests in tests/test_openai_golden.py):
- vLLM: the first delta of a tool call carries id, type and name (arguments "" or absent), later
  deltas only `index` and argument fragments; an empty role chunk opens the stream;
- some hosts send a tool call's whole arguments in the same chunk as its name;
- Gemini: tool calls without `index`, `id: ""`, several calls in one chunk, and `finish_reason: "stop"`
  on a reply that called tools (we answer `tool_use`, which is what the client must act on);
- usage on the last chunk (`choices: []`), on the finishing chunk, or not at all (then 0);
- OpenRouter: a mid-stream failure arrives as a data event with an `error` object.

Stop reasons: stop->end_turn, length->max_tokens, tool_calls (or function_call)->tool_use,
content_filter->refusal (what Anthropic itself answers when a safety filter stops a reply).
Usage: OpenAI's prompt_tokens includes cached tokens; Anthropic's input_tokens does not, so
input_tokens = prompt_tokens - cached_tokens and cache_read_input_tokens = cached_tokens.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Mapping
from typing import Any

from .errors import UpstreamError, error_message
from .types import ChatCompletion, ChatCompletionChunk, ResponseToolCall, Usage

Event = dict[str, Any]

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

_ALPHABET = string.ascii_letters + string.digits


def _random_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def stop_reason(finish_reason: str | None, called_tools: bool) -> str:
    if called_tools and finish_reason in (None, "stop"):
        return "tool_use"  # Gemini says "stop" after a tool call
    return STOP_REASONS.get(finish_reason or "stop", "end_turn")


def anthropic_usage(usage: Usage | None) -> dict[str, int]:
    usage = usage or Usage()
    cached = usage.cached_tokens
    return {
        "input_tokens": max(usage.prompt_tokens - cached, 0),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": usage.completion_tokens,
    }


def parse_arguments(arguments: str | Mapping[str, object] | None) -> dict[str, object]:
    if isinstance(arguments, Mapping):
        return dict(arguments)
    if not arguments or not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        raise UpstreamError(f"the upstream returned tool arguments that are not JSON: {arguments[:200]}") \
            from None
    if not isinstance(value, dict):
        raise UpstreamError(f"the upstream returned tool arguments that are not an object: {arguments[:200]}")
    return value


def to_anthropic_message(body: Mapping[str, object], *, model: str) -> Event:
    """A non-streaming `chat.completion` as an Anthropic message; `model` echoes the client's name."""
    if isinstance(body.get("error"), Mapping):
        raise UpstreamError(f"upstream error: {error_message(body)}")
    completion = ChatCompletion.model_validate(body)
    if not completion.choices:
        raise UpstreamError("the upstream returned a completion without choices")
    choice = completion.choices[0]
    content: list[Event] = []
    text = choice.message.content or choice.message.refusal
    if text:
        content.append({"type": "text", "text": text})
    for call in choice.message.tool_calls or []:
        function = call.function
        content.append({
            "type": "tool_use",
            "id": call.id or _random_id("toolu_"),
            "name": function.name if function and function.name else "",
            "input": parse_arguments(function.arguments if function else None),
        })
    refused = choice.message.refusal and not choice.message.content
    finish = "content_filter" if refused else choice.finish_reason
    return {
        "id": _random_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(finish, bool(choice.message.tool_calls)),
        "stop_sequence": None,
        "usage": anthropic_usage(completion.usage),
    }


class StreamTranslator:
    """OpenAI chunks in (`feed`), Anthropic events out; `finish` closes the message.  One per stream."""

    def __init__(self, *, model: str) -> None:
        self.model = model
        self.message_id = _random_id("msg_")
        self.started = False
        self._block = -1  # the Anthropic index of the open block, -1 when none
        self._block_kind: str | None = None  # "text" or "tool"
        self._tools: dict[int, int] = {}  # upstream tool-call key -> Anthropic block index
        self._tool_ids: dict[int, str | None] = {}
        self._next_key = 0  # keys for tool calls that come without an index (Gemini)
        self._finish_reason: str | None = None
        self._usage: Usage | None = None

    @property
    def finished(self) -> bool:
        """Whether the upstream said why it stopped; a stream cut before that is incomplete."""
        return self._finish_reason is not None

    def feed(self, data: Mapping[str, object]) -> list[Event]:
        chunk = ChatCompletionChunk.model_validate(data)
        if chunk.error is not None:
            raise UpstreamError(f"upstream error during the stream: {error_message({'error': chunk.error})}")
        events = self._start()
        if chunk.usage is not None:
            self._usage = chunk.usage
        for choice in chunk.choices[:1]:
            delta = choice.delta
            if delta.content:
                events += self._text(delta.content)
            for call in delta.tool_calls or []:
                events += self._tool_call(call)
            if choice.finish_reason:
                self._finish_reason = choice.finish_reason
        return events

    def finish(self) -> list[Event]:
        events = self._start() + self._close_block()
        usage = anthropic_usage(self._usage)
        reason = stop_reason(self._finish_reason, bool(self._tools))
        events.append(
            {"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": None}, "usage": usage}
        )
        events.append({"type": "message_stop"})
        return events

    def _start(self) -> list[Event]:
        if self.started:
            return []
        self.started = True
        message: Event = {
            "id": self.message_id, "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                      "output_tokens": 0},
        }
        return [{"type": "message_start", "message": message}]

    def _text(self, text: str) -> list[Event]:
        events = []
        if self._block_kind != "text":
            events = self._open({"type": "text", "text": ""}, "text")
        return [*events, self._delta({"type": "text_delta", "text": text})]

    def _tool_call(self, call: ResponseToolCall) -> list[Event]:
        function = call.function
        name = function.name if function else None
        arguments = function.arguments if function else None
        if isinstance(arguments, Mapping):  # a host that sends an object: one whole fragment
            arguments = json.dumps(arguments, ensure_ascii=False)
        key = self._key(call, name)
        events: list[Event] = []
        if key not in self._tools:
            tool_id = call.id or _random_id("toolu_")
            block = {"type": "tool_use", "id": tool_id, "name": name or "", "input": {}}
            events = self._open(block, "tool")
            self._tools[key] = self._block
            self._tool_ids[key] = call.id or None
        elif self._tools[key] != self._block:
            raise UpstreamError("the upstream interleaved the arguments of two tool calls")
        if arguments:
            events.append(self._delta({"type": "input_json_delta", "partial_json": arguments}))
        return events

    def _key(self, call: ResponseToolCall, name: str | None) -> int:
        """Which tool call a delta belongs to.  With an index, that index - unless a new id arrives
        at an index already in use (Ollama-style hosts reuse index 0).  Without one (Gemini), a
        delta that names a function starts a new call and any other continues the last one."""
        if call.index is not None:
            key = call.index
            known = self._tool_ids.get(key)
            if key in self._tools and call.id and known and call.id != known:
                key = self._fresh_key()
            return key
        if name or not self._tools:
            return self._fresh_key()
        return max(self._tools, key=lambda k: self._tools[k])

    def _fresh_key(self) -> int:
        self._next_key += 1
        return -self._next_key  # negative: never collides with an upstream index

    def _open(self, block: Event, kind: str) -> list[Event]:
        events = self._close_block()
        self._block += 1
        self._block_kind = kind
        return [*events, {"type": "content_block_start", "index": self._block, "content_block": block}]

    def _close_block(self) -> list[Event]:
        if self._block_kind is None:
            return []
        self._block_kind = None
        return [{"type": "content_block_stop", "index": self._block}]

    def _delta(self, delta: Event) -> Event:
        return {"type": "content_block_delta", "index": self._block, "delta": delta}
