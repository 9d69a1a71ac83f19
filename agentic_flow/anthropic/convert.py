"""A validated Messages request decoded into the neutral `chat.Request`: turns, tools, a tool choice, sampling.

- the system prompt is the `system` field plus every `system`-role message found inside `messages`
  (Claude Code sends one there);
- tool_use blocks become the assistant turn's calls and tool_result blocks the user turn's results:
  the model's chat template renders them the way the model was trained, and the tool definitions go the
  same way, so `count_tokens` counts them as rendered;
- Anthropic's client tools (`bash_*`, `text_editor_*`) get their documented input schemas (`client_tools`);
  server tools (web search and the like) and other versioned tools are refused with a 400 naming them;
- thinking blocks are dropped (their text is not meant to be shown back to a model);
- consecutive turns of the same role are merged, as Anthropic does;
- images, and documents that are not text (PDFs, URLs, files), become a short text note saying what
  was left out (`IMAGE_NOTE`, `DOCUMENT_NOTE`): the model reads text only, and a 400 would end the
  session of a client that sent one (Claude Code's Read returns an image for an image file);
- a `tool_reference` inside a tool result (what a tool search found) becomes `[tool: NAME]`.
- `output_config.format` (or the beta's `output_format`) of type json_schema becomes the request's
  structured output (chat.OutputFormat), planned by serving.planning.

A first turn from the assistant is accepted: Anthropic's own API accepts it (only some other hosts of
its models refuse it), and a chat template renders it without trouble.  A final assistant turn of text
stays last and becomes the prefill that the reply continues.
"""

from __future__ import annotations

from typing import assert_never

from ..chat import OutputFormat, Prompt, Request, Sampling, ToolCall, ToolChoice, ToolResult, Turn
from .client_tools import tool_spec
from .requests import InvalidRequest
from .types import (
    ContentBlock,
    CountTokensRequest,
    DocumentBlock,
    ImageBlock,
    Message,
    MessagesRequest,
    RedactedThinkingBlock,
    TextBlock,
    ThinkingBlock,
    ToolReferenceBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from .types import ToolChoice as WireToolChoice

TURN_SEPARATOR = "\n\n"
IMAGE_NOTE = "[image left out: this model reads text only]"
DOCUMENT_NOTE = "[document{title} left out ({kind}): this model reads text only]"
_DOCUMENT_KINDS = {"base64": "a PDF", "url": "a URL", "file": "an uploaded file", "content": "images"}


def to_request(req: MessagesRequest) -> Request:
    sampling = Sampling(max_tokens=req.max_tokens, temperature=req.temperature, top_p=req.top_p,
                        # top_k 0 keeps every token: the same as no cut at all.
                        top_k=req.top_k or None,
                        # Empty stop sequences never get here: the request parser refuses them with a 400.
                        stop_sequences=req.stop_sequences)
    output = None if req.output_schema is None else OutputFormat(req.output_schema, req.output_path)
    return Request(req.model, to_prompt(req), sampling, req.stream, output)


def to_prompt(req: CountTokensRequest) -> Prompt:
    """Raises InvalidRequest (400) for what this model cannot take: server tools, a tool_choice naming a
    tool that is not there."""
    tools = tuple(tool_spec(tool, f"tools.{i}") for i, tool in enumerate(req.tools))
    choice = _choice(req.tool_choice)
    if choice is not None and choice.mode == "tool" and choice.name not in {t.name for t in tools}:
        raise InvalidRequest(f"tool_choice.name: {choice.name!r} is not among the tools")
    system = [block.text for block in req.system if block.text]
    turns: list[Turn] = []
    for i, message in enumerate(req.messages):
        turn = _turn(message, f"messages.{i}")
        if not (turn.content or turn.calls or turn.results):
            continue  # nothing a text model can read (only thinking, or empty content)
        if message.role == "system":
            system.append(turn.content)
        else:
            _append_merged(turns, turn)
    head = (Turn("system", TURN_SEPARATOR.join(system)),) if system else ()
    return Prompt(head + tuple(turns), tools, choice)


def _choice(choice: WireToolChoice | None) -> ToolChoice | None:
    if choice is None:
        return None  # auto
    return ToolChoice(choice.type, choice.name, parallel=not choice.disable_parallel_tool_use)


def _append_merged(turns: list[Turn], turn: Turn) -> None:
    if not turns or turns[-1].role != turn.role:
        turns.append(turn)
        return
    last = turns[-1]
    content = TURN_SEPARATOR.join(part for part in (last.content, turn.content) if part)
    turns[-1] = Turn(turn.role, content, last.calls + turn.calls, last.results + turn.results)


def _turn(message: Message, path: str) -> Turn:
    texts: list[str] = []
    calls: list[ToolCall] = []
    results: list[ToolResult] = []
    for block in message.content:
        if isinstance(block, ToolUseBlock):
            calls.append(ToolCall(block.id, block.name, block.input))
        elif isinstance(block, ToolResultBlock):
            results.append(ToolResult(block.tool_use_id, _tool_result_text(block), block.is_error))
        elif text := _render_block(block):
            texts.append(text)
    if message.role != "assistant" and calls:
        raise InvalidRequest(f"{path}: tool_use blocks belong in assistant messages")
    if message.role != "user" and results:
        raise InvalidRequest(f"{path}: tool_result blocks belong in user messages")
    return Turn(message.role, TURN_SEPARATOR.join(texts), tuple(calls), tuple(results))


def _render_block(block: ContentBlock | ToolReferenceBlock) -> str:
    match block:
        case TextBlock():
            return block.text
        case ThinkingBlock() | RedactedThinkingBlock():
            return ""
        case ToolUseBlock() | ToolResultBlock():
            return ""  # carried as calls and results (_turn); never inside a tool result
        case ImageBlock():
            return IMAGE_NOTE
        case DocumentBlock():
            return _render_document(block)
        case ToolReferenceBlock():
            return f"[tool: {block.tool_name}]"
        case _:
            assert_never(block)


def _tool_result_text(block: ToolResultBlock) -> str:
    parts = (_render_block(item) for item in block.content)
    return TURN_SEPARATOR.join(part for part in parts if part)


def _render_document(block: DocumentBlock) -> str:
    if block.text is None:
        title = f" {block.title!r}" if block.title else ""
        return DOCUMENT_NOTE.format(title=title, kind=_DOCUMENT_KINDS.get(block.source_type, block.source_type))
    return f"[document: {block.title}]\n{block.text}" if block.title else block.text
