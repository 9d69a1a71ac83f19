"""Anthropic Messages API request bodies, modelled with pydantic and turned into the typed request.

`parse_messages_request` and `parse_count_tokens_request` take the decoded JSON body and either return
a `types.MessagesRequest` / `types.CountTokensRequest` or raise `InvalidRequest` whose message names
the field the way Anthropic does (`messages.2.content.0.type: unknown block type "foo"`,
`max_tokens: Field required`).

Every model is strict (no "10" for 10, no 1.0 for an integer, no 0 for false), as Anthropic is.
Unknown fields, at the top level or inside a block, are ignored, because real clients (Claude Code
above all) send many fields a local model has no use for.  An explicit `null` on an optional field
counts as absent.  Content blocks, sources, tools, tool choices and thinking configs are unions
discriminated on `type`; their tags carry a "=" so that error paths can leave them out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BeforeValidator, Field, TypeAdapter, ValidationError

from . import types as t
from .content import (
    ContentBlockParam,
    JsonObject,
    MessageParam,
    NonEmptyStr,
    TextParam,
    UnitFloat,
    Wire,
    some_messages,
    type_tag,
    union,
)
from .validation import NOT_A_STRING_TAG, InvalidRequest, decode_body, invalid_request

__all__ = ["InvalidRequest", "decode_body", "parse_count_tokens_request", "parse_messages_request"]


def _tool_tag(value: Any) -> str | None:
    """Client tools have no type or "custom" and need a schema; Anthropic's versioned tools do not."""
    if not isinstance(value, dict):
        return None
    kind = value.get("type")
    if kind is not None and not isinstance(kind, str):
        return NOT_A_STRING_TAG
    return "=custom" if kind in (None, "custom") else "=builtin"


def _system_list(value: Any) -> Any:
    return ([] if not value else [{"type": "text", "text": value}]) if isinstance(value, str) else value


# --- tools, tool choice, thinking --------------------------------------------------------------


class CustomToolParam(Wire):
    name: NonEmptyStr
    input_schema: JsonObject
    description: str | None = None
    type: Literal["custom"] | None = None

    def typed(self) -> t.Tool:
        return t.Tool(self.name, self.description or "", self.input_schema, self.type)


class BuiltinToolParam(Wire):
    """One of Anthropic's versioned server tools ("web_search_20250305"): no schema of its own."""

    name: NonEmptyStr
    type: str
    description: str | None = None
    input_schema: JsonObject | None = None

    def typed(self) -> t.Tool:
        return t.Tool(self.name, self.description or "", self.input_schema, self.type)


class ToolChoiceAuto(Wire):
    type: Literal["auto"]
    disable_parallel_tool_use: bool | None = None


class ToolChoiceAny(Wire):
    type: Literal["any"]
    disable_parallel_tool_use: bool | None = None


class ToolChoiceTool(Wire):
    type: Literal["tool"]
    name: str
    disable_parallel_tool_use: bool | None = None


class ToolChoiceNone(Wire):
    type: Literal["none"]


if TYPE_CHECKING:  # see `content.union`
    ToolChoiceParam = ToolChoiceAuto | ToolChoiceAny | ToolChoiceTool | ToolChoiceNone
else:
    ToolChoiceParam = union(
        type_tag,
        ("auto", ToolChoiceAuto), ("any", ToolChoiceAny), ("tool", ToolChoiceTool), ("none", ToolChoiceNone),
    )


def _tool_choice(param: ToolChoiceAuto | ToolChoiceAny | ToolChoiceTool | ToolChoiceNone) -> t.ToolChoice:
    disable = bool(getattr(param, "disable_parallel_tool_use", None))
    return t.ToolChoice(param.type, getattr(param, "name", None), disable_parallel_tool_use=disable)


ThinkingBudget = Annotated[int, Field(ge=1024)]


class ThinkingEnabled(Wire):
    type: Literal["enabled"]
    budget_tokens: ThinkingBudget


class ThinkingDisabled(Wire):
    type: Literal["disabled"]
    budget_tokens: ThinkingBudget | None = None


class ThinkingAdaptive(Wire):
    type: Literal["adaptive"]
    budget_tokens: ThinkingBudget | None = None


if TYPE_CHECKING:
    ThinkingParamConfig = ThinkingEnabled | ThinkingDisabled | ThinkingAdaptive
    ToolParam = CustomToolParam | BuiltinToolParam
