"""Plain data for tool use: the neutral vocabulary of `agentic_flow.chat`, named here for tooluse's modules.

The renderer, the grammar builder and the parser only ever see these, so they can be tested without a
server or a model.
"""

from __future__ import annotations

from ..chat import ChoiceMode, Role, ToolCall, ToolChoice, ToolResult, ToolSpec, Turn

__all__ = ["ChoiceMode", "Role", "ToolCall", "ToolChoice", "ToolResult", "ToolSpec", "Turn"]
