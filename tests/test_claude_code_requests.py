"""What Claude Code sends, through the proxy's handlers (a fake engine behind the real app): its 2026
request shapes are accepted, images and documents become notes, any `claude-*` name is served, the tool
policy narrows the tools and a hidden tool is never called, and /v1/models tells the window.  Exact events."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from agentic_flow.anthropic.convert import IMAGE_NOTE
from agentic_flow.engine.base import Completion
from agentic_flow.models.catalog import SMALL_MODEL_TOOLS
from agentic_flow.proxy.app import create_app
from agentic_flow.proxy.tool_policy import ToolPolicy
from agentic_flow.tooluse import ToolResult
from tests.fake_engine import FakeEngine
from tests.test_handlers import make_state

ClientMaker = Callable[..., Awaitable[TestClient[Any, Any]]]
SCHEMA = {"type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}
WRITE_SCHEMA = {"type": "object", "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}},
                "required": ["file_path", "content"]}
# Claude Code 2.1.332's first request offers these 12 tools, in this order.
CLAUDE_CODE_TOOLS = ["Agent", "Bash", "Edit", "ListAgents", "Read", "ReportFindings", "ScheduleWakeup", "Skill",
                     "ToolSearch", "Workflow", "DeferredToolPlaceholder", "Write"]
PNG = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}


def tool(name: str) -> dict[str, Any]:
    schema = WRITE_SCHEMA if name == "Write" else SCHEMA
    # eager_input_streaming: per tool, in Claude Code 2026 requests; defer_loading on its placeholder.
    extra = {"defer_loading": True} if name == "DeferredToolPlaceholder" else {"eager_input_streaming": True}
    return {"name": name, "description": f"The {name} tool.", "input_schema": schema, **extra}


def claude_code_body(**changes: Any) -> dict[str, Any]:
    """A request of the shape Claude Code 2026 versions send (every field the issue lists)."""
    body: dict[str, Any] = {
        "model": "claude-haiku-4-5-20251001",  # what its named sub-agents still ask for
        "max_tokens": 32000,
        "stream": True,
        "system": [{"type": "text", "text": "You are Claude Code.",
                    "cache_control": {"type": "ephemeral", "scope": "global"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Look at shot.png",
                                          "cache_control": {"type": "ephemeral", "scope": "global"}}]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_a", "name": "ToolSearch", "input": {"query": "files"}},
                {"type": "tool_use", "id": "toolu_b", "name": "Read", "input": {"file_path": "/p/shot.png"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_a",
                 "content": [{"type": "tool_reference", "tool_name": "Glob"}]},
                {"type": "tool_result", "tool_use_id": "toolu_b", "content": [PNG]}]},
        ],
        "tools": [tool(name) for name in CLAUDE_CODE_TOOLS],
        "thinking": {"type": "adaptive", "display": "omitted"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "diagnostics": {"client_request_id": "r1", "previous_message_id": None},
        "output_config": {"effort": "high"},
        "metadata": {"user_id": "{\"session_id\": \"s\"}"},
    }
    return {**body, **changes}


@pytest.fixture()
def serve(aiohttp_client: ClientMaker) -> Callable[..., Awaitable[TestClient[Any, Any]]]:
    async def start(engine: FakeEngine, policy: ToolPolicy | None = None) -> TestClient[Any, Any]:
        state = make_state(engine)
        if policy is not None:
            state.backend.tool_policy = policy  # type: ignore[attr-defined]  (a LocalBackend here)
        return await aiohttp_client(create_app(state, api_key=None, max_body=1 << 20))
    return start


def stream_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """The stream's (event, data) pairs, with the message id and tool ids made stable."""
    text = re.sub(r"msg_[A-Za-z0-9]{24}", "msg_X", raw.decode())
    text = re.sub(r"toolu_[A-Za-z0-9]{24}", "toolu_X", text)
    events = []
    for chunk in text.strip().split("\n\n"):
        name, data = chunk.split("\n", 1)
        events.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return events


def start_event(model: str, input_tokens: int) -> tuple[str, dict[str, Any]]:
    usage = {"input_tokens": input_tokens, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
             "output_tokens": 1}
    return ("message_start", {"type": "message_start", "message": {
        "id": "msg_X", "type": "message", "role": "assistant", "content": [], "model": model,
        "stop_reason": None, "stop_sequence": None, "usage": usage}})


