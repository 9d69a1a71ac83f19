"""SERVE direction: an OpenAI client's request becomes an Anthropic request our core accepts, and the
core's answer becomes what the official openai SDK parses (whole, or accumulated from chunks)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.chat import ChatCompletion

from agentic_flow.anthropic.requests import parse_messages_request
from agentic_flow.openai.serve_request import to_anthropic_request
from agentic_flow.openai.serve_response import ChunkEncoder, chat_stream, to_chat_completion
from agentic_flow.openai.types import InvalidChatRequest, parse_chat_request

from .openai_support import openai_completion, parse_sse

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def translate(body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    anthropic = to_anthropic_request(parse_chat_request(body), **kwargs)
    parse_messages_request(anthropic)  # our core's own validator must accept every translation
    return anthropic


def test_a_tool_conversation_round_trip() -> None:
    body = {
        "model": "local",
        "max_completion_tokens": 50,
        "temperature": 1.5,
        "top_p": 0.9,
        "stop": "END",
        "seed": 7,
        "tools": [WEATHER_TOOL],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "rainy"}]},
            {"role": "user", "content": "Thanks. Summarise."},
        ],
        "frequency_penalty": 0.5,  # unknown to us: ignored
    }
    out = translate(body)
    assert out["system"] == [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use tools."}]
    assert (out["max_tokens"], out["temperature"], out["top_p"], out["stop_sequences"], out["seed"]) == (
        50, 1.0, 0.9, ["END"], 7)
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert out["tools"] == [{"name": "get_weather", "description": "Weather in a city",
                             "input_schema": WEATHER_TOOL["function"]["parameters"]}]
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    assert out["messages"][1]["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Rome"}},
    ]
    assert out["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
        {"type": "tool_result", "tool_use_id": "call_2", "content": "rainy"},
        {"type": "text", "text": "Thanks. Summarise."},
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [("auto", {"type": "auto"}), ("none", {"type": "none"}), ("required", {"type": "any"}),
     ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"})],
)
def test_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "tools": [WEATHER_TOOL],
        "tool_choice": choice,
    }
    assert translate(body)["tool_choice"] == expected


def test_defaults_and_images() -> None:
    body = {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
    ]}]}
    out = translate(body)
    assert out["max_tokens"] == 9 and out["stream"] is False and "tool_choice" not in out
    assert out["messages"][0]["content"][1:] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]
    no_limit = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    assert translate(no_limit, default_max_tokens=123)["max_tokens"] == 123


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"n": 2}, "n"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
            "messages.0.content.0",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{bad"}}],
                    }
                ]
            },
            "messages.0.tool_calls.0.function.arguments",
        ),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"temperature": 2.5}, "temperature"),
        ({"messages": []}, "messages"),
    ],
)
def test_refusals_name_the_param(patch: dict[str, Any], param: str) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], **patch}
    with pytest.raises(InvalidChatRequest) as info:
        to_anthropic_request(parse_chat_request(body))
    assert info.value.param == param
    assert info.value.status == 400


ANTHROPIC_TOOL_MESSAGE = {
    "id": "msg_abc", "type": "message", "role": "assistant", "model": "local",
    "content": [{"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}],
    "stop_reason": "tool_use", "stop_sequence": None,
    "usage": {"input_tokens": 10, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 6, "output_tokens": 4},
}


def test_a_message_as_a_chat_completion() -> None:
    body = to_chat_completion(ANTHROPIC_TOOL_MESSAGE, model="gpt-local", created=5)
    completion = ChatCompletion.model_validate(body)  # the official SDK's type
    choice = completion.choices[0]
    assert completion.id == "chatcmpl-abc" and completion.model == "gpt-local"
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Checking."
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == (  # type: ignore[union-attr]
        "toolu_1", "get_weather", {"city": "Paris"})
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens) == (
        16,
        4,
        20,
    )
    assert completion.usage.prompt_tokens_details.cached_tokens == 6  # type: ignore[union-attr]


@pytest.mark.parametrize(("stop", "finish"), [("end_turn", "stop"), ("max_tokens", "length"),
                                              ("stop_sequence", "stop"), ("tool_use", "tool_calls")])
def test_finish_reasons(stop: str, finish: str) -> None:
    message = {**ANTHROPIC_TOOL_MESSAGE, "stop_reason": stop}
    assert to_chat_completion(message, model="m")["choices"][0]["finish_reason"] == finish


ANTHROPIC_EVENTS: list[dict[str, Any]] = [
    {
        "type": "message_start",
        "message": {
            **ANTHROPIC_TOOL_MESSAGE,
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": 10, "output_tokens": 1},
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Check"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ing."}},
    {"type": "content_block_stop", "index": 0},
    {
        "type": "content_block_start",
        "index": 1,
        "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
    },
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"city": '}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'}},
    {"type": "content_block_stop", "index": 1},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 12},
    },
    {"type": "message_stop"},
]


def test_events_as_chunks_rebuilt_by_the_openai_sdk() -> None:
    encoder = ChunkEncoder(model="gpt-local", include_usage=True, created=5)
    chunks = [c for event in ANTHROPIC_EVENTS for c in encoder.feed(event)]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[3]["choices"][0]["delta"]["tool_calls"] == [
        {"index": 0, "id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 22
    assert all(c["usage"] is None for c in chunks[:-1])
    completion = openai_completion(chunks)
    choice = completion.choices[0]
    assert choice.message.content == "Checking." and choice.finish_reason == "tool_calls"
    assert json.loads(choice.message.tool_calls[0].function.arguments) == {"city": "Paris"}  # type: ignore[index,union-attr]


async def _aiter(items: list[dict[str, Any]]) -> Any:
    for item in items:
        yield item


async def test_chat_stream_bytes_end_with_done_and_skip_usage_unless_asked() -> None:
    body = b"".join([part async for part in chat_stream(_aiter(ANTHROPIC_EVENTS), model="m", include_usage=False)])
    assert body.endswith(b"data: [DONE]\n\n")
    payloads = [json.loads(d) for d in parse_sse(body) if d != "[DONE]"]
    assert all("usage" not in p for p in payloads)
    assert payloads[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_an_error_event_ends_the_stream_in_openais_shape() -> None:
    events = [ANTHROPIC_EVENTS[0], {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}]
    body = b"".join([part async for part in chat_stream(_aiter(events), model="m", include_usage=False)])
    last = json.loads(parse_sse(body)[-1])
    assert last == {"error": {"message": "busy", "type": "server_error", "param": None, "code": None}}
    assert b"[DONE]" not in body
