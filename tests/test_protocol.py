"""Request validation: what is accepted, what is ignored, and the field path named by every 400."""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import pytest

from agentic_flow.anthropic.requests import InvalidRequest, parse_count_tokens_request, parse_messages_request
from agentic_flow.anthropic.types import (
    CountTokensRequest,
    DocumentBlock,
    ImageBlock,
    Message,
    MessagesRequest,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    ThinkingConfig,
    Tool,
    ToolChoice,
    ToolResultBlock,
    ToolUseBlock,
)
from agentic_flow.errors import ApiError, InvalidRequestError

Body = dict[str, Any]


def minimal() -> Body:
    return {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}


def with_(**fields: Any) -> Body:
    body = minimal()
    body.update(fields)
    return body


def without(key: str) -> Body:
    body = minimal()
    del body[key]
    return body


def three_messages(block: Any) -> Body:
    """A body whose third message (messages.2) has `block` as its first content block."""
    return with_(messages=[
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": [block]},
    ])


def one_block(block: Any) -> Body:
    return with_(messages=[{"role": "user", "content": [block]}])


def tool_result(**fields: Any) -> Body:
    return one_block({"type": "tool_result", "tool_use_id": "toolu_1", **fields})


def claude_code_body() -> Body:
    """The shape Claude Code sends (its first request, as recorded from Claude Code 2.1), trimmed to a few tools."""
    return {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 32000,
        "stream": True,
        "system": [
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        ],
        "messages": [
            {"role": "system", "content": "Environment: linux"},
            {"role": "user", "content": [
                {"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
                {"type": "text", "text": "fix the bug", "cache_control": {"type": "ephemeral"}},
            ]},
        ],
        "thinking": {"type": "adaptive", "display": "omitted"},
        "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "metadata": {"user_id": "user_abc_account__session_123"},
        "temperature": 1,
        "tools": [
            {"name": "Read", "description": "Reads a file.", "input_schema": {"type": "object"},
             "cache_control": {"type": "ephemeral"}},
            {"name": "Bash", "description": "Runs a command.", "input_schema": {"type": "object"}},
        ],
        "tool_choice": {"type": "auto"},
        "service_tier": "auto",
        "container": None,
        "mcp_servers": [],
        "some_future_field": {"anything": [1, 2, 3]},
    }


# --- rejected, each with the path of the offending field ---------------------------------------

REJECTED: list[tuple[str, object, str]] = [
    ("body is a list", [], "request body: Input should be a JSON object"),
    ("body is a string", "hi", "request body: Input should be a JSON object"),
    ("model missing", without("model"), "model: Field required"),
    ("model empty", with_(model=""), "model: String should have at least 1 character"),
    ("model not a string", with_(model=5), "model: Input should be a valid string"),
    ("max_tokens missing", without("max_tokens"), "max_tokens: Field required"),
    ("max_tokens zero", with_(max_tokens=0), "max_tokens: Input should be greater than or equal to 1"),
    ("max_tokens negative", with_(max_tokens=-5), "max_tokens: Input should be greater than or equal to 1"),
    ("max_tokens bool", with_(max_tokens=True), "max_tokens: Input should be a valid integer"),
    ("max_tokens float", with_(max_tokens=1.5), "max_tokens: Input should be a valid integer"),
    ("max_tokens string", with_(max_tokens="10"), "max_tokens: Input should be a valid integer"),
    ("messages missing", without("messages"), "messages: Field required"),
    ("messages empty", with_(messages=[]), "messages: at least one message is required"),
    ("messages a string", with_(messages="hi"), "messages: Input should be a valid list"),
    ("message not an object", with_(messages=[5]), "messages.0: Input should be a valid dictionary"),
    ("role missing", with_(messages=[{"content": "x"}]), "messages.0.role: Field required"),
    ("role unknown", with_(messages=[{"role": "tool", "content": "x"}]),
     "messages.0.role: Input should be 'user', 'assistant' or 'system'"),
    ("role not a string", with_(messages=[{"role": 1, "content": "x"}]),
     "messages.0.role: Input should be 'user', 'assistant' or 'system'"),
    ("content missing", with_(messages=[{"role": "user"}]), "messages.0.content: Field required"),
    ("content a number", with_(messages=[{"role": "user", "content": 5}]),
     "messages.0.content: Input should be a valid list"),
    ("block type unknown", three_messages({"type": "foo"}),
     'messages.2.content.0.type: unknown block type "foo"'),
    ("server_tool_use block", three_messages({"type": "server_tool_use", "id": "x", "name": "web_search"}),
     'messages.2.content.0.type: unknown block type "server_tool_use"'),
    ("web_search_tool_result block", one_block({"type": "web_search_tool_result"}),
     'messages.0.content.0.type: unknown block type "web_search_tool_result"'),
    ("block type missing", one_block({"text": "x"}), "messages.0.content.0.type: Field required"),
    ("block type not a string", one_block({"type": 3}),
     "messages.0.content.0.type: Input should be a valid string"),
    ("block not an object", one_block("text"), "messages.0.content.0: Input should be a valid dictionary"),
    ("text missing", one_block({"type": "text"}), "messages.0.content.0.text: Field required"),
    ("text not a string", one_block({"type": "text", "text": ["x"]}),
     "messages.0.content.0.text: Input should be a valid string"),
    ("image source missing", one_block({"type": "image"}), "messages.0.content.0.source: Field required"),
    ("image source not an object", one_block({"type": "image", "source": "x"}),
     "messages.0.content.0.source: Input should be a valid dictionary"),
    ("image source type unknown", one_block({"type": "image", "source": {"type": "ftp"}}),
     "messages.0.content.0.source.type: Input should be 'base64', 'url' or 'file'"),
    ("image media type unknown",
     one_block({"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": "AA=="}}),
     "messages.0.content.0.source.media_type: "
     "Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"),
    ("image data missing", one_block({"type": "image", "source": {"type": "base64",
     "media_type": "image/png"}}),
     "messages.0.content.0.source.data: Field required"),
    ("image url missing", one_block({"type": "image", "source": {"type": "url"}}),
     "messages.0.content.0.source.url: Field required"),
    ("document source type unknown", one_block({"type": "document", "source": {"type": "zip", "data": "x"}}),
     "messages.0.content.0.source.type: Input should be 'base64', 'text', 'content', 'url' or 'file'"),
    ("document text not a string",
     one_block({"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": 5}}),
     "messages.0.content.0.source.data: Input should be a valid string"),
    ("document content block unknown",
     one_block({"type": "document", "source": {"type": "content", "content": [{"type": "tool_use"}]}}),
     "messages.0.content.0.source.content.0.type: Input should be 'text' or 'image'"),
    ("document title not a string",
     one_block({"type": "document", "title": 1, "source": {"type": "text", "data": "x"}}),
     "messages.0.content.0.title: Input should be a valid string"),
    ("tool_use id missing", one_block({"type": "tool_use", "name": "Read", "input": {}}),
     "messages.0.content.0.id: Field required"),
    ("tool_use name missing", one_block({"type": "tool_use", "id": "t", "input": {}}),
     "messages.0.content.0.name: Field required"),
    ("tool_use input missing", one_block({"type": "tool_use", "id": "t", "name": "Read"}),
     "messages.0.content.0.input: Field required"),
    ("tool_use input a string", one_block({"type": "tool_use", "id": "t", "name": "Read", "input": "{}"}),
     "messages.0.content.0.input: Input should be a valid dictionary"),
    ("tool_result id missing", one_block({"type": "tool_result", "content": "x"}),
     "messages.0.content.0.tool_use_id: Field required"),
    ("tool_result content a number", tool_result(content=5),
     "messages.0.content.0.content: Input should be a valid list"),
    ("tool_result holds a tool_use", tool_result(content=[{"type": "tool_use"}]),
     "messages.0.content.0.content.0.type: Input should be 'text', 'image', 'document' or 'tool_reference'"),
    ("tool_result holds an unknown block", tool_result(content=[{"type": "text",
     "text": "a"}, {"type": "foo"}]),
     'messages.0.content.0.content.1.type: unknown block type "foo"'),
    ("tool_result text missing", tool_result(content=[{"type": "text"}]),
     "messages.0.content.0.content.0.text: Field required"),
    ("tool_result is_error a string", tool_result(content="x", is_error="yes"),
     "messages.0.content.0.is_error: Input should be a valid boolean"),
    ("thinking signature missing", one_block({"type": "thinking", "thinking": "hm"}),
     "messages.0.content.0.signature: Field required"),
    ("thinking text missing", one_block({"type": "thinking", "signature": "s"}),
     "messages.0.content.0.thinking: Field required"),
    ("redacted_thinking data missing", one_block({"type": "redacted_thinking"}),
     "messages.0.content.0.data: Field required"),
    ("system a number", with_(system=5), "system: Input should be a valid list"),
    ("system block not text", with_(system=[{"type": "image", "source": {"type": "url", "url": "u"}}]),
     "system.0.type: Input should be 'text'"),
    ("system block unknown", with_(system=[{"type": "text", "text": "a"}, {"type": "foo"}]),
     'system.1.type: unknown block type "foo"'),
    ("system text missing", with_(system=[{"type": "text"}]), "system.0.text: Field required"),
    ("temperature above 1", with_(temperature=1.5), "temperature: Input should be less than or equal to 1"),
    ("temperature below 0", with_(temperature=-0.1),
     "temperature: Input should be greater than or equal to 0"),
    # pydantic's words; before it, NaN read "greater than or equal to 0", infinity "less than or equal to 1".
    ("temperature NaN", with_(temperature=math.nan), "temperature: Input should be a finite number"),
    ("temperature infinite", with_(temperature=math.inf), "temperature: Input should be a finite number"),
    ("temperature a string", with_(temperature="0.5"), "temperature: Input should be a valid number"),
    ("temperature bool", with_(temperature=True), "temperature: Input should be a valid number"),
    ("top_p above 1", with_(top_p=2), "top_p: Input should be less than or equal to 1"),
    ("top_p a list", with_(top_p=[0.5]), "top_p: Input should be a valid number"),
    ("top_k negative", with_(top_k=-1), "top_k: Input should be greater than or equal to 0"),
    ("top_k a float", with_(top_k=1.0), "top_k: Input should be a valid integer"),
    ("stop_sequences a string", with_(stop_sequences="END"), "stop_sequences: Input should be a valid list"),
    ("stop_sequences holds a number", with_(stop_sequences=["END", 3]),
     "stop_sequences.1: Input should be a valid string"),
    ("stop_sequences holds an empty string", with_(stop_sequences=["END", ""]),
     "stop_sequences.1: String should have at least 1 character"),
    ("stream a string", with_(stream="yes"), "stream: Input should be a valid boolean"),
    ("stream zero", with_(stream=0), "stream: Input should be a valid boolean"),
    ("metadata a string", with_(metadata="x"), "metadata: Input should be a valid dictionary"),
    ("tools an object", with_(tools={}), "tools: Input should be a valid list"),
    ("tool not an object", with_(tools=["Read"]), "tools.0: Input should be a valid dictionary"),
    ("tool name missing", with_(tools=[{"input_schema": {}}]), "tools.0.name: Field required"),
    ("tool name empty", with_(tools=[{"name": "", "input_schema": {}}]),
     "tools.0.name: String should have at least 1 character"),
    ("tool input_schema missing", with_(tools=[{"name": "a", "input_schema": {}}, {"name": "b"}]),
     "tools.1.input_schema: Field required"),
    ("custom tool input_schema missing", with_(tools=[{"type": "custom", "name": "b"}]),
     "tools.0.input_schema: Field required"),
    ("tool input_schema a list", with_(tools=[{"name": "a", "input_schema": []}]),
     "tools.0.input_schema: Input should be a valid dictionary"),
    ("tool description a number", with_(tools=[{"name": "a", "description": 1, "input_schema": {}}]),
     "tools.0.description: Input should be a valid string"),
    ("tool type a number", with_(tools=[{"name": "a", "type": 1}]),
     "tools.0.type: Input should be a valid string"),
    ("tool_choice a string", with_(tool_choice="auto"), "tool_choice: Input should be a valid dictionary"),
    ("tool_choice type missing", with_(tool_choice={}), "tool_choice.type: Field required"),
    ("tool_choice type unknown", with_(tool_choice={"type": "sometimes"}),
     "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'"),
    ("tool_choice tool without name", with_(tool_choice={"type": "tool"}),
     "tool_choice.name: Field required"),
    ("tool_choice parallel a string", with_(tool_choice={"type": "auto", "disable_parallel_tool_use": "no"}),
     "tool_choice.disable_parallel_tool_use: Input should be a valid boolean"),
    ("thinking a bool", with_(thinking=True), "thinking: Input should be a valid dictionary"),
    ("thinking type unknown", with_(thinking={"type": "on"}),
     "thinking.type: Input should be 'enabled', 'disabled' or 'adaptive'"),
    ("thinking enabled without budget", with_(thinking={"type": "enabled"}),
     "thinking.budget_tokens: Field required"),
    ("thinking budget too small", with_(thinking={"type": "enabled", "budget_tokens": 100}),
     "thinking.budget_tokens: Input should be greater than or equal to 1024"),
    ("thinking budget a string", with_(thinking={"type": "enabled", "budget_tokens": "2048"}),
     "thinking.budget_tokens: Input should be a valid integer"),
    ("output_config a string", with_(output_config="high"),
     "output_config: Input should be a valid dictionary"),
    ("context_management a list", with_(context_management=[]),
     "context_management: Input should be a valid dictionary"),
    ("service_tier a number", with_(service_tier=1), "service_tier: Input should be a valid string"),
]


