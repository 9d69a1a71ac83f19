"""The constraint put on generation for a request with tools (onnxruntime-genai guidance, llguidance).

One lark grammar covers the whole assistant turn:
- `auto`: optional text, then optional calls; the text may not contain a call opener, so a call is either
  written in full and valid or not at all;
- `any` / `tool`: calls only (a named tool: only that name);
- `none`, or no tools: no guidance (the parser then treats every character as text).
A call is `<tool_call>` JSON `</tool_call>` (the Qwen template's trained form, one token on Qwen) or a
```json fence (what Qwen2.5-Coder writes when left free: docs/models.md); the JSON is `{"name": <const>, "arguments":
<that tool's input_schema>}`, an anyOf over the tools, with the separators the rendered history uses and
no free whitespace (left flexible, the 135M model filled objects with blank lines).  Several calls are
allowed unless parallel use is disabled.  A call's length is bounded by the parser (MAX_CALL_CHARS),
since llguidance can bound only terminals, not a JSON sub-grammar.

Guided rows cannot share a batch: onnxruntime-genai 0.18 raises "compute_mask() called after stop" at
the next step once one row of a guided batch has finished (measured: docs/models.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from .codeblocks import MAY_BE_EMPTY, header_schema
from .markup import FENCE_CLOSE, FENCE_OPEN, ITEM_SEPARATOR, KEY_SEPARATOR, TAG_CLOSE, TAG_OPEN
from .schema import prepare
from .types import ToolChoice, ToolSpec

NL = "\n"
MAX_CALLS = 8  # small models repeat a call until stopped: a bound on one turn's parallel calls
GuidanceKind = Literal["lark_grammar", "json_schema", "regex"]
JSON_OPTIONS = {
    "whitespace_flexible": False,
    "item_separator": ITEM_SEPARATOR,
    "key_separator": KEY_SEPARATOR,
    "lenient": True,  # a keyword schema.prepare did not know about is ignored rather than refused
}


@dataclass(frozen=True)
class Guidance:
    """`params.set_guidance(kind, text)`.  Equal guidance is the condition for reusing a kept generator."""

    kind: GuidanceKind
    text: str


@dataclass(frozen=True)
class ToolPlan:
    """Everything generation needs about the tools of one request."""

    guidance: Guidance | None
    loose: frozenset[str] = frozenset()  # tools whose schema the grammar enforces only in part: validate


class UnknownTool(ValueError):
    """tool_choice names a tool that is not in `tools` (the proxy answers 400)."""


def plan(tools: tuple[ToolSpec, ...], choice: ToolChoice) -> ToolPlan:
    if choice.mode == "none" or not tools:
        return ToolPlan(None)
    if choice.mode == "tool":
        tools = tuple(t for t in tools if t.name == choice.name)
        if not tools:
            raise UnknownTool(f"tool_choice names {choice.name!r}, which is not among the tools")
    plain = tuple(t for t in tools if not t.code_fields)
    coded = tuple(t for t in tools if t.code_fields)
    body, loose = call_schema(plain) if plain else (None, frozenset())
    headers = []
    for tool in coded:
        header, header_loose = call_schema((replace(tool, input_schema=header_schema(tool)),))
        headers.append((header, tuple("block_or_empty" if f in MAY_BE_EMPTY else "block" for f in tool.code_fields)))
        loose |= header_loose
    return ToolPlan(Guidance("lark_grammar", lark(body, choice, tuple(headers))), loose)


def output_guidance(schema: Mapping[str, object] | None) -> Guidance:
    """Structured output: the whole reply is one JSON value of `schema` (None: any JSON object), with
    the separators and no free whitespace, as a call's JSON.  `schema` is already prepared
    (schema.prepare_any); its local `$ref`s resolve against its own root."""
    body = {"x-guidance": JSON_OPTIONS, **(schema if schema is not None else {"type": "object"})}
    return Guidance("lark_grammar", f"start: %json {json.dumps(body, ensure_ascii=False)}")


def call_schema(tools: tuple[ToolSpec, ...]) -> tuple[dict[str, object], frozenset[str]]:
    """`{"name", "arguments"}` for each tool, one anyOf; each tool's schema sits in `$defs` so that its
    own local `$ref`s still resolve once rewritten under that prefix."""
    defs: dict[str, object] = {}
    options: list[dict[str, object]] = []
    loose: set[str] = set()
    for i, tool in enumerate(tools):
        prepared = prepare(tool.input_schema)
        if not prepared.exact:
            loose.add(tool.name)
        key = f"tool{i}"
        defs[key] = _rebase(prepared.schema, f"#/$defs/{key}")
        options.append({
            "type": "object",
            "properties": {"name": {"const": tool.name}, "arguments": {"$ref": f"#/$defs/{key}"}},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        })
    schema: dict[str, object] = {"x-guidance": JSON_OPTIONS, "$defs": defs}
    schema.update(options[0] if len(options) == 1 else {"anyOf": options})
    return schema, frozenset(loose)


def _rebase(node: object, prefix: str) -> object:
    if isinstance(node, Mapping):
        return {
            k: prefix + str(v)[1:] if k == "$ref" and str(v).startswith("#") else _rebase(v, prefix)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rebase(v, prefix) for v in node]
    return node


def lark(body: Mapping[str, object] | None, choice: ToolChoice,
         coded: tuple[tuple[Mapping[str, object], tuple[str, ...]], ...] = ()) -> str:
    """`body`: the JSON schema of a plain call (None when every tool is a code tool); `coded`: for each
    code tool, its header schema and the block rules that follow it (tooluse/codeblocks.py)."""
    calls = f"call (WS? call){{0,{MAX_CALLS - 1}}}" if choice.parallel else "call"
    start = f"start: WS? {calls}" if choice.forced else f"start: TEXT? ({calls})?"
    options = []
    rules = []
    if body is not None:
        options += [f"{_lit(TAG_OPEN)} WS? body WS? {_lit(TAG_CLOSE)}",
                    f"{_lit(FENCE_OPEN)} WS? body WS? {_lit(FENCE_CLOSE)}"]
        rules.append(f"body: %json {json.dumps(body, ensure_ascii=False)}")
    for i, (header, blocks) in enumerate(coded):
        options.append(f"{_lit(TAG_OPEN + NL)} head{i} {_lit(NL)} {' '.join(blocks)} {_lit(TAG_CLOSE)}")
        rules.append(f"head{i}: %json {json.dumps(header, ensure_ascii=False)}")
    if coded:
        # A block's text ends at the first line that closes its fence: a lazy lexeme with a visible
        # suffix.  (An `& ~/...\n```.../` terminal does not work: the greedy lexer has already taken
        # the "\n``" into the text when the third backtick comes, so the model could not close the
        # block and wrote "``>" instead: measured on the 1.5B.)  Four backticks allow ``` lines inside.
        # A block holds at least one character (an Edit's new_string may be empty: a deletion).
        rules += [
            'block: "```" LANG "\\n" code3 | "````" LANG "\\n" code4',
            'block_or_empty: block | "```" LANG "\\n```\\n"',
            r"LANG: /[A-Za-z0-9+#._-]*/",
            # No line inside a block starts with its fence and goes on (measured: the 1.5B wrote
            # "```python" where the block should close, and was then held in the block to max_tokens).
            'code3[suffix="\\n```\\n"]: /(?s:.+)/ & ~/(?s:.*)\\n```[^\\n](?s:.*)/',
            'code4[suffix="\\n````\\n"]: /(?s:.+)/ & ~/(?s:.*)\\n````[^\\n](?s:.*)/',
        ]
    return "\n".join([
        start,
        "call: " + " | ".join(options),
        *rules,
        # Text that never contains an opener: a call cannot hide inside text, nor text inside a call.
        f"TEXT: /(?s:.+)/ & ~/(?s:.*)({_re(TAG_OPEN)}|{_re(FENCE_OPEN)})(?s:.*)/",
        r"WS: /[ \t\r\n]+/",
    ])


def _lit(text: str) -> str:
    return json.dumps(text)


def _re(text: str) -> str:
    return "".join("\\" + c if c in r"\.^$|?*+()[]{}/" else c for c in text)
