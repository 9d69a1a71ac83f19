"""SERVE direction, response: the core's Anthropic answer -> OpenAI's `chat.completion` or chunk stream.

`to_chat_completion` converts a whole Anthropic message.  `ChunkEncoder` converts Anthropic stream
events one at a time into `chat.completion.chunk` dicts, in OpenAI's order:

    a role chunk ({"role": "assistant", "content": ""}), content deltas, tool_calls deltas (the first
    for each call carries index, id, type and name with empty arguments, later ones argument
    fragments), a final chunk with `finish_reason`, then - with stream_options.include_usage - a
    chunk with `choices: []` and the usage.

`chat_stream` frames that as SSE bytes ending with `data: [DONE]`.  Usage: OpenAI's prompt_tokens
counts every prompt token, cached or not; Anthropic splits them into input_tokens, cache reads and
cache writes, so prompt_tokens is their sum and cached_tokens the cache reads.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from datetime import datetime

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


def chat_usage(usage: Mapping[str, object]) -> dict[str, object]:
    cached = _int(usage.get("cache_read_input_tokens"))
    prompt = _int(usage.get("input_tokens")) + cached + _int(usage.get("cache_creation_input_tokens"))
    completion = _int(usage.get("output_tokens"))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def new_completion_id(message_id: str) -> str:
    return "chatcmpl-" + message_id.removeprefix("msg_")


def to_chat_completion(message: Mapping[str, object], *, model: str, created: int | None = None) -> dict:
    """A non-streaming Anthropic message as a `chat.completion`; `model` is echoed as the client sent it."""
    texts: list[str] = []
    calls: list[dict[str, object]] = []
    for block in _blocks(message.get("content")):
        if block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_use":
            arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
            calls.append({"id": block.get("id"), "type": "function",
                          "function": {"name": block.get("name"), "arguments": arguments}})
    # OpenAI sends content null, not "", when the reply is only tool calls.
    content = "".join(texts) if texts or not calls else None
    reply: dict[str, object] = {"role": "assistant", "content": content}
    if calls:
        reply["tool_calls"] = calls
    usage = message.get("usage")
    return {
        "id": new_completion_id(str(message.get("id", ""))),
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": model,
        "choices": [{"index": 0, "message": reply, "logprobs": None,
                     "finish_reason": finish_reason(message.get("stop_reason"))}],
        "usage": chat_usage(usage if isinstance(usage, Mapping) else {}),
    }


def _blocks(content: object) -> list[Mapping[str, object]]:
    return [block for block in content if isinstance(block, Mapping)] if isinstance(content, list) else []


class ChunkEncoder:
    """Anthropic stream events in, `chat.completion.chunk` dicts out.  One instance per stream."""

    def __init__(self, *, model: str, include_usage: bool, created: int | None = None) -> None:
        self.model = model
        self.include_usage = include_usage
        self.created = int(time.time()) if created is None else created
        self.id = "chatcmpl-"
        self._tool_index: dict[int, int] = {}  # Anthropic block index -> OpenAI tool_calls index
        self._usage: dict[str, object] = {}
        self._stop_reason: object = None

    def feed(self, event: Mapping[str, object]) -> list[dict[str, object]]:
        kind = event.get("type")
        if kind == "message_start":
            return self._start(event)
        if kind == "content_block_start":
            return self._block_start(event)
        if kind == "content_block_delta":
            return self._delta(event)
        if kind == "message_delta":
            self._stop_reason = _mapping(event.get("delta")).get("stop_reason")
            self._usage.update(_mapping(event.get("usage")))
            return []
        if kind == "message_stop":
            return self._finish()
        if kind == "error":
            error = _mapping(event.get("error"))
            error_type = openai_error_from_anthropic(str(error.get("type", "api_error")))
            return [openai_error_body(str(error.get("message", "")), error_type)]
        return []  # ping, content_block_stop, thinking deltas: nothing OpenAI would show

    def _start(self, event: Mapping[str, object]) -> list[dict[str, object]]:
        message = _mapping(event.get("message"))
        self.id = new_completion_id(str(message.get("id", "")))
        self._usage.update(_mapping(message.get("usage")))
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, event: Mapping[str, object]) -> list[dict[str, object]]:
        block = _mapping(event.get("content_block"))
        if block.get("type") != "tool_use":
            return []
        index = len(self._tool_index)
        self._tool_index[_int(event.get("index"))] = index
        call = {"index": index, "id": block.get("id"), "type": "function",
                "function": {"name": block.get("name"), "arguments": ""}}
        return [self._chunk({"tool_calls": [call]})]

    def _delta(self, event: Mapping[str, object]) -> list[dict[str, object]]:
        delta = _mapping(event.get("delta"))
        if delta.get("type") == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if delta.get("type") == "input_json_delta" and delta.get("partial_json"):
            index = self._tool_index.get(_int(event.get("index")), 0)
            call = {"index": index, "function": {"arguments": delta["partial_json"]}}
            return [self._chunk({"tool_calls": [call]})]
        return []

    def _finish(self) -> list[dict[str, object]]:
        chunks = [self._chunk({}, finish_reason(self._stop_reason))]
        if self.include_usage:
            chunks.append({**self._envelope(), "choices": [], "usage": chat_usage(self._usage)})
        return chunks

    def _chunk(self, delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        chunk: dict[str, object] = {**self._envelope(), "choices": [choice]}
        if self.include_usage:
            chunk["usage"] = None  # as OpenAI: every chunk but the last carries usage null
        return chunk

    def _envelope(self) -> dict[str, object]:
        return {
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model
        }


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


async def chat_stream(
    events: AsyncIterable[Mapping[str, object]], *, model: str, include_usage: bool
) -> AsyncIterator[bytes]:
    """The SSE bytes of a streamed Chat Completion.  An Anthropic `error` event becomes OpenAI's
    in-stream error (`data: {"error": ...}`) and ends the stream without [DONE], as OpenAI does."""
    encoder = ChunkEncoder(model=model, include_usage=include_usage)
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
