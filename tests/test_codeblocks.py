"""Code stays code (tooluse/codeblocks.py): which fields are code, the grammar's call form, the parser in
every chunking, the history written back the way the model writes it; through the proxy's handler with
a fake engine that writes the code form, the exact file content in the `tool_use` input; and on the
real 135M, the contract the proxy keeps whatever the model writes."""

from __future__ import annotations

import json
import re
from typing import Any

import anthropic
import pytest

from agentic_flow.agents.tools import TOOL_CLASSES
from agentic_flow.tooluse import ToolCall, ToolCallParser, ToolChoice, ToolSpec, Turn, plan, render_chat
from agentic_flow.tooluse.codeblocks import code_fields_of, header_schema, read_blocks, with_code_fields
from agentic_flow.tooluse.parse import ArgsDelta, CallEnd, CallStart
from agentic_flow.tooluse.render import written_call
from agentic_flow.tooluse.validate import validate

SPECS = with_code_fields(tuple(ToolSpec(n, "d", TOOL_CLASSES[n].input_schema) for n in ("Read", "Write", "Edit")))
BY_NAME = {s.name: s for s in SPECS}
WRITE = ('Done soon.\n<tool_call>\n{"name": "Write", "arguments": {"file_path": "t.py"}}\n```python\n'
         'def f():\n    return "a\\\\b \\"q\\""\n```\n</tool_call>')
EDIT = ('<tool_call>\n{"name": "Edit", "arguments": {"file_path": "t.py"}}\n```python\n    return 1\n```\n'
        '```python\n    return 2\n```\n</tool_call>')


def parse(text: str, step: int) -> tuple[list[Any], str, ToolCallParser]:
    parser = ToolCallParser(SPECS, frozenset(s.name for s in SPECS))
    events: list[Any] = []
    for i in range(0, len(text), step):
        events += parser.feed(text[i:i + step])
    more, stop = parser.finish("end_turn")
    return events + more, stop, parser


def test_code_fields_are_required_free_strings_with_known_names() -> None:
    assert [s.code_fields for s in SPECS] == [(), ("content",), ("old_string", "new_string")]
    assert code_fields_of({"type": "object", "properties": {"content": {"type": "string", "enum": ["a"]}},
                           "required": ["content"]}) == ()
    assert code_fields_of({"type": "object", "properties": {"content": {"type": "string"}}}) == ()
    header = header_schema(BY_NAME["Edit"])
    assert header is not None and set(header["properties"]) == {"file_path", "replace_all"}  # type: ignore[arg-type]
    assert header["required"] == ["file_path"]


@pytest.mark.parametrize("step", [1, 2, 5, 13, 10_000])
def test_a_write_parses_the_same_in_any_chunking(step: int) -> None:
    events, stop, parser = parse(WRITE, step)
    assert stop == "tool_use"
    (call,) = parser.calls
    assert call.input == {"file_path": "t.py", "content": 'def f():\n    return "a\\\\b \\"q\\""\n'}
    args = "".join(e.partial_json for e in events if isinstance(e, ArgsDelta))
    assert json.loads(args) == call.input  # the input arrives whole, once the blocks are done
    assert [type(e) for e in events if not isinstance(e, ArgsDelta)][-2:] == [CallStart, CallEnd]
    assert not validate(dict(call.input), TOOL_CLASSES["Write"].input_schema)


@pytest.mark.parametrize("step", [1, 3, 10_000])
def test_an_edit_takes_its_two_blocks_in_order(step: int) -> None:
    _, _, parser = parse(EDIT, step)
    assert parser.calls[0].input == {"file_path": "t.py", "old_string": "    return 1", "new_string": "    return 2"}


def test_a_call_written_the_old_way_is_still_read() -> None:
    old = '<tool_call>\n{"name": "Write", "arguments": {"file_path": "a", "content": "x\\n"}}\n</tool_call>'
    _, stop, parser = parse(old, 4)
    assert stop == "tool_use" and parser.calls[0].input == {"file_path": "a", "content": "x\n"}


