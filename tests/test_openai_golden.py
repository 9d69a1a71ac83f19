"""Golden translation tests: documented response shapes of vLLM, OpenRouter and Gemini's OpenAI
endpoint, streamed and not, with tool calls, through the UPSTREAM translator into Anthropic messages.

Every event stream is validated against the anthropic SDK's event types and rebuilt with the SDK's
own accumulator, so a test passes only if a real Anthropic client would see the expected message.

Sources of the shapes:
- vLLM: https://docs.vllm.ai/en/latest/features/tool_calling/ (tool_calls, finish_reason
  "tool_calls"); vllm/entrypoints/openai/serving_chat.py and the tool parsers (first stream delta
  {"role": "assistant", "content": ""}; a tool call's first delta DeltaToolCall(id="chatcmpl-tool-...",
  type="function", index=i, function={"name": ...}) and later deltas only index + argument fragments;
  a last chunk with "choices": [] and usage when stream_options.include_usage; prompt_tokens_details
  with cached_tokens under prefix caching).
- OpenRouter: https://openrouter.ai/docs/api-reference/streaming (": OPENROUTER PROCESSING" comments;
  mid-stream errors as a data event with an "error" object and finish_reason "error"), and
  https://openrouter.ai/docs/api-reference/overview (native_finish_reason, provider, usage).
- Gemini: https://ai.google.dev/gemini-api/docs/openai (base URL .../v1beta/openai/), and the
  behaviour reported at https://discuss.ai.google.dev/t/openai-compatibilioty-with-jnodejs-error/50746
  (a streamed tool call in ONE chunk: no "index", "id": "", whole arguments, finish_reason "stop",
  usage on the same chunk).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentic_flow.openai.errors import UpstreamError
from agentic_flow.openai.sse import DONE_DATA
from agentic_flow.openai.upstream_response import StreamTranslator, to_anthropic_message

from .openai_support import anthropic_message, parse_sse, sse_bytes


def translate_stream(body: bytes, model: str = "claude-x") -> list[dict[str, Any]]:
    translator = StreamTranslator(model=model)
    events: list[dict[str, Any]] = []
    for data in parse_sse(body):
        if data == DONE_DATA:
            break
        events += translator.feed(json.loads(data))
    return events + translator.finish()


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "up",
            "choices": choices, **extra}


# --- vLLM --------------------------------------------------------------------------------------

VLLM_COMPLETION = {
    "id": "chatcmpl-8f3c", "object": "chat.completion", "created": 1736000000,
    "model": "meta-llama/Llama-3.1-8B-Instruct",
    "choices": [{
        "index": 0,
        "message": {"role": "assistant", "reasoning_content": None, "content": None, "tool_calls": [{
            "id": "chatcmpl-tool-4d2a", "type": "function",
            "function": {"name": "get_weather",
                         "arguments": "{\"location\": \"San Francisco, CA\", \"unit\": \"fahrenheit\"}"},
        }]},
        "logprobs": None, "finish_reason": "tool_calls", "stop_reason": None,
    }],
    "usage": {"prompt_tokens": 231, "total_tokens": 262, "completion_tokens": 31,
              "prompt_tokens_details": {"cached_tokens": 192}},
    "prompt_logprobs": None,
}


def test_vllm_completion_with_a_tool_call() -> None:
    message = to_anthropic_message(VLLM_COMPLETION, model="claude-x")
    assert message["model"] == "claude-x"
    assert message["stop_reason"] == "tool_use"
    assert message["content"] == [{"type": "tool_use", "id": "chatcmpl-tool-4d2a", "name": "get_weather",
                                   "input": {"location": "San Francisco, CA", "unit": "fahrenheit"}}]
    # Anthropic's input_tokens excludes cache reads; OpenAI's prompt_tokens includes them.
    assert message["usage"] == {"input_tokens": 39, "cache_creation_input_tokens": 0,
                                "cache_read_input_tokens": 192, "output_tokens": 31}


VLLM_STREAM = sse_bytes(
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Let me check."}),
    chunk({"tool_calls": [{"id": "chatcmpl-tool-4d2a", "type": "function", "index": 0,
                           "function": {"name": "get_weather"}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"location\": \"San"}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": " Francisco, CA\"}"}}]}),
    chunk({"tool_calls": [{"id": "chatcmpl-tool-77aa", "type": "function", "index": 1,
                           "function": {"name": "get_time", "arguments": ""}}]}),
    chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{\"tz\": \"PST\"}"}}]}),
    chunk({"content": ""}, "tool_calls", stop_reason=None),
    chunk(None, usage={"prompt_tokens": 100, "total_tokens": 130, "completion_tokens": 30}),
    "data: [DONE]\n\n",
)


def test_vllm_stream_with_text_and_two_tool_calls() -> None:
    events = translate_stream(VLLM_STREAM)
    message = anthropic_message(events)
    assert [block.type for block in message.content] == ["text", "tool_use", "tool_use"]
    assert message.content[0].text == "Let me check."  # type: ignore[union-attr]
    first, second = message.content[1], message.content[2]
    assert (first.id, first.name, first.input) == (  # type: ignore[union-attr]
        "chatcmpl-tool-4d2a", "get_weather", {"location": "San Francisco, CA"})
    assert (second.id, second.name, second.input) == (  # type: ignore[union-attr]
        "chatcmpl-tool-77aa", "get_time", {"tz": "PST"})
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (100, 30)
    # Argument fragments pass through as they came: a client sees the call build up.
    fragments = [e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta"
                 and e["delta"]["type"] == "input_json_delta"]
    assert fragments == ["{\"location\": \"San", " Francisco, CA\"}", "{\"tz\": \"PST\"}"]


def test_vllm_stream_event_order_is_anthropics() -> None:
    kinds = [e["type"] for e in translate_stream(VLLM_STREAM)]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("content_block_start") == kinds.count("content_block_stop") == 3


def test_whole_arguments_in_the_naming_chunk() -> None:
    body = sse_bytes(
        chunk({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                                    "function": {"name": "ls", "arguments": "{\"path\": \".\"}"}}]}),
        chunk({}, "tool_calls"), "data: [DONE]\n\n",
    )
    message = anthropic_message(translate_stream(body))
    assert message.content[0].input == {"path": "."}  # type: ignore[union-attr]


# --- OpenRouter --------------------------------------------------------------------------------

OPENROUTER_COMPLETION = {
    "id": "gen-1735317796-abc", "provider": "OpenAI", "model": "openai/gpt-4o",
    "object": "chat.completion", "created": 1735317796,
    "choices": [{
        "logprobs": None, "finish_reason": "tool_calls", "native_finish_reason": "tool_calls", "index": 0,
        "message": {"role": "assistant", "content": "", "refusal": None, "reasoning": None, "tool_calls": [{
            "index": 0, "id": "call_9pw1qnYScqvGrCH58HWCvFH6", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"location\":\"Boston, MA\"}"},
        }]},
    }],
    "usage": {"prompt_tokens": 82, "completion_tokens": 17, "total_tokens": 99,
              "prompt_tokens_details": {"cached_tokens": 0},
              "completion_tokens_details": {"reasoning_tokens": 0}},
}


def test_openrouter_completion_with_a_tool_call() -> None:
    message = to_anthropic_message(OPENROUTER_COMPLETION, model="claude-x")
    assert message["content"] == [{"type": "tool_use", "id": "call_9pw1qnYScqvGrCH58HWCvFH6",
                                   "name": "get_weather", "input": {"location": "Boston, MA"}}]
    assert message["stop_reason"] == "tool_use"
    assert message["usage"]["input_tokens"] == 82


def test_openrouter_stream_with_processing_comments() -> None:
    body = sse_bytes(
        ": OPENROUTER PROCESSING\n\n",
        ": OPENROUTER PROCESSING\n\n",
        chunk({"role": "assistant", "content": "Hel"}, provider="OpenAI"),
        ": OPENROUTER PROCESSING\n\n",
        chunk({"role": "assistant", "content": "lo"}, provider="OpenAI"),
        chunk({"role": "assistant", "content": ""}, "stop", native_finish_reason="stop"),
        chunk(None, usage={"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11,
                           "prompt_tokens_details": {"cached_tokens": 4}}),
        "data: [DONE]\n\n",
    )
    message = anthropic_message(translate_stream(body))
    assert message.content[0].text == "Hello"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (5, 4)


def test_openrouter_mid_stream_error_raises_after_the_text_so_far() -> None:
    translator = StreamTranslator(model="m")
    events = translator.feed(chunk({"role": "assistant", "content": "partial"}))
    assert events[0]["type"] == "message_start"
    error_chunk = chunk({"content": ""}, "error", provider="openai",
                        error={"code": "server_error", "message": "Provider disconnected unexpectedly"})
    with pytest.raises(UpstreamError, match="Provider disconnected unexpectedly"):
        translator.feed(error_chunk)


# --- Gemini ------------------------------------------------------------------------------------

GEMINI_COMPLETION = {
    "choices": [{"finish_reason": "tool_calls", "index": 0, "message": {"role": "assistant", "tool_calls": [
        {"function": {"arguments": "{\"location\":\"Chicago, IL\"}", "name": "get_weather"}, "id": "",
         "type": "function"},
    ]}}],
    "created": 1739723061, "model": "gemini-2.0-flash", "object": "chat.completion",
    "usage": {"completion_tokens": 16, "prompt_tokens": 80, "total_tokens": 96},
}


def test_gemini_completion_gets_a_tool_use_id() -> None:
    message = to_anthropic_message(GEMINI_COMPLETION, model="claude-x")
    block = message["content"][0]
    assert block["id"].startswith("toolu_") and len(block["id"]) > 10  # Gemini's id is ""
    assert (block["name"], block["input"]) == ("get_weather", {"location": "Chicago, IL"})


GEMINI_STREAM = sse_bytes(
    {"choices": [{"delta": {"role": "assistant", "tool_calls": [
        {"function": {"arguments": "{\"key\":\"birthdate\",\"value\":\"tomorrow\"}", "name": "set_in_user_memory"},
         "id": "", "type": "function"},
        {"function": {"arguments": "{\"city\":\"Paris\"}", "name": "get_weather"}, "id": "", "type": "function"},
    ]}, "finish_reason": "stop", "index": 0}],
     "created": 1739723061, "model": "gemini-2.0-flash", "object": "chat.completion.chunk",
     "usage": {"completion_tokens": 54, "prompt_tokens": 4319, "total_tokens": 4373}},
    "data: [DONE]\n\n",
)


def test_gemini_stream_one_chunk_two_calls_without_index() -> None:
    message = anthropic_message(translate_stream(GEMINI_STREAM))
    assert [(b.name, b.input) for b in message.content] == [  # type: ignore[union-attr]
        ("set_in_user_memory", {"key": "birthdate", "value": "tomorrow"}),
        ("get_weather", {"city": "Paris"}),
    ]
    ids = {b.id for b in message.content}  # type: ignore[union-attr]
    assert len(ids) == 2 and all(i.startswith("toolu_") for i in ids)
    # Gemini says "stop" although the model called tools: the client must run them.
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4319, 54)


def test_gemini_stream_arguments_fragments_without_index_continue_the_call() -> None:
    body = sse_bytes(
        chunk({"tool_calls": [{"id": "", "type": "function", "function": {"name": "f", "arguments": "{\"a\":"}}]}),
        chunk({"tool_calls": [{"function": {"arguments": " 1}"}}]}),
        chunk({}, "tool_calls"), "data: [DONE]\n\n",
    )
    message = anthropic_message(translate_stream(body))
    assert [(b.name, b.input) for b in message.content] == [("f", {"a": 1})]  # type: ignore[union-attr]


# --- stop reasons and the rest -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("finish", "expected"),
    [("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use"), ("content_filter", "refusal")],
)
def test_stop_reasons(finish: str, expected: str) -> None:
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": finish}]}
    assert to_anthropic_message(body, model="m")["stop_reason"] == expected


def test_ollama_style_reused_index_with_a_new_id_starts_a_new_call() -> None:
    body = sse_bytes(
        chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}}]}),
        chunk({"tool_calls": [{"index": 0, "id": "b", "function": {"name": "g", "arguments": "{}"}}]}),
        chunk({}, "tool_calls"),
    )
    message = anthropic_message(translate_stream(body))
    assert [(b.id, b.name) for b in message.content] == [("a", "f"), ("b", "g")]  # type: ignore[union-attr]


def test_a_stream_without_usage_reports_zero() -> None:
    body = sse_bytes(chunk({"content": "hi"}), chunk({}, "stop"))
    message = anthropic_message(translate_stream(body))
    assert (message.usage.input_tokens, message.usage.output_tokens) == (0, 0)


def test_invalid_tool_arguments_in_a_completion_are_an_upstream_error() -> None:
    body = {"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "tool_calls": [{"id": "x", "function": {"name": "f", "arguments": "{nope"}}]}}]}
    with pytest.raises(UpstreamError, match="not JSON"):
        to_anthropic_message(body, model="m")
