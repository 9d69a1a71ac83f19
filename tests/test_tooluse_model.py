"""Tool use on the real default model, through onnxruntime-genai guidance: every forced call parses and
validates, and `auto` still answers a plain question in text."""

from __future__ import annotations

import json
from pathlib import Path

import onnxruntime_genai as og
import pytest

from agentic_flow.tooluse import (
    CallEnd,
    TextDelta,
    ToolCallParser,
    ToolChoice,
    ToolSpec,
    Turn,
    plan,
    render_chat,
)
from agentic_flow.tooluse.validate import validate

pytestmark = pytest.mark.model
PROMPT = "What is in README.md?"  # the 135M loops inside some path strings (then: max_tokens, honestly)
READ = ToolSpec("Read", "Read a file.", {"type": "object", "properties": {"file_path": {"type": "string"}},
                                          "required": ["file_path"]})
BASH = ToolSpec("Bash", "Run a command.", {"type": "object", "properties": {"command": {"type": "string"}},
                                             "required": ["command"], "if": {"required": ["x"]}})


@pytest.fixture(scope="module")
def model(real_model_dir: Path) -> tuple[og.Model, og.Tokenizer]:
    config = og.Config(str(real_model_dir))
    config.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": 1}}}}))
    loaded = og.Model(config)
    return loaded, og.Tokenizer(loaded)


def generate(model: tuple[og.Model, og.Tokenizer], prompt: str, choice: ToolChoice) -> tuple[list[object], str]:
    loaded, tok = model
    tools = (READ, BASH)
    chat = render_chat((Turn("user", prompt),), tools, choice, native=False)
    ids = tok.encode(tok.apply_chat_template(json.dumps(list(chat.messages)), add_generation_prompt=True))
    tool_plan = plan(tools, choice)
    params = og.GeneratorParams(loaded)
    params.set_search_options(max_length=len(ids) + 60, do_sample=False)
    if tool_plan.guidance:
        params.set_guidance(tool_plan.guidance.kind, tool_plan.guidance.text)
    gen = og.Generator(loaded, params)
    gen.append_tokens(ids)
    parser, stream, events, stop = ToolCallParser(tools, tool_plan.loose), tok.create_stream(), [], "max_tokens"
    while not gen.is_done():
        gen.generate_next_token()
        token = int(gen.get_next_tokens()[0])
        if token in set(tok.eos_token_ids):
            stop = "end_turn"
            break
        events += parser.feed(stream.decode(token))
    tail, reason = parser.finish(stop)
    return events + tail, reason


@pytest.mark.parametrize("choice", [ToolChoice("tool", "Read", parallel=False), ToolChoice("any", parallel=False)])
def test_forced_call_parses_and_validates(model: tuple[og.Model, og.Tokenizer], choice: ToolChoice) -> None:
    events, reason = generate(model, PROMPT, choice)
    ends = [e for e in events if isinstance(e, CallEnd)]
    assert reason == "tool_use" and len(ends) == 1 and ends[0].call is not None
    call = ends[0].call
    assert call.name in ("Read", "Bash") and (choice.name is None or call.name == choice.name)
    spec = READ if call.name == "Read" else BASH
    assert validate(call.input, spec.input_schema) == [] or ends[0].errors  # loose Bash: errors are reported
    assert not [e for e in events if isinstance(e, TextDelta)]


def test_auto_answers_a_plain_question_in_text(model: tuple[og.Model, og.Tokenizer]) -> None:
    events, reason = generate(model, "What is the capital of France?", ToolChoice("auto"))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert reason == "end_turn" and "Paris" in text and "<tool_call>" not in text