@pytest.mark.parametrize(
    ("body", "message"), [case[1:] for case in REJECTED], ids=[case[0] for case in REJECTED]
)
def test_rejected_requests_name_the_field(body: object, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_messages_request(body)
    assert str(caught.value) == message


def test_invalid_request_is_the_api_error_the_middleware_maps_to_400() -> None:
    with pytest.raises(ApiError) as caught:
        parse_messages_request(without("model"))
    assert isinstance(caught.value, InvalidRequest)
    assert isinstance(caught.value, InvalidRequestError)
    assert (caught.value.status, caught.value.error_type) == (400, "invalid_request_error")


# --- accepted ---------------------------------------------------------------------------------


def test_minimal_request_takes_defaults() -> None:
    req = parse_messages_request(minimal())
    assert req == MessagesRequest(
        model="claude-sonnet-4-5",
        max_tokens=64,
        messages=(Message("user", (TextBlock("hi"),)),),
    )
    assert (req.temperature, req.top_p, req.top_k) == (None, None, None)
    assert (req.stop_sequences, req.stream) == ((), False)


def test_claude_code_request_is_accepted_and_unknowns_ignored() -> None:
    req = parse_messages_request(claude_code_body())
    assert req.model == "claude-sonnet-4-5-20250929"
    assert req.stream is True
    assert req.system == (TextBlock("You are Claude Code."), TextBlock("Be brief."))
    assert req.messages[0] == Message("system", (TextBlock("Environment: linux"),))
    assert req.messages[1].content[1] == TextBlock("fix the bug")
    assert req.thinking == ThinkingConfig("adaptive")
    assert req.metadata == {"user_id": "user_abc_account__session_123"}
    assert req.temperature == 1.0 and isinstance(req.temperature, float)
    assert [tool.name for tool in req.tools] == ["Read", "Bash"]
    assert req.tools[0] == Tool("Read", "Reads a file.", {"type": "object"})
    assert req.tool_choice == ToolChoice("auto")


def test_body_is_not_modified() -> None:
    body = claude_code_body()
    before = copy.deepcopy(body)
    parse_messages_request(body)
    assert body == before


def test_null_optional_fields_count_as_absent() -> None:
    nulls = {key: None for key in (
        "system", "temperature", "top_p", "top_k", "stop_sequences", "stream", "metadata", "tools",
        "tool_choice", "thinking", "output_config", "context_management", "service_tier",
    )}
    assert parse_messages_request(with_(**nulls)) == parse_messages_request(minimal())


def test_sampling_fields_are_kept() -> None:
    req = parse_messages_request(with_(temperature=0, top_p=0.9, top_k=0, stop_sequences=["\n\nHuman:", " "]))
    assert (req.temperature, req.top_p, req.top_k) == (0.0, 0.9, 0)
    assert req.stop_sequences == ("\n\nHuman:", " ")


@pytest.mark.parametrize("system", ["", []])
def test_empty_system_is_no_system(system: object) -> None:
    assert parse_messages_request(with_(system=system)).system == ()


def test_system_string_becomes_one_text_block() -> None:
    assert parse_messages_request(with_(system="Be terse.")).system == (TextBlock("Be terse."),)


def test_every_block_type_parses_to_its_dataclass() -> None:
    blocks = [
        {"type": "text", "text": "look", "citations": None, "cache_control": {"type": "ephemeral"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        {"type": "document", "title": "notes", "source": {"type": "text", "data": "n"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}},
        {"type": "document", "source": {"type": "content", "content": [
            {"type": "text", "text": "p1"}, {"type": "text", "text": "p2"}]}},
        {"type": "document", "source": {"type": "content", "content": "whole"}},
        {"type": "document", "source": {"type": "content", "content": [
            {"type": "image", "source": {"type": "file", "file_id": "f"}}]}},
        {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True, "content": [
            {"type": "text", "text": "boom"},
            {"type": "image", "source": {"type": "url", "url": "u"}}]},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "ok"},
        {"type": "tool_result", "tool_use_id": "toolu_3"},
    ]
    assistant = [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "/a"}, "caller": {"x": 1}},
    ]
    req = parse_messages_request(with_(messages=[
        {"role": "user", "content": blocks},
        {"role": "assistant", "content": assistant},
    ]))
    assert req.messages[0].content == (
        TextBlock("look"),
        ImageBlock("base64"),
        ImageBlock("url"),
        DocumentBlock("text", "n", "notes"),
        DocumentBlock("base64", None),
        DocumentBlock("content", "p1\n\np2"),
        DocumentBlock("content", "whole"),
        DocumentBlock("content", None),
        ToolResultBlock("toolu_1", (TextBlock("boom"), ImageBlock("url")), is_error=True),
        ToolResultBlock("toolu_2", (TextBlock("ok"),)),
        ToolResultBlock("toolu_3", ()),
    )
    assert req.messages[1].content == (
        ThinkingBlock("hmm", "sig"),
        RedactedThinkingBlock("opaque"),
        ToolUseBlock("toolu_1", "Read", {"path": "/a"}),
    )


