"""The typed Messages request the proxy works with: frozen dataclasses, built by `requests` from a
validated body.  Inside the project nothing reads the raw JSON; everything reads these.

Only what the proxy uses is kept: an image block keeps the kind of its source, a document its text,
a tool reference its tool's name, and a string `content` arrives as one `TextBlock`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

MessageRole = Literal["user", "assistant", "system"]
BlockType = Literal["text", "image", "document", "tool_use", "tool_result", "tool_reference", "thinking",
                    "redacted_thinking"]
ToolChoiceType = Literal["auto", "any", "tool", "none"]
ThinkingType = Literal["enabled", "disabled", "adaptive"]
StopReason = Literal[
    "end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal",
    "model_context_window_exceeded",
]


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


@dataclass(frozen=True)
class ToolReferenceBlock:
    """Inside a tool search's result: the tool it found (its definition is among the request's tools)."""

    tool_name: str
    type: Literal["tool_reference"] = "tool_reference"


ToolResultContent: TypeAlias = TextBlock | ImageBlock | DocumentBlock | ToolReferenceBlock


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
    output_schema: Mapping[str, object] | None = None  # structured output: the reply is JSON of this schema
    output_path: str = ""  # the field that carried it, for a 400