def test_a_cut_code_call_ends_as_max_tokens_with_no_input() -> None:
    parser = ToolCallParser(SPECS, frozenset())
    events = parser.feed(WRITE[:80])
    more, stop = parser.finish("max_tokens")
    assert stop == "max_tokens" and not parser.calls
    # Never opened: a client is not left a tool_use block with no input.
    assert not any(isinstance(e, CallStart | CallEnd) for e in events + more)


@pytest.mark.parametrize("content", ["print(1)\n", "x = '''\n```\n'''\n", "", "no newline at the end"])
def test_history_is_written_as_the_model_writes_it_and_reads_back(content: str) -> None:
    call = ToolCall("toolu_1", "Write", {"file_path": "a.py", "content": content})
    written = written_call(call, BY_NAME)
    assert "content" not in written.split("\n", 2)[1]  # the JSON line holds only the path
    _, _, parser = parse(written, 3)
    expected = content if content.endswith("\n") or not content else content + "\n"
    assert parser.calls[0].input == {"file_path": "a.py", "content": expected}


def test_native_history_and_tool_listing_use_the_code_form() -> None:
    turns = (Turn("user", "hi"), Turn("assistant", "", calls=(ToolCall("t", "Write", {"file_path": "a.py",
                                                                                       "content": "x\n"}),)))
    chat = render_chat(turns, SPECS, ToolChoice(), native=True)
    assert chat.messages[-1] == {"role": "assistant", "content": written_call(turns[1].calls[0], BY_NAME)}
    assert chat.messages[0]["role"] == "system" and "# Code in tool calls" in str(chat.messages[0]["content"])
    listed = {f["function"]["name"]: f["function"] for f in json.loads(chat.tools or "[]")}
    assert "content" not in listed["Write"]["parameters"]["properties"]
    assert "fenced code blocks" in listed["Write"]["description"]


def test_the_grammar_has_one_code_form_per_code_tool() -> None:
    guidance = plan(SPECS, ToolChoice("any", parallel=False)).guidance
    assert guidance is not None
    assert '"<tool_call>\\n" head0 "\\n" block "</tool_call>"' in guidance.text
    assert '"<tool_call>\\n" head1 "\\n" block block_or_empty "</tool_call>"' in guidance.text
    assert read_blocks("```py\na\n```\n```\nb\n```", 2) == (["a", "b"], 21)
    # A line inside a block cannot start with the block's fence and go on ("```python" where the block
    # should close held the 1.5B in the block until max_tokens).
    assert 'code3[suffix="\\n```\\n"]: /(?s:.+)/ & ~/(?s:.*)\\n```[^\\n](?s:.*)/' in guidance.text


def test_the_runtime_accepts_the_code_grammar_and_keeps_blocks_closable(real_model_dir: Any) -> None:
    """The grammar is compiled by onnxruntime-genai's llguidance at the generator's creation: a refused one
    would raise GrammarRefused (and the proxy would fall back to plain JSON calls)."""
    from agentic_flow.engine.ort import OrtModel
    from agentic_flow.engine.search import GREEDY

    model = OrtModel(real_model_dir, ("cpu",), 0)
    spec = ToolSpec("Write", "", TOOL_CLASSES["Write"].input_schema, code_fields=("content",))
    guidance = plan((spec,), ToolChoice("tool", "Write", parallel=False)).guidance
    ids = model.encode("Write hello.py")
    generator = model.start([ids], GREEDY, len(ids) + 64, guidance)
    text = "".join(model.tokenizer.decode([token]) for _ in range(40) for token in generator.step())
    generator.close()
    assert text.lstrip().startswith("<tool_call>\n{\"name\": \"Write\"")


# ---------------------------------------------------------------- through the proxy


WRITE_TOOL: Any = {"name": "Write", "description": "Write a file.",
                   "input_schema": TOOL_CLASSES["Write"].input_schema}
