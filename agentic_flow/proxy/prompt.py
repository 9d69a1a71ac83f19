"""A validated Anthropic request turned into plain chat turns for a text-only model's chat template.

The local model reads text only and cannot call tools yet, so the conversation is flattened:
- the system prompt is the `system` field plus every `system`-role message found inside `messages`
  (Claude Code sends one there), and a compact list of the client's tools;
- tool calls and tool results become readable text, so the model can follow an agent's transcript;
- thinking blocks are dropped (their text is not meant to be shown back to a model);
- consecutive turns of the same role are merged, as Anthropic does;
- images, and documents that are not text, are refused with a 400 naming the block.

A first turn from the assistant is accepted: Anthropic's own API accepts it (only some other hosts of
its models refuse it), and a chat template renders it without trouble.  A final assistant turn stays
last and becomes the prefill that the reply continues.
"""

from __future__ import annotations

import json
from typing import assert_never

from ..anthropic.requests import InvalidRequest
from ..anthropic.types import (
    ContentBlock,
    CountTokensRequest,
    DocumentBlock,
    ImageBlock,
    Message,
    MessagesRequest,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from ..engine.base import ChatPrompt, ChatTurn, SamplingOptions

TURN_SEPARATOR = "\n\n"
# Below the vocabulary of every model the proxy serves (the smallest, SmolLM2's, has 49,152 tokens);
# past the first thousand candidates the probabilities left are negligible.
TOP_K_MAX = 1000
TOOL_SUMMARY_CHARS = 160  # Claude Code's tool descriptions run to pages; one line each is enough here
TOOLS_PREAMBLE = "The user's client has these tools. You cannot call them here: answer in plain text."


def to_chat_prompt(req: CountTokensRequest) -> ChatPrompt:
    system = [block.text for block in req.system if block.text]
    turns: list[ChatTurn] = []
    for i, message in enumerate(req.messages):
        text = _render_message(message, f"messages.{i}")
        if not text:
            continue  # nothing a text model can read (only thinking, or empty content)
        if message.role == "system":
            system.append(text)
        else:
            _append_merged(turns, ChatTurn(message.role, text))
    if tools := _describe_tools(req):
        system.append(tools)
    head = (ChatTurn("system", TURN_SEPARATOR.join(system)),) if system else ()
    return ChatPrompt(head + tuple(turns))


def sampling_options(req: MessagesRequest) -> SamplingOptions:
    return SamplingOptions(
        max_tokens=req.max_tokens,
        temperature=1.0 if req.temperature is None else req.temperature,  # Anthropic's default
        top_p=req.top_p,
        # top_k 0 keeps every token: the same as no cut at all.  Above TOP_K_MAX it is clamped, so the
        # engine never sees a value beyond its vocabulary or its 32-bit integer.
        top_k=min(req.top_k, TOP_K_MAX) if req.top_k else None,
        # Empty stop sequences never get here: the request parser refuses them with a 400.
        stop_sequences=req.stop_sequences,
    )


def _append_merged(turns: list[ChatTurn], turn: ChatTurn) -> None:
    if turns and turns[-1].role == turn.role:
        turns[-1] = ChatTurn(turn.role, turns[-1].content + TURN_SEPARATOR + turn.content)
    else:
        turns.append(turn)


def _render_message(message: Message, path: str) -> str:
    parts = (_render_block(block, f"{path}.content.{j}") for j, block in enumerate(message.content))
    return TURN_SEPARATOR.join(part for part in parts if part)


def _render_block(block: ContentBlock, path: str) -> str:
    match block:
        case TextBlock():
            return block.text
        case ThinkingBlock() | RedactedThinkingBlock():
            return ""
        case ToolUseBlock():
            return f"[tool call {block.name} id={block.id}] {json.dumps(block.input, ensure_ascii=False)}"
        case ToolResultBlock():
            return _render_tool_result(block, path)
        case ImageBlock():
            raise InvalidRequest(f"{path}: this model cannot read images; send text only")
        case DocumentBlock():
            return _render_document(block, path)
        case _:
            assert_never(block)


def _render_tool_result(block: ToolResultBlock, path: str) -> str:
    header = f"[tool result for {block.tool_use_id}]" + (" (error)" if block.is_error else "")
    parts = (_render_block(item, f"{path}.content.{k}") for k, item in enumerate(block.content))
    body = TURN_SEPARATOR.join(part for part in parts if part)
    return f"{header}\n{body}" if body else header


def _render_document(block: DocumentBlock, path: str) -> str:
    if block.text is None:
        raise InvalidRequest(
            f"{path}: this model cannot read documents with a {block.source_type!r} source; send text only"
        )
    return f"[document: {block.title}]\n{block.text}" if block.title else block.text


def _describe_tools(req: CountTokensRequest) -> str:
    if not req.tools or (req.tool_choice is not None and req.tool_choice.type == "none"):
        return ""
    lines = [TOOLS_PREAMBLE]
    for tool in req.tools:
        summary = _first_line(tool.description)
        lines.append(f"- {tool.name}: {summary}" if summary else f"- {tool.name}")
    return "\n".join(lines)


def _first_line(text: str) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= TOOL_SUMMARY_CHARS else line[: TOOL_SUMMARY_CHARS - 1].rstrip() + "…"
