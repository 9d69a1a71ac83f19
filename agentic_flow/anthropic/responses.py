"""Anthropic's response body and the events of a streamed response, as pydantic models used both
ways: the proxy writes them (`sse`), the agent client and the benchmark read them (`read_event`).

Field order is wire order: `model_dump_json` writes the bytes the golden tests pin.  Reading is lenient
where Anthropic grows (content blocks and deltas of types added later, fields added later are kept
out of the way) and strict where a client relies on a value: roles, stop reasons, indices.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter

from .types import StopReason


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def _tag_or_other(known: frozenset[str]) -> Any:
    """A discriminator that sends types this code does not know (thinking, server tools...) to `Other`."""

    def tag(value: Any) -> str:
        kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
        return kind if kind in known else "other"

    return Discriminator(tag)


class Usage(_Out):
    # cache_read_input_tokens: prompt tokens read from the engine's prefix cache; nothing is written to
    # a cache the client pays for, so cache_creation_input_tokens is always 0.
    input_tokens: int = 0
    cache_creation_input_tokens: int | None = 0
    cache_read_input_tokens: int | None = 0
    output_tokens: int = 0


# --- content blocks ------------------------------------------------------------------------------


class TextContent(_Out):
    type: Literal["text"] = "text"
    text: str = ""  # content_block_start carries an empty text; the SDK requires it present


class ToolUseContent(_Out):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any] = Field(default_factory=dict)  # {} at content_block_start; deltas fill it


class OtherContent(_Out):
    """A block of a type this code does not read (thinking, server_tool_use...): skipped, not refused."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: str


ResponseContent = Annotated[
    Annotated[TextContent, Tag("text")] | Annotated[ToolUseContent, Tag("tool_use")]
    | Annotated[OtherContent, Tag("other")],
    _tag_or_other(frozenset({"text", "tool_use"})),
]


class ResponseMessage(_Out):
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    content: list[ResponseContent] = Field(default_factory=list)
    model: str = ""
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None
    usage: Usage = Field(default_factory=Usage)


# --- deltas --------------------------------------------------------------------------------------


class TextDelta(_Out):
    type: Literal["text_delta"] = "text_delta"
    text: str


class InputJsonDelta(_Out):
    """A piece of a tool_use block's input, as JSON text; the pieces joined parse as the input."""

    type: Literal["input_json_delta"] = "input_json_delta"
    partial_json: str


class OtherDelta(_Out):
    model_config = ConfigDict(extra="allow", frozen=True)
    type: str


Delta = Annotated[
    Annotated[TextDelta, Tag("text_delta")] | Annotated[InputJsonDelta, Tag("input_json_delta")]
    | Annotated[OtherDelta, Tag("other")],
    _tag_or_other(frozenset({"text_delta", "input_json_delta"})),
]


# --- stream events -------------------------------------------------------------------------------


class MessageStartEvent(_Out):
    type: Literal["message_start"] = "message_start"
    message: ResponseMessage


class ContentBlockStartEvent(_Out):
    type: Literal["content_block_start"] = "content_block_start"
    index: int
    content_block: ResponseContent


class ContentBlockDeltaEvent(_Out):
    type: Literal["content_block_delta"] = "content_block_delta"
    index: int
    delta: Delta


class ContentBlockStopEvent(_Out):
    type: Literal["content_block_stop"] = "content_block_stop"
    index: int


class MessageDeltaBody(_Out):
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None


class DeltaUsage(_Out):
    output_tokens: int
    # Anthropic repeats the input counts here; this proxy sends them only when they differ from
    # message_start's (the prefix-cache reuse turned out other than expected).
    input_tokens: int | None = Field(default=None, exclude_if=lambda value: value is None)
    cache_read_input_tokens: int | None = Field(default=None, exclude_if=lambda value: value is None)


class MessageDeltaEvent(_Out):
    type: Literal["message_delta"] = "message_delta"
    delta: MessageDeltaBody
    usage: DeltaUsage


class MessageStopEvent(_Out):
    type: Literal["message_stop"] = "message_stop"


class PingEvent(_Out):
    type: Literal["ping"] = "ping"


class ErrorDetail(_Out):
    type: str
    message: str


class ErrorEvent(_Out):
    type: Literal["error"] = "error"
    error: ErrorDetail


StreamEvent = Annotated[
    MessageStartEvent | ContentBlockStartEvent | ContentBlockDeltaEvent | ContentBlockStopEvent
    | MessageDeltaEvent | MessageStopEvent | PingEvent | ErrorEvent,
    Field(discriminator="type"),
]
STREAM_EVENT_TYPES = frozenset({
    "message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta",
    "message_stop", "ping", "error",
})
_STREAM_EVENT: TypeAdapter[StreamEvent] = TypeAdapter(StreamEvent)
_MESSAGE: TypeAdapter[ResponseMessage] = TypeAdapter(ResponseMessage)


def read_event(name: str, data: str) -> StreamEvent | None:
    """One stream event from its SSE name and JSON data; None for an event type added after this code
    (Anthropic says to ignore those).  Raises ValueError (pydantic's ValidationError is one) when the
    data is not the event it claims to be."""
    kind = name if name != "message" else None  # a nameless SSE event says what it is in its data
    if kind is not None and kind not in STREAM_EVENT_TYPES:
        return None
    event = _STREAM_EVENT.validate_json(data) if kind is not None or '"type"' in data else None
    if event is not None and kind is not None and event.type != kind:
        raise ValueError(f"a {kind} event whose data says {event.type}")
    return event


def read_message(data: str | bytes) -> ResponseMessage:
    """A non-streaming response body.  Raises ValueError when it is not a message."""
    return _MESSAGE.validate_json(data)