else:
    ThinkingParamConfig = union(
        type_tag, ("enabled", ThinkingEnabled), ("disabled", ThinkingDisabled), ("adaptive", ThinkingAdaptive)
    )
    ToolParam = union(_tool_tag, ("custom", CustomToolParam), ("builtin", BuiltinToolParam))


# --- structured output -------------------------------------------------------------------------


class JsonOutputFormat(Wire):
    """`output_config.format` (and the beta's top-level `output_format`): the reply is JSON of `schema`."""

    type: Literal["json_schema"]
    schema_: JsonObject = Field(alias="schema")


class OutputConfig(Wire):
    format: JsonOutputFormat | None = None
    effort: str | None = None  # how hard a Claude model thinks: nothing a local model can change


# --- the bodies --------------------------------------------------------------------------------


class CountTokensBody(Wire):
    model: NonEmptyStr
    messages: Annotated[list[MessageParam], AfterValidator(some_messages)]
    system: Annotated[list[ContentBlockParam], BeforeValidator(_system_list)] | None = None
    tools: list[ToolParam] | None = None
    tool_choice: ToolChoiceParam | None = None
    thinking: ThinkingParamConfig | None = None
    # Not used here, still type-checked so that a malformed request fails as it would against Anthropic.
    output_config: OutputConfig | None = None
    context_management: JsonObject | None = None
    service_tier: str | None = None


class MessagesBody(CountTokensBody):
    max_tokens: Annotated[int, Field(ge=1)]
    temperature: UnitFloat | None = None
    top_p: UnitFloat | None = None
    top_k: Annotated[int, Field(ge=0)] | None = None
    stop_sequences: list[NonEmptyStr] | None = None  # an empty one would match before the first token
    stream: bool | None = None
    metadata: JsonObject | None = None
    output_format: JsonOutputFormat | None = None  # the structured-outputs beta's spelling


# The order in which errors are reported when a body has several: the fields every request needs first.
_FIELD_ORDER = (
    "model", "max_tokens", "messages", "system", "tools", "tool_choice", "thinking", "temperature", "top_p",
    "top_k", "stop_sequences", "stream", "metadata", "output_config", "output_format", "context_management",
    "service_tier",
)
_Body = TypeVar("_Body", bound=CountTokensBody)
_COUNT_TOKENS = TypeAdapter(CountTokensBody)
_MESSAGES = TypeAdapter(MessagesBody)


# --- entry points ------------------------------------------------------------------------------


def parse_count_tokens_request(body: object) -> t.CountTokensRequest:
    return t.CountTokensRequest(**_conversation(_validate(_COUNT_TOKENS, body)))


def parse_messages_request(body: object) -> t.MessagesRequest:
    wire = _validate(_MESSAGES, body)
    return t.MessagesRequest(
        **_conversation(wire),
        max_tokens=wire.max_tokens,
        temperature=wire.temperature,
        top_p=wire.top_p,
        top_k=wire.top_k,
        stop_sequences=tuple(wire.stop_sequences or ()),
        stream=bool(wire.stream),
        metadata=wire.metadata,
        **_output(wire),
    )


def _output(wire: MessagesBody) -> dict[str, Any]:
    if wire.output_config is not None and wire.output_config.format is not None:
        return {"output_schema": wire.output_config.format.schema_, "output_path": "output_config.format.schema"}
    if wire.output_format is not None:
        return {"output_schema": wire.output_format.schema_, "output_path": "output_format.schema"}
    return {}


def _validate(adapter: TypeAdapter[_Body], body: object) -> _Body:
    if not isinstance(body, dict):
        raise InvalidRequest("request body: Input should be a JSON object")
    try:
        return adapter.validate_python(body)
    except ValidationError as exc:
        raise invalid_request(exc, _FIELD_ORDER) from None


def _conversation(wire: CountTokensBody) -> dict[str, Any]:
    return {
        "model": wire.model,
        "messages": tuple(message.typed() for message in wire.messages),
        "system": _system(wire.system or ()),
        "tools": tuple(tool.typed() for tool in wire.tools or ()),
        "tool_choice": None if wire.tool_choice is None else _tool_choice(wire.tool_choice),
        "thinking": None if wire.thinking is None else t.ThinkingConfig(wire.thinking.type,
                                                                          wire.thinking.budget_tokens),
    }


def _system(blocks: Any) -> tuple[t.TextBlock, ...]:
    for i, block in enumerate(blocks):
        if not isinstance(block, TextParam):  # the system prompt takes text blocks only
            raise InvalidRequest(f"system.{i}.type: Input should be 'text'")
    return tuple(block.typed() for block in blocks)
