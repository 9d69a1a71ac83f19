"""The incremental tool-call parser: text and calls from arbitrary delta splits."""

from __future__ import annotations

import json

import pytest

from agentic_flow.tooluse.parse import (
    ArgsDelta,
    CallEnd,
    CallStart,
    Event,
    TextDelta,
    ToolCallParser,
    new_tool_id,
)
from agentic_flow.tooluse.types import ToolSpec

BASH = ToolSpec("Bash", "Run", {"type": "object", "properties": {"command": {"type": "string"}},
                                "required": ["command"]})
READ = ToolSpec("Read", "Read", {"type": "object", "properties": {"file_path": {"type": "string"}}})
TOOLS = (BASH, READ)


def run(chunks: list[str], stop: str = "end_turn", **kw: object) -> tuple[list[Event], str]:
    parser = ToolCallParser(TOOLS, **kw)  # type: ignore[arg-type]
    events = [e for c in chunks for e in parser.feed(c)]
    tail, reason = parser.finish(stop)
    return events + tail, reason


def text_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def args_of(events: list[Event]) -> list[object]:
    out: list[object] = []
    partial = ""
    for e in events:
        if isinstance(e, CallStart):
            partial = ""
        elif isinstance(e, ArgsDelta):
            partial += e.partial_json
        elif isinstance(e, CallEnd) and e.call is not None:
            out.append(json.loads(partial))
            assert json.loads(partial) == e.call.input  # the stream adds up to the final input
    return out


def splits(text: str) -> list[list[str]]:
    """Every way of cutting the text into two pieces, plus one char at a time."""
    return [[text[:i], text[i:]] for i in range(len(text) + 1)] + [list(text)]


TAGGED = 'Let me look.\n<tool_call>\n{"name": "Bash", "arguments": {"command": "ls {x} \\"}\\""}}\n</tool_call>'
FENCED = 'Sure.\n\n```json\n{"name": "Read", "arguments": {"file_path": "/a.py"}}\n```\n'


@pytest.mark.parametrize("chunks", splits(TAGGED))
def test_tagged_call_any_split(chunks: list[str]) -> None:
    events, reason = run(chunks)
    assert reason == "tool_use"
    assert text_of(events) == "Let me look."
    assert args_of(events) == [{"command": 'ls {x} "}"'}]
    starts = [e for e in events if isinstance(e, CallStart)]
    assert [s.name for s in starts] == ["Bash"]


@pytest.mark.parametrize("chunks", splits(FENCED))
def test_fenced_call_any_split(chunks: list[str]) -> None:
    events, reason = run(chunks)
    assert (text_of(events), args_of(events), reason) == ("Sure.", [{"file_path": "/a.py"}], "tool_use")


def test_parallel_calls_get_distinct_ids() -> None:
    one = '<tool_call>\n{"name": "Read", "arguments": {"file_path": "a"}}\n</tool_call>'
    events, reason = run([one + "\n" + one.replace('"a"', '"b"')])
    ends = [e.call for e in events if isinstance(e, CallEnd)]
    assert [c.input for c in ends if c] == [{"file_path": "a"}, {"file_path": "b"}]
    assert len({c.id for c in ends if c}) == 2 and text_of(events) == "" and reason == "tool_use"


def test_plain_text_passes_through_with_markup_like_characters() -> None:
    text = "Use `a < b` and ``` fences ```python\nx = {1: 2}\n```\n"
    events, reason = run(list(text))
    assert text_of(events) == text and reason == "end_turn"


def test_truncated_call_closes_its_block_and_reports_max_tokens() -> None:
    events, reason = run(['<tool_call>\n{"name": "Bash", "arguments": {"command": "l'], stop="max_tokens")
    assert reason == "max_tokens"
    assert isinstance(events[0], CallStart) and events[-1] == CallEnd(None)


def test_truncated_before_the_name_emits_nothing() -> None:
    events, reason = run(['Hi\n<tool_call>\n{"na'], stop="max_tokens")
    assert (text_of(events), reason) == ("Hi", "max_tokens")
    assert not [e for e in events if isinstance(e, (CallStart, CallEnd))]


def test_unknown_tool_from_unconstrained_output_is_text() -> None:
    raw = '```json\n{"name": "Init", "arguments": {}}\n```'
    events, reason = run([raw])
    assert text_of(events) == raw and reason == "end_turn"


def test_call_over_the_length_bound_stops_with_max_tokens() -> None:
    parser = ToolCallParser(TOOLS, max_call_chars=50)
    parser.feed('<tool_call>\n{"name": "Bash", "arguments": {"command": "' + "x" * 60)
    assert parser.overflowed
    assert parser.finish("end_turn")[1] == "max_tokens"


def test_arguments_before_name_are_buffered_until_the_end() -> None:
    events, _ = run(['<tool_call>{"arguments": {"command": "ls"}, "name": "Bash"}</tool_call>'])
    assert [type(e) for e in events] == [CallStart, ArgsDelta, CallEnd] and args_of(events) == [{"command": "ls"}]


def test_loose_tool_input_is_validated_after_parsing() -> None:
    events, _ = run(['<tool_call>{"name": "Bash", "arguments": {"cmd": 1}}</tool_call>'], loose=frozenset({"Bash"}))
    end = events[-1]
    assert isinstance(end, CallEnd) and end.call is not None
    assert any("command" in e for e in end.errors)


def test_tool_ids_look_like_anthropic_ones() -> None:
    ident = new_tool_id()
    assert ident.startswith("toolu_") and len(ident) == 30 and ident[6:].isalnum()
