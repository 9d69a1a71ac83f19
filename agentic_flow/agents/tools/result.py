"""What a tool call gives back, and the error a tool raises to give back a failure."""

from __future__ import annotations

from dataclasses import dataclass


class ToolError(Exception):
    """A failure the model should see: `Tool.run()` turns it into an is_error ToolResult with this message."""


@dataclass(frozen=True)
class ToolResult:
    content: str  # what goes back to the model as the tool_result's content
    is_error: bool = False
    summary: str = ""  # one line for the user: "Read src/x.py (120 lines)"
    diff: str | None = None  # a unified diff, for edits
