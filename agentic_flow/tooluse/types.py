"""Plain data for tool use, independent of the wire format and of the engine.

The proxy converts Anthropic blocks into these (see INTEGRATION.md); the renderer, the grammar builder
and the parser only ever see them, so they can be tested without a server or a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

ChoiceMode = Literal["auto", "any", "tool", "none"]
Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str = ""
    input_schema: Mapping[str, object] | None = None  # None: any JSON object
    # Fields written as fenced code blocks after the call's JSON (tooluse/codeblocks.py); () for none.
    code_fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class ToolChoice:
    mode: ChoiceMode = "auto"
    name: str | None = None  # the forced tool when mode is "tool"
    parallel: bool = True  # False for Anthropic's disable_parallel_tool_use

    @property
    def forced(self) -> bool:
        return self.mode in ("any", "tool")


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    input: Mapping[str, object]


@dataclass(frozen=True)
class ToolResult:
    tool_use_id: str
    content: str  # the result's text blocks, joined
    is_error: bool = False


@dataclass(frozen=True)
class Turn:
    """One conversation turn.  A user turn's tool results come before its text (Anthropic requires
    tool_result blocks first); an assistant turn's text comes before its calls."""

    role: Role
    text: str = ""
    calls: tuple[ToolCall, ...] = ()
    results: tuple[ToolResult, ...] = ()
