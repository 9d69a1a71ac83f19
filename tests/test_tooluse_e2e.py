"""Tool use end to end: the real proxy process, the real default model (135M), the official anthropic SDK.

The tools are chosen so that a greedy call always fits a tiny max_tokens (enums, short strings): each
test can then insist on a complete call where the tool_choice forces one.  What the grammar guarantees
is checked on every call: a known name, an input that validates against the tool's schema.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from agentic_flow.tooluse.validate import validate

GREEDY = {"temperature": 0}
LIGHT: Any = {
    "name": "set_light",
    "description": "Turn the room light on or off.",
    "input_schema": {"type": "object", "properties": {"state": {"enum": ["on", "off"]}}, "required": ["state"]},
}
CLOCK: Any = {
    "name": "get_time",
    "description": "Tell the current time in a time zone.",
    "input_schema": {"type": "object", "properties": {"zone": {"enum": ["UTC", "CET"]}}, "required": ["zone"]},
}
TOOLS: Any = [LIGHT, CLOCK]
SCHEMAS: dict[str, Any] = {t["name"]: t["input_schema"] for t in TOOLS}
ASK: Any = [{"role": "user", "content": "It is dark in here. Please turn the light on."}]
# Long enough for the prefix cache (PREFIX_MIN_TOKENS), as an agent's system prompt is.
SYSTEM = "You are a home assistant. " + " ".join(f"Rule {i}: be brief and use the tools when asked." for i in range(12))


def create(client: anthropic.Anthropic, **fields: Any) -> Any:
    body: dict[str, Any] = {"model": "m", "max_tokens": 48, "messages": ASK, "tools": TOOLS, **fields}
    return client.messages.create(extra_body=GREEDY, **body)


def calls(message: Any) -> list[Any]:
    for block in message.content:
        if block.type == "tool_use":
            assert block.id.startswith("toolu_") and block.name in SCHEMAS
            assert validate(block.input, SCHEMAS[block.name]) == []
    return [b for b in message.content if b.type == "tool_use"]


def test_named_tool_is_called_with_valid_input(client: anthropic.Anthropic) -> None:
    msg = create(client, tool_choice={"type": "tool", "name": "get_time", "disable_parallel_tool_use": True})
    assert msg.stop_reason == "tool_use"
    made = calls(msg)
    assert [c.name for c in made] == ["get_time"]


def test_stream_accumulator_gives_the_non_streaming_input(client: anthropic.Anthropic) -> None:
    fields: dict[str, Any] = {"tool_choice": {"type": "any", "disable_parallel_tool_use": True}}
    made = create(client, **fields)
    events: list[Any] = []
    with client.messages.stream(model="m", max_tokens=48, messages=ASK, tools=TOOLS, extra_body=GREEDY,
                                **fields) as stream:
        events = list(stream)
        final = stream.get_final_message()
    assert made.stop_reason == final.stop_reason == "tool_use"
    [one], [two] = calls(made), calls(final)
    assert (one.name, one.input) == (two.name, two.input) and one.id != two.id
    starts = [e for e in events if e.type == "content_block_start" and e.content_block.type == "tool_use"]
    assert len(starts) == 1 and starts[0].content_block.input == {}
    assert any(e.type == "content_block_delta" and e.delta.type == "input_json_delta" for e in events)


def test_parallel_calls_are_allowed_unless_disabled(client: anthropic.Anthropic) -> None:
    ask: Any = [{"role": "user", "content": "Turn the light on, and tell me the time in UTC and in CET."}]
    parallel = calls(create(client, messages=ask, max_tokens=120, tool_choice={"type": "any"}))
    single = calls(create(client, messages=ask, max_tokens=120,
                          tool_choice={"type": "any", "disable_parallel_tool_use": True}))
    assert len(single) == 1
    assert len(parallel) >= 1 and len({c.id for c in parallel}) == len(parallel)


def test_auto_answers_with_text_or_valid_calls(client: anthropic.Anthropic) -> None:
    msg = create(client, tool_choice={"type": "auto"})
    assert msg.content and msg.stop_reason in ("end_turn", "max_tokens", "tool_use")
    assert (msg.stop_reason == "tool_use") == bool(calls(msg))


def test_none_answers_in_text(client: anthropic.Anthropic) -> None:
    msg = create(client, tool_choice={"type": "none"}, max_tokens=16)
    assert [b.type for b in msg.content] == ["text"] and msg.stop_reason != "tool_use"


def test_tool_result_round_trip(client: anthropic.Anthropic) -> None:
    history: Any = [
        *ASK,
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_01", "name": "set_light", "input": {"state": "on"}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "The light is on."}],
        },
    ]
    count = client.messages.count_tokens(model="m", messages=history, tools=TOOLS)
    bare = client.messages.count_tokens(model="m", messages=ASK)
    assert count.input_tokens > bare.input_tokens + 40  # the tools and the call, as rendered
    msg = create(client, messages=history, max_tokens=24)
    assert msg.content and msg.usage.input_tokens + (msg.usage.cache_read_input_tokens or 0) == count.input_tokens
    calls(msg)


def test_schema_llguidance_refuses_falls_back_to_a_valid_call(client: anthropic.Anthropic) -> None:
    # An unbalanced regex: schema.prepare does not catch it, llguidance refuses the grammar; the engine
    # retries with any JSON object for the tool, and the answer is still a call, never a 500.
    odd: Any = {
        "name": "tag",
        "description": "Tag the request.",
        "input_schema": {
            "type": "object",
            "properties": {"label": {"enum": ["a", "b"]}, "code": {"type": "string", "pattern": "([a-z]"}},
            "required": ["label"],
        },
    }
    events = list(client.messages.create(model="m", max_tokens=48, messages=ASK, tools=[odd], extra_body=GREEDY,
                                         tool_choice={"type": "tool", "name": "tag"}, stream=True))
    # The forced call opens the reply under the fallback grammar (without it: an error, not a call); the
    # 135M model may still loop inside a string until max_tokens cuts the call.
    starts = [e.content_block for e in events if e.type == "content_block_start"]
    assert [(b.type, getattr(b, "name", None)) for b in starts] == [("tool_use", "tag")]
    assert not [e for e in events if e.type == "error"]
    stop = [e.delta.stop_reason for e in events if e.type == "message_delta"]
    assert stop in (["tool_use"], ["max_tokens"])


def test_client_tool_type_uses_its_documented_schema(client: anthropic.Anthropic) -> None:
    bash: Any = {"type": "bash_20250124", "name": "bash"}
    events = list(client.messages.create(model="m", max_tokens=48, tools=[bash], tool_choice={"type": "any"},
                                         messages=[{"role": "user", "content": "List the files."}],
                                         extra_body=GREEDY, stream=True))
    # Forced: one call of `bash`, whose input follows the documented schema (the required command).
    # (The 135M model may then idle in whitespace until max_tokens: the stop reason is not asserted.)
    starts = [e.content_block for e in events if e.type == "content_block_start"]
    assert [(b.type, getattr(b, "name", None)) for b in starts] == [("tool_use", "bash")]
    partial = "".join(e.delta.partial_json for e in events
                      if e.type == "content_block_delta" and e.delta.type == "input_json_delta")
    assert isinstance(json.loads(partial)["command"], str)  # complete: the call was not cut


def test_server_tool_is_a_400_naming_it(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        create(client, tools=[LIGHT, {"type": "web_search_20250305", "name": "web_search"}])
    assert "web_search" in str(caught.value)
    with pytest.raises(anthropic.BadRequestError, match="tool_choice"):
        create(client, tool_choice={"type": "tool", "name": "absent"})


def test_second_conversation_reads_the_shared_prefix_from_cache(client: anthropic.Anthropic) -> None:
    first = create(client, system=SYSTEM, max_tokens=8, tool_choice={"type": "auto"})
    other: Any = [{"role": "user", "content": "What time is it in CET?"}]
    second = create(client, system=SYSTEM, messages=other, max_tokens=8, tool_choice={"type": "auto"})
    assert first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens > 100  # the system prompt and the tools
    total = client.messages.count_tokens(model="m", system=SYSTEM, messages=other, tools=TOOLS)
    assert second.usage.input_tokens + second.usage.cache_read_input_tokens == total.input_tokens
