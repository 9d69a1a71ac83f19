"""SERVE direction, request: a validated Chat Completions request -> an Anthropic Messages request dict.

The result is plain Anthropic wire JSON, fed to the proxy's own Messages parser, so the core validates
one protocol only.  Mapping decisions (each one where Anthropic has no exact counterpart):

- system and developer messages, wherever they stand, join the top-level `system` in order;
- an assistant's `tool_calls` become `tool_use` blocks (arguments parsed from their JSON string);
- `tool` messages become `tool_result` blocks, and consecutive tool/user messages merge into one user
  turn with the tool results first, as Anthropic requires right after a tool_use turn;
- `tool_choice`: auto->auto, required->any, named->tool, none->none; `parallel_tool_calls: false`
  -> `disable_parallel_tool_use: true`;
- `temperature` is clamped to Anthropic's 0..1 (OpenAI allows up to 2; 0..1 maps exactly);
- `seed` rides along as a top-level "seed" field, which Anthropic parsers ignore and our engine may use;
- `n > 1`, audio and file parts, and JSON response formats are refused with a 400: silently dropping
  them would return something the client did not ask for.
"""

from __future__ import annotations

import json
import re

from .types import (
    AssistantMessage,
    AudioPart,
    ChatCompletionRequest,
    DeveloperMessage,
    FilePart,
    ImagePart,
    InvalidChatRequest,
    NamedToolChoice,
    SystemMessage,
    TextPart,
    ToolMessage,
    UserMessage,
)

Block = dict[str, object]

DEFAULT_MAX_TOKENS = 4096
_DATA_URL = re.compile(r"^data:(?P<media>[\w/+.-]+);base64,(?P<data>.*)$", re.DOTALL)


def to_anthropic_request(req: ChatCompletionRequest, *, default_max_tokens: int = DEFAULT_MAX_TOKENS) -> dict:
    """`default_max_tokens` applies when the client names no limit (Anthropic requires one); the
    proxy passes the model's context room here."""
    _refuse_unsupported(req)
    system, turns = _conversation(req)
    body: dict[str, object] = {
        "model": req.model,
        "messages": turns,
        "max_tokens": req.max_completion_tokens or req.max_tokens or default_max_tokens,
        "stream": req.stream,
    }
    if system:
        body["system"] = system
    if req.temperature is not None:
        body["temperature"] = min(req.temperature, 1.0)
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.stop:
        body["stop_sequences"] = [req.stop] if isinstance(req.stop, str) else list(req.stop)
    if req.seed is not None:
        body["seed"] = req.seed
    if req.tools:
        body["tools"] = [_tool(tool.function.name, tool.function.description, tool.function.parameters)
                         for tool in req.tools]
    if (choice := _tool_choice(req)) is not None:
        body["tool_choice"] = choice
    if req.user:
        body["metadata"] = {"user_id": req.user}
    return body


def _refuse_unsupported(req: ChatCompletionRequest) -> None:
    if req.n is not None and req.n > 1:
        raise InvalidChatRequest("n: only one choice per request is supported (n=1)", "n")
    if req.response_format is not None and req.response_format.type != "text":
        raise InvalidChatRequest(
            f"response_format: {req.response_format.type!r} is not supported; "
            "use tools for structured output",
            "response_format",
        )


# --- messages -----------------------------------------------------------------------------------


def _conversation(req: ChatCompletionRequest) -> tuple[list[Block], list[dict[str, object]]]:
    system: list[Block] = []
    turns: list[dict[str, object]] = []
    for i, message in enumerate(req.messages):
        path = f"messages.{i}"
        if isinstance(message, SystemMessage | DeveloperMessage):
            system.extend(_text_blocks(message.content))
        elif isinstance(message, AssistantMessage):
            _append(turns, "assistant", _assistant_blocks(message, path))
        elif isinstance(message, ToolMessage):
            _append(turns, "user", [_tool_result(message)])
        else:
            _append(turns, "user", _user_blocks(message, path))
    return system, turns


def _append(turns: list[dict[str, object]], role: str, blocks: list[Block]) -> None:
    """Consecutive messages of one role become one turn (tool results, then a user's text)."""
    if turns and turns[-1]["role"] == role:
        content = turns[-1]["content"]
        assert isinstance(content, list)
        content.extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _text_blocks(content: str | list[TextPart]) -> list[Block]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return [{"type": "text", "text": part.text} for part in content if part.text]


def _user_blocks(message: UserMessage, path: str) -> list[Block]:
    if isinstance(message.content, str):
        return [{"type": "text", "text": message.content}]
    blocks: list[Block] = []
    for j, part in enumerate(message.content):
        part_path = f"{path}.content.{j}"
        if isinstance(part, TextPart):
            blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            blocks.append(_image(part.image_url.url, part_path))
        elif isinstance(part, AudioPart | FilePart):
            raise InvalidChatRequest(f"{part_path}: {part.type!r} content is not supported", part_path)
    return blocks or [{"type": "text", "text": ""}]


def _image(url: str, path: str) -> Block:
    if match := _DATA_URL.match(url):
        source = {"type": "base64", "media_type": match["media"], "data": match["data"]}
        return {"type": "image", "source": source}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidChatRequest(f"{path}.image_url.url: expected a base64 data URL or an http(s) URL", path)


def _assistant_blocks(message: AssistantMessage, path: str) -> list[Block]:
    blocks: list[Block] = []
    if isinstance(message.content, str):
        blocks.extend(_text_blocks(message.content))
    elif message.content:
        blocks.extend(
            {"type": "text", "text": part.text if isinstance(part, TextPart) else part.refusal}
            for part in message.content
        )
    for j, call in enumerate(message.tool_calls or []):
        arguments_path = f"{path}.tool_calls.{j}.function.arguments"
        blocks.append(
            {"type": "tool_use", "id": call.id, "name": call.function.name,
             "input": _arguments(call.function.arguments, arguments_path)}
        )
    return blocks or [{"type": "text", "text": ""}]


def _arguments(arguments: str, path: str) -> dict[str, object]:
    if not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise InvalidChatRequest(f"{path}: not valid JSON ({exc})", path) from None
    if not isinstance(value, dict):
        raise InvalidChatRequest(f"{path}: must encode a JSON object", path)
    return value


def _tool_result(message: ToolMessage) -> Block:
    text = message.content if isinstance(message.content, str) else "".join(p.text for p in message.content)
    return {"type": "tool_result", "tool_use_id": message.tool_call_id, "content": text}


# --- tools --------------------------------------------------------------------------------------


def _tool(name: str, description: str | None, parameters: dict[str, object] | None) -> Block:
    tool: Block = {"name": name, "input_schema": parameters or {"type": "object", "properties": {}}}
    if description:
        tool["description"] = description
    return tool


def _tool_choice(req: ChatCompletionRequest) -> dict[str, object] | None:
    choice = req.tool_choice
    if not req.tools:
        if choice in (None, "auto", "none"):
            return None  # nothing to choose from: Anthropic refuses a tool_choice without tools
        raise InvalidChatRequest("tool_choice: requires tools", "tool_choice")
    if choice is None and req.parallel_tool_calls is not False:
        return None
    result: dict[str, object]
    if isinstance(choice, NamedToolChoice):
        result = {"type": "tool", "name": choice.function.name}
    else:
        result = {"type": {"auto": "auto", "required": "any", "none": "none", None: "auto"}[choice]}
    if req.parallel_tool_calls is False and result["type"] != "none":
        result["disable_parallel_tool_use"] = True
    return result
