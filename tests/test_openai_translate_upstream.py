"""UPSTREAM direction, request side, plus the SSE parser and the error tables."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from agentic_flow.errors import ConfigError
from agentic_flow.openai.errors import anthropic_error_type, openai_error_body, upstream_error
from agentic_flow.openai.providers import normalize_base_url, resolve_upstream
from agentic_flow.openai.sse import SSEParser
from agentic_flow.openai.upstream_request import UnsupportedForUpstream, to_openai_request


def test_an_anthropic_tool_conversation_as_openai() -> None:
    body: dict[str, Any] = {
        "model": "claude-sonnet", "max_tokens": 64, "temperature": 0.2, "top_k": 5, "stop_sequences": ["Z"],
        "stream": True, "system": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}],
        "tools": [{"name": "ls", "description": "list", "input_schema": {"type": "object", "properties": {}}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "messages": [
            {"role": "user", "content": "list files"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "s"},
                {"type": "text", "text": "Sure."},
                {"type": "tool_use", "id": "toolu_1", "name": "ls", "input": {"path": "."}}]},
            {"role": "user", "content": [
                {"type": "text", "text": "here:"},
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "a.py"}]},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True,
                                          "content": "boom"}]},
        ],
    }
    out = to_openai_request(body, model="upstream-model")
    assert out["model"] == "upstream-model"
    assert (out["max_tokens"], out["temperature"], out["top_k"], out["stop"]) == (64, 0.2, 5, ["Z"])
    assert out["stream_options"] == {"include_usage": True}
    assert out["tool_choice"] == "required" and out["parallel_tool_calls"] is False
    assert out["tools"] == [{"type": "function", "function": {
        "name": "ls", "parameters": {"type": "object", "properties": {}}, "description": "list"}}]
    assert out["messages"] == [
        {"role": "system", "content": "A\n\nB"},
        {"role": "user", "content": "list files"},
        {"role": "assistant", "content": "Sure.", "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "ls", "arguments": "{\"path\": \".\"}"}}]},
        # Tool results go first, right after the assistant's calls.
        {"role": "tool", "tool_call_id": "toolu_1", "content": "a.py"},
        {"role": "user", "content": [{"type": "text", "text": "here:"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: boom"},
    ]
    assert "top_k" not in to_openai_request(body, send_top_k=False)


@pytest.mark.parametrize(
    ("choice", "expected"),
    [({"type": "auto"}, "auto"), ({"type": "none"}, "none"), ({"type": "any"}, "required"),
     ({"type": "tool", "name": "ls"}, {"type": "function", "function": {"name": "ls"}})],
)
def test_tool_choice(choice: dict[str, Any], expected: Any) -> None:
    body = {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}],
            "tools": [{"name": "ls", "input_schema": {"type": "object"}}], "tool_choice": choice}
    out = to_openai_request(body)
    assert out["tool_choice"] == expected and "parallel_tool_calls" not in out and "stream" not in out


@pytest.mark.parametrize("block", [
    {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "AA"}},
    {"type": "tool_result", "tool_use_id": "t", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA"}}]},
])
def test_what_openai_cannot_carry_is_a_clear_400(block: dict[str, Any]) -> None:
    body = {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [block]}]}
    with pytest.raises(UnsupportedForUpstream, match=re.escape("messages.0.content.0")) as info:
        to_openai_request(body)
    assert info.value.status == 400


def test_server_tools_are_refused() -> None:
    body = {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "web_search_20250305", "name": "web_search"}]}
    with pytest.raises(UnsupportedForUpstream, match=re.escape("tools.0")):
        to_openai_request(body)


# --- SSE parser ---------------------------------------------------------------------------------


def test_parser_tolerates_comments_keepalives_crlf_and_any_cut() -> None:
    stream = (": OPENROUTER PROCESSING\r\n\r\n\r\n\r\ndata: {\"a\": \"é\"}\r\n\r\n"
              "event: x\ndata: line1\ndata: line2\n\n:keepalive\n\ndata:[DONE]\n\n").encode()
    expected = ['{"a": "é"}', "line1\nline2", "[DONE]"]
    for step in (1, 2, 3, 7, len(stream)):  # cut everywhere, including inside "é" and between CR and LF
        parser = SSEParser()
        events = []
        for i in range(0, len(stream), step):
            events += parser.feed(stream[i:i + step])
        events += parser.close()
        assert [e.data for e in events] == expected, step
        assert events[1].event == "x"


def test_parser_flushes_an_unterminated_last_event() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: {}") == []
    assert [e.data for e in parser.close()] == ["{}"]


# --- errors and providers -----------------------------------------------------------------------


@pytest.mark.parametrize(("status", "error_type"), [
    (400, "invalid_request_error"), (401, "authentication_error"), (403, "permission_error"),
    (404, "not_found_error"), (429, "rate_limit_error"), (500, "api_error"), (502, "api_error"),
    (503, "overloaded_error"), (529, "overloaded_error"), (418, "invalid_request_error"),
])
def test_status_to_anthropic_type(status: int, error_type: str) -> None:
    assert anthropic_error_type(status) == error_type


def test_upstream_error_keeps_message_and_retry_after() -> None:
    body = json.dumps({"error": {"message": "slow down", "type": "rate_limit_error", "code": 429}})
    error = upstream_error(429, body, {"retry-after": "7"})
    assert (error.status, error.error_type, error.retry_after) == (429, "rate_limit_error", "7")
    assert "slow down" in str(error) and error.retryable
    gemini = upstream_error(400, json.dumps([{"error": {"code": 400, "message": "bad arg"}}]), {})
    assert "bad arg" in str(gemini) and not gemini.retryable
    assert openai_error_body("m", "invalid_request_error", param="n") == {
        "error": {"message": "m", "type": "invalid_request_error", "param": "n", "code": None}}


@pytest.mark.parametrize(("url", "expected"), [
    ("http://gpu:8000", "http://gpu:8000/v1"), ("http://gpu:8000/v1/", "http://gpu:8000/v1"),
    ("http://gpu:8000/v1/chat/completions", "http://gpu:8000/v1"),
    ("https://generativelanguage.googleapis.com/v1beta/openai/", "https://generativelanguage.googleapis.com/v1beta/openai"),
])
def test_base_url_normalisation(url: str, expected: str) -> None:
    assert normalize_base_url(url) == expected


def test_provider_presets() -> None:
    router = resolve_upstream("openrouter", {"OPENROUTER_API_KEY": "k"})
    assert (router.chat_url, router.api_key) == ("https://openrouter.ai/api/v1/chat/completions", "k")
    gemini = resolve_upstream("gemini", {"GOOGLE_API_KEY": "g"}, base_url="http://mirror:1/v1beta/openai")
    assert (gemini.base_url, gemini.api_key, gemini.send_top_k) == ("http://mirror:1/v1beta/openai", "g", False)
    vllm = resolve_upstream("openai", {"OPENAI_BASE_URL": "http://gpu:8000"}, model="llama")
    assert (vllm.base_url, vllm.api_key, vllm.model) == ("http://gpu:8000/v1", None, "llama")
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL"):
        resolve_upstream("openai", {})
    with pytest.raises(ConfigError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        resolve_upstream("gemini", {})
    with pytest.raises(ConfigError, match="unknown upstream provider"):
        resolve_upstream("bedrock", {})