def test_anthropic_builtin_tools_need_no_schema() -> None:
    req = parse_messages_request(with_(tools=[
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
        {"type": "custom", "name": "lookup", "input_schema": {"type": "object"}},
    ]))
    assert req.tools == (
        Tool("web_search", type="web_search_20250305"),
        Tool("lookup", input_schema={"type": "object"}, type="custom"),
    )


def test_tool_choice_and_thinking_variants() -> None:
    req = parse_messages_request(with_(
        tool_choice={"type": "tool", "name": "Read", "disable_parallel_tool_use": True},
        thinking={"type": "enabled", "budget_tokens": 2048},
    ))
    assert req.tool_choice == ToolChoice("tool", "Read", disable_parallel_tool_use=True)
    assert req.thinking == ThinkingConfig("enabled", 2048)
    assert parse_messages_request(with_(thinking={"type": "disabled"})).thinking == ThinkingConfig("disabled")


def test_requests_are_frozen() -> None:
    req = parse_messages_request(minimal())
    with pytest.raises(dataclasses.FrozenInstanceError):
        req.max_tokens = 5  # type: ignore[misc]


# --- count_tokens ------------------------------------------------------------------------------


def test_count_tokens_needs_no_max_tokens() -> None:
    req = parse_count_tokens_request(without("max_tokens"))
    hi = Message("user", (TextBlock("hi"),))
    assert req == CountTokensRequest(model="claude-sonnet-4-5", messages=(hi,))


def test_count_tokens_ignores_generation_fields() -> None:
    req = parse_count_tokens_request(with_(max_tokens="many", stream="yes", temperature=7))
    assert not isinstance(req, MessagesRequest)
    assert req.model == "claude-sonnet-4-5"


def test_count_tokens_accepts_claude_code_body() -> None:
    req = parse_count_tokens_request(claude_code_body())
    assert len(req.tools) == 2 and req.system[0].text == "You are Claude Code."


@pytest.mark.parametrize(("body", "message"), [
    (without("messages"), "messages: Field required"),
    (with_(model=""), "model: String should have at least 1 character"),
    (three_messages({"type": "foo"}), 'messages.2.content.0.type: unknown block type "foo"'),
    (with_(tools=[{"name": "x"}]), "tools.0.input_schema: Field required"),
    (None, "request body: Input should be a JSON object"),
])
def test_count_tokens_rejects_with_the_same_paths(body: object, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_count_tokens_request(body)
    assert str(caught.value) == message
