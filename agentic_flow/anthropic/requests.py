"""Anthropic Messages API request bodies, validated at the trust boundary into frozen dataclasses.

`parse_messages_request` and `parse_count_tokens_request` take the decoded JSON body and either return
a typed request or raise `InvalidRequest` whose message names the field the way Anthropic does
(`messages.2.content.0.type: unknown block type "foo"`, `max_tokens: Field required`).

Known fields with a wrong type or value are rejected; unknown fields, at the top level or inside a
block, are accepted and ignored, because real clients (Claude Code above all) send many fields a
local model has no use for.  An explicit `null` on an optional field counts as absent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, NoReturn, TypeAlias, cast, get_args

from ..errors import InvalidRequestError

MessageRole = Literal["user", "assistant", "system"]
BlockType = Literal["text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"]
ToolChoiceType = Literal["auto", "any", "tool", "none"]
ThinkingType = Literal["enabled", "disabled", "adaptive"]

IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


class InvalidRequest(InvalidRequestError):
    """A request body the API refuses: HTTP 400, `invalid_request_error` (inherited), with the message
    naming the offending field's path.  The error middleware turns it into Anthropic's envelope."""


# --- the typed request -------------------------------------------------------------------------


@dataclass(frozen=True)
class TextBlock:
    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True)
class ImageBlock:
    source_type: str  # "base64", "url" or "file"
    type: Literal["image"] = "image"


@dataclass(frozen=True)
class DocumentBlock:
    source_type: str  # "base64" (PDF), "text", "content", "url" or "file"
    text: str | None  # the document's text when its source is text; None for PDFs, URLs, files, images
    title: str | None = None
    type: Literal["document"] = "document"


@dataclass(frozen=True)
class ToolUseBlock:
    id: str
    name: str
    input: Mapping[str, object]
    type: Literal["tool_use"] = "tool_use"


ToolResultContent: TypeAlias = TextBlock | ImageBlock | DocumentBlock


@dataclass(frozen=True)
class ToolResultBlock:
    tool_use_id: str
    content: tuple[ToolResultContent, ...]
    is_error: bool = False
    type: Literal["tool_result"] = "tool_result"


@dataclass(frozen=True)
class ThinkingBlock:
    thinking: str
    signature: str
    type: Literal["thinking"] = "thinking"


@dataclass(frozen=True)
class RedactedThinkingBlock:
    data: str
    type: Literal["redacted_thinking"] = "redacted_thinking"


ContentBlock: TypeAlias = (
    TextBlock | ImageBlock | DocumentBlock | ToolUseBlock | ToolResultBlock
    | ThinkingBlock | RedactedThinkingBlock
)


@dataclass(frozen=True)
class Message:
    role: MessageRole
    content: tuple[ContentBlock, ...]  # string content arrives as one TextBlock


@dataclass(frozen=True)
class Tool:
    name: str
    description: str = ""
    input_schema: Mapping[str, object] | None = None  # absent on Anthropic's versioned built-in tools
    type: str | None = None  # None or "custom" for client tools, e.g. "web_search_20250305" otherwise


@dataclass(frozen=True)
class ToolChoice:
    type: ToolChoiceType
    name: str | None = None
    disable_parallel_tool_use: bool = False


@dataclass(frozen=True)
class ThinkingConfig:
    type: ThinkingType
    budget_tokens: int | None = None


@dataclass(frozen=True, kw_only=True)
class CountTokensRequest:
    """The conversation: what `/v1/messages/count_tokens` takes, and the part of a Messages request
    that becomes the prompt."""

    model: str
    messages: tuple[Message, ...]
    system: tuple[TextBlock, ...] = ()
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    thinking: ThinkingConfig | None = None


@dataclass(frozen=True, kw_only=True)
class MessagesRequest(CountTokensRequest):
    """A `/v1/messages` request: the conversation plus how to generate the reply."""

    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop_sequences: tuple[str, ...] = ()
    stream: bool = False
    metadata: Mapping[str, object] | None = None


# --- entry points ------------------------------------------------------------------------------


def parse_count_tokens_request(body: object) -> CountTokensRequest:
    obj = _root(body)
    _check_ignored_fields(obj)
    return CountTokensRequest(
        model=_str(_required(obj, "model", ""), "model", non_empty=True),
        messages=_messages(_required(obj, "messages", ""), "messages"),
        system=_system(_optional(obj, "system"), "system"),
        tools=_tools(_optional(obj, "tools"), "tools"),
        tool_choice=_tool_choice(_optional(obj, "tool_choice"), "tool_choice"),
        thinking=_thinking(_optional(obj, "thinking"), "thinking"),
    )


def parse_messages_request(body: object) -> MessagesRequest:
    obj = _root(body)
    # The fields every request needs are reported before anything inside the conversation.
    _str(_required(obj, "model", ""), "model", non_empty=True)
    max_tokens = _int(_required(obj, "max_tokens", ""), "max_tokens", minimum=1)
    conversation = parse_count_tokens_request(obj)
    top_k = _optional(obj, "top_k")
    stream = _optional(obj, "stream")
    metadata = _optional(obj, "metadata")
    return MessagesRequest(
        model=conversation.model,
        messages=conversation.messages,
        system=conversation.system,
        tools=conversation.tools,
        tool_choice=conversation.tool_choice,
        thinking=conversation.thinking,
        max_tokens=max_tokens,
        temperature=_unit_interval(_optional(obj, "temperature"), "temperature"),
        top_p=_unit_interval(_optional(obj, "top_p"), "top_p"),
        top_k=None if top_k is None else _int(top_k, "top_k", minimum=0),
        stop_sequences=_stop_sequences(_optional(obj, "stop_sequences"), "stop_sequences"),
        stream=False if stream is None else _bool(stream, "stream"),
        metadata=None if metadata is None else _object(metadata, "metadata"),
    )


def _root(body: object) -> Mapping[str, object]:
    if not isinstance(body, dict):
        raise InvalidRequest("request body: Input should be a JSON object")
    return cast(Mapping[str, object], body)


def _check_ignored_fields(obj: Mapping[str, object]) -> None:
    """Fields the proxy does not use, still type-checked so a malformed request fails as it would
    against Anthropic."""
    for key in ("output_config", "context_management"):
        if (value := _optional(obj, key)) is not None:
            _object(value, key)
    if (tier := _optional(obj, "service_tier")) is not None:
        _str(tier, "service_tier")


# --- the conversation --------------------------------------------------------------------------


def _messages(value: object, path: str) -> tuple[Message, ...]:
    items = _list(value, path)
    if not items:
        _fail(path, "at least one message is required")
    return tuple(_message(item, _join(path, i)) for i, item in enumerate(items))


def _message(value: object, path: str) -> Message:
    obj = _object(value, path)
    role = _choice(_required(obj, "role", path), _join(path, "role"), get_args(MessageRole))
    content_path = _join(path, "content")
    content = _required(obj, "content", path)
    if isinstance(content, str):
        return Message(cast(MessageRole, role), (TextBlock(content),))
    blocks = _list(content, content_path)
    return Message(
        cast(MessageRole, role),
        tuple(_block(item, _join(content_path, i), _ANY_BLOCK) for i, item in enumerate(blocks)),
    )


def _system(value: object, path: str) -> tuple[TextBlock, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (TextBlock(value),) if value else ()
    blocks = _list(value, path)
    return tuple(cast(TextBlock, _block(item, _join(path, i), ("text",))) for i, item in enumerate(blocks))


# --- content blocks: a discriminated union on "type" -------------------------------------------

_ANY_BLOCK: tuple[str, ...] = get_args(BlockType)
_TOOL_RESULT_BLOCK = ("text", "image", "document")


def _block(value: object, path: str, allowed: tuple[str, ...]) -> ContentBlock:
    obj = _object(value, path)
    type_path = _join(path, "type")
    kind = _str(_required(obj, "type", path), type_path)
    if kind not in _ANY_BLOCK:
        _fail(type_path, f'unknown block type "{kind}"')
    if kind not in allowed:
        _fail(type_path, f"Input should be {_alternatives(allowed)}")
    return _BLOCK_PARSERS[kind](obj, path)


def _text_block(obj: Mapping[str, object], path: str) -> TextBlock:
    return TextBlock(_str(_required(obj, "text", path), _join(path, "text")))


def _image_block(obj: Mapping[str, object], path: str) -> ImageBlock:
    source_path = _join(path, "source")
    source = _object(_required(obj, "source", path), source_path)
    kind = _choice(_required(source, "type", source_path), _join(source_path, "type"), _IMAGE_SOURCES)
    if kind == "base64":
        media_type = _required(source, "media_type", source_path)
        _choice(media_type, _join(source_path, "media_type"), IMAGE_MEDIA_TYPES)
    _str(_required(source, _SOURCE_PAYLOAD[kind], source_path), _join(source_path, _SOURCE_PAYLOAD[kind]))
    return ImageBlock(kind)


def _document_block(obj: Mapping[str, object], path: str) -> DocumentBlock:
    source_path = _join(path, "source")
    source = _object(_required(obj, "source", path), source_path)
    kind = _choice(_required(source, "type", source_path), _join(source_path, "type"), _DOCUMENT_SOURCES)
    payload_path = _join(source_path, _SOURCE_PAYLOAD[kind])
    payload = _required(source, _SOURCE_PAYLOAD[kind], source_path)
    text: str | None = None
    if kind == "content" and not isinstance(payload, str):
        items = _list(payload, payload_path)
        parts = [_block(item, _join(payload_path, i), ("text", "image")) for i, item in enumerate(items)]
        if all(isinstance(part, TextBlock) for part in parts):
            text = "\n\n".join(cast(TextBlock, part).text for part in parts)
    else:
        payload = _str(payload, payload_path)
        text = payload if kind in ("text", "content") else None
    title = _optional(obj, "title")
    return DocumentBlock(kind, text, None if title is None else _str(title, _join(path, "title")))


_IMAGE_SOURCES = ("base64", "url", "file")
_DOCUMENT_SOURCES = ("base64", "text", "content", "url", "file")
# The field that carries each kind of source's data.
_SOURCE_PAYLOAD = {"base64": "data", "text": "data", "content": "content", "url": "url", "file": "file_id"}


def _tool_use_block(obj: Mapping[str, object], path: str) -> ToolUseBlock:
    return ToolUseBlock(
        id=_str(_required(obj, "id", path), _join(path, "id")),
        name=_str(_required(obj, "name", path), _join(path, "name")),
        input=_object(_required(obj, "input", path), _join(path, "input")),
    )


def _tool_result_block(obj: Mapping[str, object], path: str) -> ToolResultBlock:
    content_path = _join(path, "content")
    content = _optional(obj, "content")
    blocks: tuple[ToolResultContent, ...]
    if content is None:
        blocks = ()
    elif isinstance(content, str):
        blocks = (TextBlock(content),)
    else:
        items = _list(content, content_path)
        blocks = tuple(
            cast(ToolResultContent, _block(item, _join(content_path, i), _TOOL_RESULT_BLOCK))
            for i, item in enumerate(items)
        )
    is_error = _optional(obj, "is_error")
    return ToolResultBlock(
        tool_use_id=_str(_required(obj, "tool_use_id", path), _join(path, "tool_use_id")),
        content=blocks,
        is_error=False if is_error is None else _bool(is_error, _join(path, "is_error")),
    )


def _thinking_block(obj: Mapping[str, object], path: str) -> ThinkingBlock:
    return ThinkingBlock(
        thinking=_str(_required(obj, "thinking", path), _join(path, "thinking")),
        signature=_str(_required(obj, "signature", path), _join(path, "signature")),
    )


def _redacted_thinking_block(obj: Mapping[str, object], path: str) -> RedactedThinkingBlock:
    return RedactedThinkingBlock(_str(_required(obj, "data", path), _join(path, "data")))


_BLOCK_PARSERS: Mapping[str, Callable[[Mapping[str, object], str], ContentBlock]] = {
    "text": _text_block,
    "image": _image_block,
    "document": _document_block,
    "tool_use": _tool_use_block,
    "tool_result": _tool_result_block,
    "thinking": _thinking_block,
    "redacted_thinking": _redacted_thinking_block,
}


# --- tools, tool choice, thinking, sampling ----------------------------------------------------


def _tools(value: object, path: str) -> tuple[Tool, ...]:
    if value is None:
        return ()
    return tuple(_tool(item, _join(path, i)) for i, item in enumerate(_list(value, path)))


def _tool(value: object, path: str) -> Tool:
    obj = _object(value, path)
    kind = _optional(obj, "type")
    kind = None if kind is None else _str(kind, _join(path, "type"))
    description = _optional(obj, "description")
    schema = _optional(obj, "input_schema")
    if kind in (None, "custom"):  # a client tool; Anthropic's versioned built-in tools carry no schema
        schema = _required(obj, "input_schema", path)
    return Tool(
        name=_str(_required(obj, "name", path), _join(path, "name"), non_empty=True),
        description="" if description is None else _str(description, _join(path, "description")),
        input_schema=None if schema is None else _object(schema, _join(path, "input_schema")),
        type=kind,
    )


def _tool_choice(value: object, path: str) -> ToolChoice | None:
    if value is None:
        return None
    obj = _object(value, path)
    kind = _choice(_required(obj, "type", path), _join(path, "type"), get_args(ToolChoiceType))
    name = _str(_required(obj, "name", path), _join(path, "name")) if kind == "tool" else None
    parallel = _optional(obj, "disable_parallel_tool_use")
    parallel_path = _join(path, "disable_parallel_tool_use")
    return ToolChoice(
        type=cast(ToolChoiceType, kind),
        name=name,
        disable_parallel_tool_use=False if parallel is None else _bool(parallel, parallel_path),
    )


def _thinking(value: object, path: str) -> ThinkingConfig | None:
    if value is None:
        return None
    obj = _object(value, path)
    kind = _choice(_required(obj, "type", path), _join(path, "type"), get_args(ThinkingType))
    budget = _optional(obj, "budget_tokens")
    if kind == "enabled":
        budget = _required(obj, "budget_tokens", path)
    budget_path = _join(path, "budget_tokens")
    return ThinkingConfig(
        type=cast(ThinkingType, kind),
        budget_tokens=None if budget is None else _int(budget, budget_path, minimum=1024),
    )


def _stop_sequences(value: object, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    stops = tuple(_str(item, _join(path, i)) for i, item in enumerate(_list(value, path)))
    for i, stop in enumerate(stops):
        if not stop:
            # An empty stop sequence would match before the first token.
            _fail(_join(path, i), "String should have at least 1 character")
    return stops


def _unit_interval(value: object, path: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(path, "Input should be a valid number")
    if not value >= 0:  # written so that NaN fails too
        _fail(path, "Input should be greater than or equal to 0")
    if not value <= 1:
        _fail(path, "Input should be less than or equal to 1")
    return float(value)


# --- primitives: each checks one JSON value and names its path on failure ----------------------


def _fail(path: str, message: str) -> NoReturn:
    raise InvalidRequest(f"{path}: {message}")


def _join(path: str, key: str | int) -> str:
    return f"{path}.{key}" if path else str(key)


def _required(obj: Mapping[str, object], key: str, path: str) -> object:
    if key not in obj:
        _fail(_join(path, key), "Field required")
    return obj[key]


def _optional(obj: Mapping[str, object], key: str) -> object:
    return obj.get(key)


def _object(value: object, path: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        _fail(path, "Input should be a valid dictionary")
    return cast(Mapping[str, object], value)


def _list(value: object, path: str) -> list[object]:
    if not isinstance(value, list):
        _fail(path, "Input should be a valid list")
    return cast(list[object], value)


def _str(value: object, path: str, *, non_empty: bool = False) -> str:
    if not isinstance(value, str):
        _fail(path, "Input should be a valid string")
    if non_empty and not value:
        _fail(path, "String should have at least 1 character")
    return value


def _bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        _fail(path, "Input should be a valid boolean")
    return value


def _int(value: object, path: str, *, minimum: int) -> int:
    # JSON true/false decode to bool, a subclass of int: not a valid integer here.
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(path, "Input should be a valid integer")
    if value < minimum:
        _fail(path, f"Input should be greater than or equal to {minimum}")
    return value


def _choice(value: object, path: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        _fail(path, f"Input should be {_alternatives(choices)}")
    return value


def _alternatives(choices: tuple[str, ...]) -> str:
    quoted = [f"'{choice}'" for choice in choices]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
