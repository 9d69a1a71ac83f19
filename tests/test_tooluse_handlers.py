"""Tool use through the proxy's handler over a fake engine whose output is scripted: the exact event
sequence of text then a call, stop sequences that apply to text only, an overlong call, cache usage,
and pings while the engine is silent."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from agentic_flow.engine.base import Completion
from agentic_flow.proxy.app import create_app
from agentic_flow.proxy.state import STATE
from tests.fake_engine import FakeEngine
from tests.test_handlers import ClientMaker, make_state

READ = {"name": "Read", "description": "Read a file.",
        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}
BODY = {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "Read a.txt"}], "tools": [READ]}
CALL = ['Let me look.', "\n<tool_call>\n", '{"name": "Read", "arguments": {"path": "a', '.txt"}}', "\n</tool_call>"]


@pytest.fixture()
def app_client(aiohttp_client: ClientMaker) -> Callable[[FakeEngine], Awaitable[TestClient[Any, Any]]]:
    async def start(engine: FakeEngine) -> TestClient[Any, Any]:
        return await aiohttp_client(create_app(make_state(engine), api_key=None, max_body=1 << 20))
    return start


def events(raw: bytes) -> list[dict[str, Any]]:
    out = []
    for chunk in raw.decode().split("\n\n"):
        if chunk:
            name, data = chunk.split("\n", 1)
            event = json.loads(data.removeprefix("data: "))
            assert name == f"event: {event['type']}"
            out.append(event)
    return out


async def stream(client: Any, **fields: Any) -> list[dict[str, Any]]:
    resp = await client.post("/v1/messages", json={**BODY, "stream": True, **fields})
    assert resp.status == 200
    return events(await resp.read())


async def test_text_then_a_call_stream_event_by_event(app_client: Any) -> None:
    client = await app_client(FakeEngine(CALL, Completion("end_turn", None, 5)))
    got = await stream(client)
    kinds = [(e["type"], e.get("index")) for e in got]
    assert kinds == [
        ("message_start", None), ("ping", None),
        ("content_block_start", 0), ("content_block_delta", 0), ("content_block_stop", 0),
        ("content_block_start", 1), ("content_block_delta", 1), ("content_block_delta", 1), ("content_block_stop", 1),
        ("message_delta", None), ("message_stop", None),
    ]
    assert got[3]["delta"] == {"type": "text_delta", "text": "Let me look."}
    block = got[5]["content_block"]
    assert block["type"] == "tool_use" and block["name"] == "Read" and block["input"] == {}
    assert block["id"].startswith("toolu_")
    joined = "".join(e["delta"]["partial_json"] for e in got[6:8])
    assert json.loads(joined) == {"path": "a.txt"}
    assert got[9]["delta"]["stop_reason"] == "tool_use"


async def test_non_streaming_gives_text_and_tool_use_blocks(app_client: Any) -> None:
    engine = FakeEngine(CALL, Completion("end_turn", None, 5))
    client = await app_client(engine)
    body = await (await client.post("/v1/messages", json=BODY)).json()
    assert body["content"][0] == {"type": "text", "text": "Let me look."}
    assert {k: body["content"][1][k] for k in ("type", "name", "input")} == {
        "type": "tool_use", "name": "Read", "input": {"path": "a.txt"}}
    assert body["stop_reason"] == "tool_use"
    assert engine.requests[0].options.guidance is not None


async def test_stop_sequences_apply_to_text_only(app_client: Any) -> None:
    # "}" inside the call's JSON must not end it; the engine gets no stop sequences for a guided request.
    engine = FakeEngine(CALL, Completion("end_turn", None, 5))
    client = await app_client(engine)
    body = await (await client.post("/v1/messages", json={**BODY, "stop_sequences": ["}", "look"]})).json()
    assert engine.requests[0].options.stop_sequences == ()
    assert body["content"] == [{"type": "text", "text": "Let me "}]
    assert body["stop_reason"] == "stop_sequence" and body["stop_sequence"] == "look"
    assert engine.generations[0].closed
    body = await (await client.post("/v1/messages", json={**BODY, "stop_sequences": ["}"]})).json()
    assert body["stop_reason"] == "tool_use" and body["content"][1]["input"] == {"path": "a.txt"}


async def test_an_overlong_call_ends_with_max_tokens(app_client: Any) -> None:
    deltas = ["<tool_call>\n", '{"name": "Read", "arguments": {"path": "', *["x" * 1000] * 40]
    engine = FakeEngine(deltas, Completion("end_turn", None, 42))
    client = await app_client(engine)
    got = await stream(client)
    assert got[-2]["delta"]["stop_reason"] == "max_tokens"
    assert [e["type"] for e in got[-4:-2]] == ["content_block_delta", "content_block_stop"]
    body = await (await client.post("/v1/messages", json=BODY)).json()
    assert body["stop_reason"] == "max_tokens" and body["content"] == [{"type": "text", "text": ""}]


async def test_no_tools_guidance_for_tool_choice_none(app_client: Any) -> None:
    engine = FakeEngine(CALL, Completion("end_turn", None, 5))
    client = await app_client(engine)
    body = await (await client.post("/v1/messages", json={**BODY, "tool_choice": {"type": "none"}})).json()
    assert engine.requests[0].options.guidance is None
    assert [b["type"] for b in body["content"]] == ["text"] and body["stop_reason"] == "end_turn"


async def test_cache_reads_are_reported_apart_from_input_tokens(app_client: Any) -> None:
    engine = FakeEngine(["Hi"], Completion("end_turn", None, 1, cached_tokens=5))
    client = await app_client(engine)
    body = await (await client.post("/v1/messages", json=BODY)).json()
    total = engine.generations[0].input_tokens
    assert body["usage"]["cache_read_input_tokens"] == 5 and body["usage"]["input_tokens"] == total - 5
    got = await stream(client)
    assert got[0]["message"]["usage"]["cache_read_input_tokens"] == 5
    assert "cache_read_input_tokens" not in got[-2]["usage"]  # as expected at the start: no correction


async def test_pings_while_the_engine_is_silent(app_client: Any) -> None:
    client = await app_client(FakeEngine(["a", "b"], Completion("end_turn", None, 2), delay=0.25))
    client.app[STATE].backend.ping_interval = 0.05
    got = await stream(client, tools=[])
    first_delta = next(i for i, e in enumerate(got) if e["type"] == "content_block_delta")
    assert sum(e["type"] == "ping" for e in got[:first_delta]) >= 3
    assert got[-1]["type"] == "message_stop"
