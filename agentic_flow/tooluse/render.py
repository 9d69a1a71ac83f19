"""Tools and tool history put into the prompt the way the model was trained to read them.

A chat template with a tools format (Qwen2.5: `{% if tools %}` ... `message.tool_calls` ... role `tool`)
gets structured messages in the transformers convention and the tool list as JSON; onnxruntime-genai 0.18's
`Tokenizer.apply_chat_template(messages, template_str=..., tools=...)` renders both (checked on the Qwen2.5
template).  A template without one (SmolLM2) gets the same Hermes-style text written into the turns: a
tools section in the system prompt and calls/results as tagged text, so one grammar and one parser serve
every model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from . import codeblocks
from .markup import RESPONSE_CLOSE, RESPONSE_OPEN, TAG_CLOSE, TAG_OPEN, call_json, tagged_call
from .types import ToolCall, ToolChoice, ToolResult, ToolSpec, Turn

# Claude Code's tool descriptions run to pages (Bash alone is ~10k characters): rendered whole, 12 tools
# cost ~11.6k prompt tokens through the Qwen template, minutes of prefill here.  The first paragraph,
# bounded, keeps what a small model can use; the grammar enforces the argument schema anyway.
DESCRIPTION_CHARS = 500
PARAMETER_DESCRIPTION_CHARS = 160
ERROR_PREFIX = "Error: "
FALLBACK_INSTRUCTIONS = (
    "# Tools\n\nYou may call one or more tools to help with the user's request. The tools are listed "
    "within <tools></tools> tags:\n<tools>\n{tools}\n</tools>\n\nTo call a tool, answer with a JSON object "
    "holding its name and arguments within <tool_call></tool_call> tags:\n"
    '<tool_call>\n{{"name": <tool-name>, "arguments": <args-json-object>}}\n</tool_call>'
)


@dataclass(frozen=True)
class RenderedChat:
    """What the engine hands to `apply_chat_template`: `messages` (JSON-ready dicts) and `tools` (a JSON
    string, or None for no tools section), then it appends `prefill` to the rendered text."""

    messages: tuple[Mapping[str, object], ...]
    tools: str | None = None
    prefill: str = ""


def template_has_tools(template: str) -> bool:
    """True when a chat template renders a tool list and assistant tool calls itself."""
    return "tools" in template and "tool_calls" in template


def render_chat(
    turns: tuple[Turn, ...],
    tools: tuple[ToolSpec, ...],
    choice: ToolChoice,
    *,
    native: bool,
    description_chars: int = DESCRIPTION_CHARS,
) -> RenderedChat:
    """`native`: the template has a tools format (`template_has_tools`).  With tool_choice `none` the
    tools are left out of the prompt (the reply is text only); calls in the history still render."""
    shown = () if choice.mode == "none" else tools
    turns, prefill = _split_prefill(turns)
    coded = {t.name: t for t in tools if t.code_fields}
    note = codeblocks.instructions(shown)
    if native:
        messages = [m for turn in turns for m in _native_messages(turn, coded)]
        if note:
            messages = _with_system_note(messages, note)
        specs = json.dumps([_function(t, description_chars) for t in shown], ensure_ascii=False)
        return RenderedChat(tuple(messages), specs if shown else None, prefill)
    messages = [_text_message(turn, coded) for turn in turns]
    if shown:
        messages = _with_tools_section(messages, shown, description_chars)
        if note:
            messages = _with_system_note(messages, note)
    return RenderedChat(tuple(_merge_same_role(messages)), None, prefill)


def _with_system_note(messages: list[dict[str, object]], note: str) -> list[dict[str, object]]:
    if messages and messages[0]["role"] == "system":
        return [{"role": "system", "content": f"{messages[0]['content']}\n\n{note}"}, *messages[1:]]
    return [{"role": "system", "content": note}, *messages]


def written_call(call: ToolCall, coded: Mapping[str, ToolSpec]) -> str:
    """A call as the model writes it: tagged JSON, with the code fields as blocks for a code tool."""
    spec = coded.get(call.name)
    if spec is None:
        return tagged_call(call.name, call.input)
    header, blocks = codeblocks.render_blocks(spec, call.input)
    return f"{TAG_OPEN}\n{call_json(call.name, header)}\n{blocks}\n{TAG_CLOSE}"


def _split_prefill(turns: tuple[Turn, ...]) -> tuple[tuple[Turn, ...], str]:
    # A final assistant turn of plain text is a prefill that the reply continues.
    if turns and turns[-1].role == "assistant" and not turns[-1].calls:
        return turns[:-1], turns[-1].content
    return turns, ""


def _function(tool: ToolSpec, description_chars: int) -> dict[str, object]:
    header = codeblocks.header_schema(tool)
    schema = _brief_schema(header) if header is not None else {"type": "object"}
    description = shorten(tool.description, description_chars)
    if tool.code_fields:
        description += f" ({', then '.join(tool.code_fields)}: fenced code blocks after the JSON.)"
    function = {"name": tool.name, "description": description, "parameters": schema}
    return {"type": "function", "function": function}


def _brief_schema(node: object) -> object:
    """The schema as the model reads it: every nested `description` cut like the tool's own.  Claude Code's
    parameter descriptions run to paragraphs; whole, its 12 tools rendered to 8,325 tokens on SmolLM2,
    over that model's 8,192-token context.  Only the prompt's copy is cut: the grammar keeps the schema."""
    if isinstance(node, dict):
        return {key: shorten(value, PARAMETER_DESCRIPTION_CHARS)
                if key == "description" and isinstance(value, str) else _brief_schema(value)
                for key, value in node.items()}
    if isinstance(node, list):
        return [_brief_schema(item) for item in node]
    return node


def shorten(text: str, limit: int) -> str:
    paragraph = text.strip().split("\n\n", 1)[0].strip()
    return paragraph if len(paragraph) <= limit else paragraph[: limit - 1].rstrip() + "…"


def _result_text(result: ToolResult) -> str:
    return ERROR_PREFIX + result.content if result.is_error else result.content


def _native_messages(turn: Turn, coded: Mapping[str, ToolSpec]) -> list[dict[str, object]]:
    if turn.role == "assistant" and any(c.name in coded for c in turn.calls):
        # The template would write a code tool's input as JSON: the turn is written as the model wrote it.
        text = "\n".join([turn.content, *(written_call(c, coded) for c in turn.calls)] if turn.content
                         else [written_call(c, coded) for c in turn.calls])
        return [{"role": "assistant", "content": text}]
    if turn.role == "assistant":
        message: dict[str, object] = {"role": "assistant", "content": turn.content}
        if turn.calls:
            message["tool_calls"] = [
                {"type": "function", "id": c.id, "function": {"name": c.name, "arguments": dict(c.input)}}
                for c in turn.calls
            ]
        return [message]
    out: list[dict[str, object]] = [
        {"role": "tool", "tool_call_id": r.tool_use_id, "content": _result_text(r)} for r in turn.results
    ]
    if turn.content or not turn.results:
        out.append({"role": turn.role, "content": turn.content})
    return out


def _text_message(turn: Turn, coded: Mapping[str, ToolSpec]) -> dict[str, object]:
    parts = [f"{RESPONSE_OPEN}\n{_result_text(r)}\n{RESPONSE_CLOSE}" for r in turn.results]
    parts += [turn.content] if turn.content else []
    parts += [written_call(c, coded) for c in turn.calls]
    return {"role": turn.role, "content": "\n".join(parts)}


def _with_tools_section(
    messages: list[dict[str, object]], tools: tuple[ToolSpec, ...], description_chars: int
) -> list[dict[str, object]]:
    listing = "\n".join(json.dumps(_function(t, description_chars), ensure_ascii=False) for t in tools)
    section = FALLBACK_INSTRUCTIONS.format(tools=listing)
    if messages and messages[0]["role"] == "system":
        head: dict[str, object] = {"role": "system", "content": f"{messages[0]['content']}\n\n{section}"}
        return [head, *messages[1:]]
    return [{"role": "system", "content": section}, *messages]


def _merge_same_role(messages: list[dict[str, object]]) -> list[dict[str, object]]:
    merged: list[dict[str, object]] = []
    for message in messages:
        if merged and merged[-1]["role"] == message["role"]:
            joined = f"{merged[-1]['content']}\n\n{message['content']}"
            merged[-1] = {"role": message["role"], "content": joined}
        else:
            merged.append(message)
    return merged
