"""Tools and tool history rendered for a template with a tools format (Qwen) and one without (SmolLM2)."""

from __future__ import annotations

import json

from agentic_flow.tooluse.render import render_chat, shorten, template_has_tools
from agentic_flow.tooluse.types import ToolCall, ToolChoice, ToolResult, ToolSpec, Turn

BASH = ToolSpec("Bash", "Run a command.\n\nLong details " * 3, {"type": "object", "properties": {}})
TURNS = (
    Turn("system", "Be brief."),
    Turn("user", "list files"),
    Turn("assistant", "Looking.", calls=(ToolCall("toolu_1", "Bash", {"command": "ls"}),)),
    Turn("user", "thanks", results=(ToolResult("toolu_1", "a.py", is_error=True),)),
)
QWEN_LIKE = "{% if tools %}...{% endif %}{% for m in messages %}{{ m.tool_calls }}{% endfor %}"


def test_template_detection() -> None:
    assert template_has_tools(QWEN_LIKE)
    assert not template_has_tools("{% for message in messages %}{{ message['content'] }}{% endfor %}")


def test_native_messages_follow_the_transformers_convention() -> None:
    chat = render_chat(TURNS, (BASH,), ToolChoice(), native=True)
    assert [m["role"] for m in chat.messages] == ["system", "user", "assistant", "tool", "user"]
    assert chat.messages[2]["tool_calls"] == [
        {"type": "function", "id": "toolu_1", "function": {"name": "Bash", "arguments": {"command": "ls"}}}
    ]
    assert chat.messages[3]["content"] == "Error: a.py"
    tools = json.loads(chat.tools or "")
    assert tools[0]["function"]["name"] == "Bash" and tools[0]["function"]["description"] == "Run a command."


def test_fallback_writes_tags_into_the_text() -> None:
    chat = render_chat(TURNS, (BASH,), ToolChoice(), native=False)
    assert chat.tools is None
    system, _user, assistant, result = (m["content"] for m in chat.messages)
    assert "Be brief." in str(system) and '"name": "Bash"' in str(system) and "<tool_call>" in str(system)
    assert assistant == 'Looking.\n<tool_call>\n{"name": "Bash", "arguments": {"command": "ls"}}\n</tool_call>'
    assert result == "<tool_response>\nError: a.py\n</tool_response>\nthanks"


def test_tool_choice_none_leaves_tools_out() -> None:
    assert render_chat(TURNS, (BASH,), ToolChoice("none"), native=True).tools is None
    fallback = render_chat(TURNS, (BASH,), ToolChoice("none"), native=False)
    assert "<tools>" not in str(fallback.messages[0]["content"])


def test_final_plain_assistant_turn_is_a_prefill() -> None:
    chat = render_chat((Turn("user", "hi"), Turn("assistant", "Hel")), (), ToolChoice(), native=True)
    assert chat.prefill == "Hel" and [m["role"] for m in chat.messages] == ["user"]


def test_shorten_keeps_the_first_paragraph_within_the_limit() -> None:
    assert shorten("One.\n\nTwo.", 100) == "One."
    assert shorten("x" * 20, 10) == "x" * 9 + "…"


def test_parameter_descriptions_are_cut_in_the_prompt_only() -> None:
    long = "Use this for everything. " * 40
    schema = {"type": "object", "properties": {"command": {"type": "string", "description": long}},
              "required": ["command"]}
    tool = ToolSpec("Bash", "Runs a command.", schema)
    rendered = render_chat((Turn("user", "hi"),), (tool,), ToolChoice(), native=True)
    shown = json.loads(str(rendered.tools))[0]["function"]["parameters"]["properties"]["command"]
    assert len(shown["description"]) <= 160 and shown["description"].startswith("Use this")
    assert schema["properties"]["command"]["description"] == long  # the grammar's copy is untouched