def text_events(text: str, stop: str, output_tokens: int) -> list[tuple[str, dict[str, Any]]]:
    """A text reply to a request with tools: the block opens with the first text (it might be a call)."""
    return [
        ("ping", {"type": "ping"}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": text}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                           "usage": {"output_tokens": output_tokens}}),
        ("message_stop", {"type": "message_stop"}),
    ]


async def test_a_claude_code_2026_request_is_served_with_exact_events(serve: Any) -> None:
    engine = FakeEngine(["Done."], Completion("end_turn", None, 2))
    client = await serve(engine)
    resp = await client.post("/v1/messages?beta=true", json=claude_code_body())
    raw = await resp.read()
    assert resp.status == 200, raw
    tokens = await engine.count_tokens(engine.requests[0].prompt)
    assert stream_events(raw) == [start_event("claude-haiku-4-5-20251001", tokens),
                                  *text_events("Done.", "end_turn", 2)]
    prompt = engine.requests[0].prompt
    # The tool search's result names the tool found; the screenshot is a note, not a 400.
    assert prompt.turns[-1].results == (ToolResult("toolu_a", "[tool: Glob]"), ToolResult("toolu_b", IMAGE_NOTE))
    assert [t.name for t in prompt.tools] == CLAUDE_CODE_TOOLS  # no policy on this proxy: all offered


@pytest.mark.parametrize("name", ["claude-haiku-4-5-20251001", "claude-sonnet-4-5", "claude-opus-4-7[1m]",
                                  "claude-3-5-haiku-latest"])
async def test_any_claude_name_reaches_the_served_model(serve: Any, name: str) -> None:
    engine = FakeEngine(["ok"])
    client = await serve(engine)
    resp = await client.post("/v1/messages", json={"model": name, "max_tokens": 8,
                                                   "messages": [{"role": "user", "content": "hi"}]})
    body = await resp.json()
    assert resp.status == 200 and body["model"] == name and body["content"] == [{"type": "text", "text": "ok"}]
    assert len(engine.requests) == 1


async def test_a_pdf_and_an_image_in_a_user_turn_become_notes_non_streaming(serve: Any) -> None:
    engine = FakeEngine(["Seen."])
    client = await serve(engine)
    pdf = {"type": "document", "title": "spec.pdf",
           "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}
    resp = await client.post("/v1/messages", json={"model": "m", "max_tokens": 8, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Read these"}, PNG, pdf]}]})
    assert resp.status == 200 and (await resp.json())["content"] == [{"type": "text", "text": "Seen."}]
    assert engine.requests[0].prompt.turns[-1].content == (
        f"Read these\n\n{IMAGE_NOTE}\n\n[document 'spec.pdf' left out (a PDF): this model reads text only]")


# --- the tool policy --------------------------------------------------------------------------


SMALL = ToolPolicy(SMALL_MODEL_TOOLS, "test")


async def test_the_policy_offers_a_small_model_only_the_tools_it_can_use(serve: Any) -> None:
    engine = FakeEngine(["Done."])
    client = await serve(engine, SMALL)
    resp = await client.post("/v1/messages", json=claude_code_body())
    assert resp.status == 200
    request = engine.requests[0]
    assert [t.name for t in request.prompt.tools] == ["Bash", "Edit", "Read", "Write"]  # the request's order
    guidance = request.options.guidance
    assert guidance is not None and "Write" in guidance.text and "Agent" not in guidance.text
    # count_tokens counts the same narrowed prompt.
    count = await client.post("/v1/messages/count_tokens", json={
        k: v for k, v in claude_code_body().items() if k in ("model", "messages", "system", "tools")})
    assert (await count.json())["input_tokens"] == await engine.count_tokens(request.prompt)


def call(name: str, arguments: dict[str, Any]) -> list[str]:
    """What the model writes for a call: the fenced JSON form, in pieces as deltas come."""
    return ["```json\n", json.dumps({"name": name, "arguments": arguments}), "\n```"]


async def test_a_hidden_tool_is_never_called_it_stays_text(serve: Any) -> None:
    written = call("Agent", {"file_path": "x"})
    engine = FakeEngine(written, Completion("end_turn", None, 9))
    client = await serve(engine, SMALL)
    resp = await client.post("/v1/messages", json=claude_code_body())
    events = stream_events(await resp.read())
    assert not [e for name, e in events if name == "content_block_start" and e["content_block"]["type"] != "text"]
    text = "".join(e["delta"]["text"] for name, e in events if name == "content_block_delta")
    assert text == "".join(written)
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"


async def test_an_offered_tool_is_called_with_exact_events(serve: Any) -> None:
    engine = FakeEngine(call("Write", {"file_path": "hello.py", "content": "print('hello world')\n"}),
                        Completion("end_turn", None, 20))
    client = await serve(engine, SMALL)
    resp = await client.post("/v1/messages", json=claude_code_body(model="qwen2.5-coder-1.5b"))
    events = stream_events(await resp.read())
    tokens = await engine.count_tokens(engine.requests[0].prompt)
    args = '{"file_path": "hello.py", "content": "print(\'hello world\')\\n"}'
    deltas = [e["delta"]["partial_json"] for name, e in events if name == "content_block_delta"]
    assert "".join(deltas) == args
    assert [(n, e) for n, e in events if n != "content_block_delta"] == [
        start_event("qwen2.5-coder-1.5b", tokens),
        ("ping", {"type": "ping"}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
            "type": "tool_use", "id": "toolu_X", "name": "Write", "input": {}}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                           "usage": {"output_tokens": 20}}),
        ("message_stop", {"type": "message_stop"}),
    ]


async def test_a_client_with_its_own_tools_keeps_them_all(serve: Any) -> None:
    engine = FakeEngine(["ok"])
    client = await serve(engine, SMALL)
    body = {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "weather?"}],
            "tools": [{"name": "get_weather", "input_schema": SCHEMA}, {"name": "get_time", "input_schema": SCHEMA}]}
    assert (await client.post("/v1/messages", json=body)).status == 200
    assert [t.name for t in engine.requests[0].prompt.tools] == ["get_weather", "get_time"]


# --- the window, as gateway clients read it ----------------------------------------------------


async def test_models_entries_carry_the_window_and_output_limit(serve: Any) -> None:
    client = await serve(FakeEngine())  # its model has an 8,192-token context
    headers = {"anthropic-version": "2023-06-01"}
    listed = await (await client.get("/v1/models?limit=1000", headers=headers)).json()
    entry = listed["data"][0]
    assert (entry["max_input_tokens"], entry["max_tokens"]) == (8192, 2048)
    assert await (await client.get(f"/v1/models/{entry['id']}", headers=headers)).json() == entry
