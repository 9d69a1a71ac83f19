"""Code stays code: a call's file content written as fenced code blocks instead of a JSON string.

Code squeezed into a JSON string costs accuracy, and more so for a small model (every newline and quote
escaped).  With this syntax, a tool's *code fields* (a Write's `content`, an Edit's `old_string` and
`new_string`) leave the JSON and follow it as fenced blocks, in the schema's order, inside the tags:

    <tool_call>
    {"name": "Write", "arguments": {"file_path": "table.py"}}
    ```python
    def celsius_table(start, stop, step):
        ...
    ```
    </tool_call>

The proxy turns that back into the JSON input the client expects (`{"file_path": ..., "content": ...}`),
so every returned tool_use still validates against the tool's schema.  Which fields count as code is
decided once, in the proxy, per request (`ToolSpec.code_fields`); the grammar, the parser and the
renderer all read it from the spec.  A code field is a required string property whose name is in
`CODE_FIELD_NAMES` and whose schema does not constrain its text (no enum, const, pattern or format).
A block may not contain a line that starts with three backticks (the grammar forbids it): such a file
is written with four-backtick fences.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace

from .types import ToolSpec

# Claude Code's Write/Edit/NotebookEdit, this project's tools, Anthropic's text editor tool.
CODE_FIELD_NAMES = ("content", "old_string", "new_string", "new_source", "file_text", "old_str", "new_str")
# Fields that hold a whole file: they end with a newline, which the block's closing line carries.
WHOLE_FILE_FIELDS = frozenset({"content", "new_source", "file_text"})
MAY_BE_EMPTY = frozenset({"new_string", "new_str"})  # an edit that deletes the old text
FENCES = ("````", "```")  # the longer first: a block that holds ``` lines uses four backticks
LANGUAGES = {".py": "python", ".js": "javascript", ".ts": "typescript", ".json": "json", ".md": "markdown",
             ".sh": "bash", ".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".html": "html", ".css": "css",
             ".rs": "rust", ".go": "go", ".java": "java", ".c": "c", ".cpp": "cpp", ".rb": "ruby"}
_UNCONSTRAINED = ("enum", "const", "pattern", "format", "maxLength", "minLength")


def code_fields_of(schema: Mapping[str, object] | None) -> tuple[str, ...]:
    if not isinstance(schema, Mapping):
        return ()
    properties, required = schema.get("properties"), schema.get("required")
    if not isinstance(properties, Mapping) or not isinstance(required, list):
        return ()
    fields = []
    for name, prop in properties.items():
        if name in CODE_FIELD_NAMES and name in required and isinstance(prop, Mapping) \
                and prop.get("type") == "string" and not any(k in prop for k in _UNCONSTRAINED):
            fields.append(name)
    return tuple(fields)


def with_code_fields(tools: tuple[ToolSpec, ...]) -> tuple[ToolSpec, ...]:
    """The specs with their code fields marked: the request then uses the code-block syntax."""
    return tuple(replace(t, code_fields=code_fields_of(t.input_schema)) for t in tools)


def header_schema(tool: ToolSpec) -> Mapping[str, object] | None:
    """The tool's schema for the JSON part of a code call: its code fields left out."""
    schema = tool.input_schema
    if not tool.code_fields or not isinstance(schema, Mapping):
        return schema
    properties = schema.get("properties")
    required = schema.get("required")
    assert isinstance(properties, Mapping) and isinstance(required, list)
    return {**schema,
            "properties": {k: v for k, v in properties.items() if k not in tool.code_fields},
            "required": [r for r in required if r not in tool.code_fields]}


def language(arguments: Mapping[str, object]) -> str:
    path = next((v for k, v in arguments.items() if k in ("file_path", "path", "notebook_path")
                 and isinstance(v, str)), "")
    dot = path.rfind(".")
    return LANGUAGES.get(path[dot:].lower(), "") if dot >= 0 else ""


def fence_for(text: str) -> str:
    return "````" if re.search(r"^```", text, re.MULTILINE) else "```"


def block_text(field: str, value: str) -> str:
    """What goes between a block's fences for a field's value (a whole file's last newline is the
    block's own line end)."""
    return value[:-1] if field in WHOLE_FILE_FIELDS and value.endswith("\n") else value


def field_value(field: str, text: str) -> str:
    """A block's text as the field's value: a whole file gets its last newline back (an empty block is an
    empty file)."""
    return text + "\n" if field in WHOLE_FILE_FIELDS and text else text


def render_blocks(tool: ToolSpec, arguments: Mapping[str, object]) -> tuple[dict[str, object], str]:
    """A call's arguments split into its JSON header and the fenced blocks that follow it."""
    header = {k: v for k, v in arguments.items() if k not in tool.code_fields}
    lang = language(arguments)
    blocks = []
    for field in tool.code_fields:
        value = block_text(field, str(arguments.get(field, "")))
        fence = fence_for(value)
        blocks.append(f"{fence}{lang}\n{value}\n{fence}")
    return header, "\n".join(blocks)


_BLOCK = re.compile(r"\s*(?P<fence>````|```)[^\n`]*\n(?P<body>.*?)\n?(?P=fence)[ \t]*(?=\n|$)", re.DOTALL)


def read_blocks(text: str, count: int) -> tuple[list[str], int] | None:
    """The first `count` fenced blocks at the start of `text` (whitespace between them allowed), and how
    much of `text` they used; None while they are not all there."""
    bodies: list[str] = []
    at = 0
    while len(bodies) < count:
        match = _BLOCK.match(text, at)
        if match is None:
            return None
        bodies.append(match["body"])
        at = match.end()
    return bodies, at


def instructions(tools: tuple[ToolSpec, ...]) -> str:
    """The note that tells the model how to write a code call (added to the system prompt)."""
    coded = [t for t in tools if t.code_fields]
    if not coded:
        return ""
    example = coded[0]
    fields = ", ".join(example.code_fields)
    lines = [f"- {t.name}: put {', then '.join(t.code_fields)} in fenced code blocks after the JSON, in "
             "that order, not in the JSON" for t in coded]
    # A real example: given "..." as the content, the 1.5B wrote "..." into the file.
    sample = {f: 'print("hello")\n' if f in WHOLE_FILE_FIELDS else 'print("hello")' for f in example.code_fields}
    header, blocks = render_blocks(example, {**sample, "file_path": "hello.py"})
    shown = f'<tool_call>\n{{"name": "{example.name}", "arguments": {_json(header)}}}\n{blocks}\n</tool_call>'
    return ("# Code in tool calls\n\nWrite code as code. For these tools, the JSON holds only the other "
            f"arguments, and each code argument ({fields}, ...) follows the JSON as a fenced block inside the "
            "<tool_call></tool_call> tags:\n" + "\n".join(lines) + f"\nFor example:\n{shown}")


def _json(value: Mapping[str, object]) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)
