"""Tool use on a local model: prompt rendering, generation constraints, and parsing of the output.

Pure modules (no onnxruntime-genai import): `render` (tools and tool history into chat-template input),
`grammar` (the llguidance constraint for a tool_choice), `parse` (text deltas into text and tool-call
events), `schema`/`validate` (what the grammar cannot express, checked afterwards).  The proxy plans the
grammars once (serving.planning) and parses the model's text once (serving.generation); the engine renders
the prompt with `render_chat` (engine.ort).
"""

from __future__ import annotations

from .grammar import Guidance, ToolPlan, UnknownTool, plan
from .parse import ArgsDelta, CallEnd, CallStart, Event, TextDelta, ToolCallParser, new_tool_id
from .render import RenderedChat, render_chat, template_has_tools
from .types import ToolCall, ToolChoice, ToolResult, ToolSpec, Turn

__all__ = [
    "ArgsDelta", "CallEnd", "CallStart", "Event", "Guidance", "RenderedChat", "TextDelta", "ToolCall",
    "ToolCallParser", "ToolChoice", "ToolPlan", "ToolResult", "ToolSpec", "Turn", "UnknownTool",
    "new_tool_id", "plan", "render_chat", "template_has_tools",
]
