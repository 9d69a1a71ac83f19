"""Request tools in neutral terms (`chat.ToolSpec`), Anthropic's versioned tools included.

Anthropic's client tools have no `input_schema` on the wire: the client runs them, and the model knows
their inputs.  A local model does not, so the documented inputs are written out here as a schema (the
grammar then makes every call match it).  Server tools run at Anthropic (web search, web fetch, code
execution...) and cannot run here: a 400 naming the tool, as for any other versioned type not listed.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..chat import ToolSpec
from .requests import InvalidRequest
from .types import Tool

_STRING = {"type": "string"}
BASH_SCHEMA: Mapping[str, object] = {
    "type": "object",
    # Anthropic: `command` is required unless `restart` is true; a call must run something here, since
    # a small model left free to send {} would.
    "properties": {"command": _STRING, "restart": {"type": "boolean"}},
    "required": ["command"],
}


def _editor_schema(commands: tuple[str, ...]) -> Mapping[str, object]:
    return {
        "type": "object",
        "properties": {
            "command": {"type": "string", "enum": list(commands)},
            "path": _STRING,
            "file_text": _STRING,  # create
            "old_str": _STRING,  # str_replace
            "new_str": _STRING,  # str_replace, insert
            "insert_line": {"type": "integer"},  # insert: after this line (0: at the top)
            "view_range": {"type": "array", "items": {"type": "integer"}},  # view: [start, end], end -1
        },
        "required": ["command", "path"],
    }


_EDITOR = ("view", "create", "str_replace", "insert")
_EDITOR_DESCRIPTION = "View, create and edit text files: view, create, str_replace, insert by line."
CLIENT_TOOLS: Mapping[str, tuple[str, Mapping[str, object]]] = {
    "bash_20241022": ("Run a shell command in a persistent bash session.", BASH_SCHEMA),
    "bash_20250124": ("Run a shell command in a persistent bash session.", BASH_SCHEMA),
    "text_editor_20241022": (_EDITOR_DESCRIPTION, _editor_schema((*_EDITOR, "undo_edit"))),
    "text_editor_20250124": (_EDITOR_DESCRIPTION, _editor_schema((*_EDITOR, "undo_edit"))),
    "text_editor_20250429": (_EDITOR_DESCRIPTION, _editor_schema(_EDITOR)),  # no undo_edit from here on
    "text_editor_20250728": (_EDITOR_DESCRIPTION, _editor_schema(_EDITOR)),
}
SERVER_TOOL_PREFIXES = ("web_search_", "web_fetch_", "code_execution_", "tool_search_", "mcp_")


def tool_spec(tool: Tool, path: str) -> ToolSpec:
    if tool.type in (None, "custom"):
        return ToolSpec(tool.name, tool.description, tool.input_schema)
    known = CLIENT_TOOLS.get(tool.type)
    if known is not None:
        description, schema = known
        return ToolSpec(tool.name, tool.description or description, schema)
    if tool.type.startswith(SERVER_TOOL_PREFIXES):
        raise InvalidRequest(
            f"{path}: {tool.name!r} ({tool.type}) is a server tool, which runs at Anthropic; this local "
            "model cannot use it"
        )
    raise InvalidRequest(
        f"{path}: {tool.name!r} ({tool.type}) is not supported here; supported tool types: custom tools with "
        f"an input_schema, {', '.join(sorted(CLIENT_TOOLS))}"
    )