ASK: Any = [{"role": "user", "content": "Write hello.py: a Python program that prints hello world."}]
FORCE: Any = {"type": "tool", "name": "Write", "disable_parallel_tool_use": True}
MODEL_TEXT = ["<tool_call>\n", '{"name": "Write", "arguments": {"file_path": "hello.py"}}\n```py', "thon\nprint(",
              '"hello \\"world\\""', ")\n\nif True:\n\tpass\n", "```\n</tool_call>"]
EXACT = 'print("hello \\"world\\"")\n\nif True:\n\tpass\n'


async def test_the_sdk_gets_the_block_as_the_exact_content(aiohttp_client: Any) -> None:
    """The handler over a fake engine that writes the code form: the JSON input the client gets holds the
    block's text byte for byte (quotes, backslashes, tabs, blank lines), streamed and not."""
    from agentic_flow.engine.base import Completion
    from agentic_flow.proxy.app import create_app
    from tests.fake_engine import FakeEngine
    from tests.test_handlers import make_state

    state = make_state(FakeEngine(MODEL_TEXT, Completion("end_turn", None, 9)))
    state.backend.code_blocks = True  # type: ignore[attr-defined]
    client = await aiohttp_client(create_app(state, api_key=None, max_body=1 << 20))
    body = {"model": "m", "max_tokens": 64, "messages": ASK, "tools": [WRITE_TOOL], "tool_choice": FORCE}
    whole = await (await client.post("/v1/messages", json=body)).json()
    assert whole["stop_reason"] == "tool_use"
    assert [b["input"] for b in whole["content"] if b["type"] == "tool_use"] == [
        {"file_path": "hello.py", "content": EXACT}]
    raw = await (await client.post("/v1/messages", json={**body, "stream": True})).text()
    pieces = [json.loads(line.removeprefix("data: "))["delta"]["partial_json"] for line in raw.splitlines()
              if "input_json_delta" in line]
    assert json.loads("".join(pieces)) == {"file_path": "hello.py", "content": EXACT}


@pytest.fixture(scope="module")
def code_proxy(proxy_factory: Any) -> Any:
    with proxy_factory(tool_syntax="code") as handle:
        yield handle


def test_the_real_model_under_the_code_syntax_never_returns_a_broken_call(code_proxy: Any) -> None:
    """The 135M writes poor code blocks (measured: it copies the prompt's headings and loops), so this
    checks the contract the proxy guarantees whatever the model does: a complete call whose input
    validates and whose content is a block's text, or max_tokens with no tool_use; the same greedy
    result streamed and not; the repetition guard ending a loop well before max_tokens."""
    with anthropic.Anthropic(base_url=code_proxy.url, api_key="k", max_retries=0) as client:
        message = client.messages.create(model="m", max_tokens=400, messages=ASK, tools=[WRITE_TOOL],
                                         tool_choice=FORCE, extra_body={"temperature": 0})
        uses = [b for b in message.content if b.type == "tool_use"]
        if message.stop_reason == "tool_use":
            assert len(uses) == 1 and not validate(uses[0].input, TOOL_CLASSES["Write"].input_schema)
            assert "\n```\n" not in uses[0].input["content"] + "\n"  # its closing fence is left out
            assert not re.search(r"\n```[^\n]", uses[0].input["content"])  # nor a line opening another
        else:
            assert message.stop_reason == "max_tokens" and not uses
            assert message.usage.output_tokens < 400  # the loop was cut by the guard
        with client.messages.stream(model="m", max_tokens=400, messages=ASK, tools=[WRITE_TOOL],
                                    tool_choice=FORCE, extra_body={"temperature": 0}) as stream:
            streamed = stream.get_final_message()
    assert streamed.stop_reason == message.stop_reason
    assert [b.input for b in streamed.content if b.type == "tool_use"] == [b.input for b in uses]
