"""The tools an agent can call, built in and in Python: Read, Write, Edit, Glob, Grep, Bash and LS.

Their names and input shapes are Claude Code's, so a model trained on those calls them right.  Every
path stays inside a Workspace; Write, Edit and Bash pass a Permissions check first.

    workspace = Workspace("project")
    permissions = Permissions(mode="acceptEdits", allow_tools=frozenset({"Bash"}))
    tools = build_tools(["Read", "Edit", "Bash"], workspace, permissions)
    request["tools"] = tool_definitions(tools)
    result = await tools[block.name].run(block.input)   # a ToolResult; never raises but for cancellation
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ... import settings
from ...errors import ConfigError
from .base import Tool, ToolContext, ToolError, ToolResult
from .bash import Bash, command_env
from .files import Edit, Read, Write
from .permissions import PERMISSION_MODES, Decision, PermissionMode, Permissions, needs_permission_message
from .search import LS, Glob, Grep
from .workspace import Workspace

TOOL_CLASSES: dict[str, type[Tool]] = {tool.name: tool for tool in (Read, Write, Edit, Glob, Grep, Bash, LS)}
TOOL_NAMES: tuple[str, ...] = tuple(TOOL_CLASSES)


def check_tool_names(names: Iterable[str], what: str = "tool") -> list[str]:
    """The names, in order and without repeats, or ConfigError naming the unknown one and the known ones."""
    checked: list[str] = []
    for name in names:
        if name not in TOOL_CLASSES:
            raise ConfigError(f"unknown {what} {name!r}; the known tools are: {', '.join(TOOL_NAMES)}")
        if name not in checked:
            checked.append(name)
    return checked


def build_tools(
    names: Iterable[str], workspace: Workspace, permissions: Permissions, env: Mapping[str, str] | None = None,
    *, numbered_reads: bool = True,
) -> dict[str, Tool]:
    """The named tools, ready to run.  `env` is the environment Bash's commands start from (filtered by
    `command_env`); by default the process's own, read through settings like all configuration."""
    check_tool_names(permissions.allow_tools, "tool in --allow-tools")
    context = ToolContext(workspace, permissions, command_env(settings.environ() if env is None else env),
                          numbered_reads)
    return {name: TOOL_CLASSES[name](context) for name in check_tool_names(names)}


def tool_definitions(tools: Mapping[str, Tool] | Iterable[Tool]) -> list[dict[str, Any]]:
    """The tools in the Messages API's `tools` request format: [{name, description, input_schema}]."""
    values = tools.values() if isinstance(tools, Mapping) else tools
    return [tool.definition() for tool in values]


__all__ = [
    "LS",
    "PERMISSION_MODES",
    "TOOL_CLASSES",
    "TOOL_NAMES",
    "Bash",
    "Decision",
    "Edit",
    "Glob",
    "Grep",
    "PermissionMode",
    "Permissions",
    "Read",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolResult",
    "Workspace",
    "Write",
    "build_tools",
    "check_tool_names",
    "command_env",
    "needs_permission_message",
    "tool_definitions",
]
