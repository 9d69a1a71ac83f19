"""The guidance built for each tool_choice, schema preparation and the fallback validator."""

from __future__ import annotations

import json
import re

import pytest

from agentic_flow.tooluse.grammar import MAX_CALLS, UnknownTool, call_schema, plan
from agentic_flow.tooluse.schema import prepare
from agentic_flow.tooluse.types import ToolChoice, ToolSpec
from agentic_flow.tooluse.validate import validate

BASH = ToolSpec("Bash", "", {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]})
READ = ToolSpec("Read", "", {"type": "object", "properties": {"p": {"$ref": "#/$defs/path"}},
                             "$defs": {"path": {"type": "string"}}})


def body_of(grammar: str) -> dict[str, object]:
    line = next(line for line in grammar.splitlines() if line.startswith("body: %json "))
    return json.loads(line.removeprefix("body: %json "))


def test_none_and_no_tools_have_no_guidance() -> None:
    assert plan((BASH,), ToolChoice("none")).guidance is None
    assert plan((), ToolChoice("any")).guidance is None


def test_auto_allows_text_then_calls_and_forced_modes_do_not() -> None:
    auto = plan((BASH, READ), ToolChoice("auto")).guidance
    forced = plan((BASH, READ), ToolChoice("any")).guidance
    assert auto is not None and forced is not None and auto.kind == "lark_grammar"
    assert auto.text.startswith("start: TEXT? (call") and forced.text.startswith("start: WS? call")
    assert f"{{0,{MAX_CALLS - 1}}}" in forced.text
    single = plan((BASH,), ToolChoice("any", parallel=False)).guidance
    assert single is not None and single.text.startswith("start: WS? call\n")


def test_named_tool_constrains_to_that_name_only() -> None:
    guidance = plan((BASH, READ), ToolChoice("tool", "Read")).guidance
    assert guidance is not None
    body = body_of(guidance.text)
    assert "anyOf" not in body and body["properties"] == {
        "name": {"const": "Read"}, "arguments": {"$ref": "#/$defs/tool0"}}
    with pytest.raises(UnknownTool):
        plan((BASH,), ToolChoice("tool", "Write"))


def test_local_refs_are_rebased_under_the_tools_definition() -> None:
    schema, loose = call_schema((BASH, READ))
    read = schema["$defs"]["tool1"]  # type: ignore[index]
    assert read["properties"]["p"] == {"$ref": "#/$defs/tool1/$defs/path"} and not loose


def test_unsupported_features_are_cut_and_marked_loose() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string", "pattern": "^(?=x)x+$", "format": "odd"}},
              "if": {"required": ["a"]}, "then": {"required": ["b"]}, "x": {"$ref": "http://remote"}}
    prepared = prepare(schema)
    assert not prepared.exact
    text = json.dumps(prepared.schema)
    assert not re.search(r'"(if|then|pattern|format)"', text)
    assert prepare(BASH.input_schema).exact


def test_declared_objects_are_closed_but_const_values_are_untouched() -> None:
    prepared = prepare({"type": "object", "properties": {"o": {"type": "object", "properties": {},
                                                              "const": {"properties": 1}}}})
    inner = prepared.schema["properties"]["o"]  # type: ignore[index]
    assert prepared.schema["additionalProperties"] is False and inner["additionalProperties"] is False
    assert inner["const"] == {"properties": 1}


@pytest.mark.parametrize(("value", "ok"), [
    ({"command": "ls"}, True), ({}, False), ({"command": 1}, False),
])
def test_validator_on_a_simple_schema(value: object, ok: bool) -> None:
    assert (validate(value, BASH.input_schema) == []) is ok


def test_validator_covers_what_the_grammar_drops() -> None:
    schema = {"type": "object", "if": {"required": ["a"]}, "then": {"required": ["b"]},
              "properties": {"t": {"type": "array", "uniqueItems": True}, "s": {"pattern": "^(?=x)x+$"}},
              "dependentRequired": {"c": ["d"]}, "not": {"required": ["z"]}}
    assert validate({"a": 1, "b": 2, "t": [1, 2], "s": "xx"}, schema) == []
    assert len(validate({"a": 1, "t": [1, 1], "s": "y", "c": 1, "z": 0}, schema)) == 5


def test_a_malformed_schema_map_or_list_is_cut_not_a_crash() -> None:
    from agentic_flow.tooluse.schema import prepare

    prepared = prepare({"type": "object", "properties": [{"a": {"type": "string"}}], "anyOf": {"x": 1}})
    assert not prepared.exact  # cut: the input is checked afterwards
    assert "properties" not in prepared.schema and "anyOf" not in prepared.schema
