"""SERVE direction: an OpenAI client's request becomes the neutral request (agentic_flow.chat), and the
core's neutral answer becomes what the official openai SDK parses (whole, or accumulated from chunks)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.chat import ChatCompletion

from agentic_flow import chat
from agentic_flow.openai.serve_request import to_chat_request
from agentic_flow.openai.serve_response import ChunkEncoder, chat_stream, to_chat_completion
from agentic_flow.openai.types import InvalidChatRequest, parse_chat_request

from .openai_support import openai_completion, parse_sse

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def translate(body: dict[str, Any], **kwargs: Any) -> chat.Request:
    return to_chat_request(parse_chat_request(body), **kwargs)


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
    sampling = out.sampling
    assert (sampling.max_tokens, sampling.temperature, sampling.top_p, sampling.stop_sequences, sampling.seed) == (
        50, 1.0, 0.9, ("END",), 7)
    assert out.prompt.choice == chat.ToolChoice("any", parallel=False)
    assert out.prompt.tools == (chat.ToolSpec("get_weather", "Weather in a city",
                                              WEATHER_TOOL["function"]["parameters"]),)
    assert [t.role for t in out.prompt.turns] == ["system", "user", "assistant", "user"]
    system, _, assistant, last = out.prompt.turns
    assert system.content == "Be brief.\n\nUse tools."
    assert assistant.calls == (chat.ToolCall("call_1", "get_weather", {"city": "Paris"}),
                               chat.ToolCall("call_2", "get_weather", {"city": "Rome"}))
    assert last.results == (chat.ToolResult("call_1", "sunny"), chat.ToolResult("call_2", "rainy"))
    assert last.content == "Thanks. Summarise."


@pytest.mark.parametrize(
    ("choice", "expected"),
    [("auto", chat.ToolChoice("auto")), ("none", chat.ToolChoice("none")), ("required", chat.ToolChoice("any")),
     ({"type": "function", "function": {"name": "get_weather"}}, chat.ToolChoice("tool", "get_weather"))],
)
def test_tool_choice(choice: Any, expected: chat.ToolChoice) -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "tools": [WEATHER_TOOL],
        "tool_choice": choice,
    }
    assert translate(body).prompt.choice == expected


def test_defaults_and_images() -> None:
    text = {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "what is this?"}]}
    out = translate(text)
    assert out.sampling.max_tokens == 9 and out.stream is False and out.prompt.choice is None
    assert out.sampling.temperature is None  # unset: the model's own sampling applies
    no_limit = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    assert translate(no_limit, default_max_tokens=123).sampling.max_tokens == 123
    for url in ("data:image/png;base64,iVBORw0KGgo=", "https://example.com/cat.jpg"):
        body = {"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": url}}]}]}
        with pytest.raises(InvalidChatRequest) as info:  # this model cannot read images: a 400, never dropped
            translate(body)
        assert info.value.param == "messages.0.content.1" and "images" in str(info.value)


FUNCTIONS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"n": 9}, "n"),
        ({"n": 0}, "n"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
         "response_format.json_schema.schema"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"logprobs": True, "tools": FUNCTIONS}, "logprobs"),
        ({"logprobs": True, "tools": FUNCTIONS, "tool_choice": "auto"}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"logprobs": False, "top_logprobs": 3}, "top_logprobs"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
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
        to_chat_request(parse_chat_request(body))
    assert info.value.param == param
    assert info.value.status == 400


CALL = chat.ToolCall("toolu_1", "get_weather", {"city": "Paris"})
TOOL_ANSWER = chat.Answer(("Checking.", CALL), chat.Stop("tool_use", None, chat.Usage(16, 6, 4)))


def test_a_message_as_a_chat_completion() -> None:
    body = to_chat_completion(TOOL_ANSWER, completion_id="chatcmpl-abc", model="gpt-local", created=5)
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
    answer = chat.Answer(TOOL_ANSWER.content, chat.Stop(stop, None, chat.Usage(1, 0, 1)))  # type: ignore[arg-type]
    assert to_chat_completion(answer, completion_id="c", model="m")["choices"][0]["finish_reason"] == finish


EVENTS: list[chat.Event] = [
    chat.Start(chat.Usage(10, 0, 1), guided=True),
    chat.Text("Check"),
    chat.Text("ing."),
    chat.ToolCallStart("toolu_1", "get_weather"),
    chat.ToolInputDelta('{"city": '),
    chat.ToolInputDelta('"Paris"}'),
    chat.ToolCallDone(CALL),
    chat.Stop("tool_use", None, chat.Usage(10, 0, 12)),
]


def test_events_as_chunks_rebuilt_by_the_openai_sdk() -> None:
    encoder = ChunkEncoder(completion_id="chatcmpl-abc", model="gpt-local", include_usage=True, created=5)
    chunks = [c for event in EVENTS for c in encoder.feed(event)]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": None}
    assert chunks[3]["choices"][0]["delta"]["tool_calls"] == [
        {"index": 0, "id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 22
    assert all(c["usage"] is None for c in chunks[:-1])
    completion = openai_completion(chunks)
    choice = completion.choices[0]
    assert choice.message.content == "Checking." and choice.finish_reason == "tool_calls"
    assert json.loads(choice.message.tool_calls[0].function.arguments) == {"city": "Paris"}  # type: ignore[index,union-attr]


async def _aiter(items: list[chat.Event]) -> Any:
    for item in items:
        yield item


async def test_chat_stream_bytes_end_with_done_and_skip_usage_unless_asked() -> None:
    body = b"".join([part async for part in chat_stream(_aiter(EVENTS), model="m", include_usage=False)])
    assert body.endswith(b"data: [DONE]\n\n")
    payloads = [json.loads(d) for d in parse_sse(body) if d != "[DONE]"]
    assert all("usage" not in p for p in payloads)
    assert payloads[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_an_error_event_ends_the_stream_in_openais_shape() -> None:
    events = [EVENTS[0], chat.Failure("busy")]
    body = b"".join([part async for part in chat_stream(_aiter(events), model="m", include_usage=False)])
    last = json.loads(parse_sse(body)[-1])
    assert last == {"error": {"message": "busy", "type": "server_error", "param": None, "code": None}}
    assert b"[DONE]" not in body
