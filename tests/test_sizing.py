"""Sizing a prompt for count_tokens (engine/sizing.py), pure: no onnxruntime-genai."""

from __future__ import annotations

from agentic_flow.chat import Prompt, ToolCall, ToolChoice, ToolResult, ToolSpec, Turn
from agentic_flow.engine.sizing import pieces, prompt_chars, skeleton, splice

BIG = "x " * 1000
TOOL = ToolSpec("Read", "Read a file", {"type": "object", "properties": {"path": {"type": "string"}}})


def conversation() -> Prompt:
    return Prompt((
        Turn("user", "read it"),
        Turn("assistant", "", calls=(ToolCall("t1", "Read", {"path": "/a"}),)),
        Turn("user", "thanks", results=(ToolResult("t1", BIG),)),
    ), (TOOL,), ToolChoice("auto"))


def test_a_tool_result_and_the_tool_definitions_count_toward_the_size() -> None:
    prompt = conversation()
    text_only = sum(len(t.content) for t in prompt.turns)
    assert prompt_chars(prompt) >= text_only + len(BIG) + len("Read a file")
    bare = Prompt(prompt.turns)
    assert prompt_chars(prompt) > prompt_chars(bare)  # the tools are counted


def render(prompt: Prompt) -> str:
    """A stand-in template: tools first, then each turn with its results before its text."""
    head = "".join(f"<tool {t.name}: {t.description}>" for t in prompt.tools)
    body = "".join(f"[{t.role}]" + "".join(f"<result {r.content}>" for r in t.results) + t.content
                   for t in prompt.turns)
    return head + body


def test_the_skeleton_keeps_the_tools_and_splices_back_to_the_full_rendering() -> None:
    prompt = conversation()
    bare, marks = skeleton(prompt)
    assert bare.tools == prompt.tools and bare.choice == prompt.choice
    assert len(render(bare)) < len(render(prompt)) - len(BIG) + 100  # the big result is a marker there
    assert splice(render(bare), marks) == render(prompt)


def test_a_dropped_marker_means_no_splice() -> None:
    bare, marks = skeleton(conversation())
    assert splice(render(bare).replace(marks[0][0], ""), marks) is None


def test_pieces_cut_before_a_word_and_join_back() -> None:
    text = "alpha beta  gamma " * 50
    cut = pieces(text, 16)
    assert "".join(cut) == text and len(cut) > 1
    assert all(piece.startswith(" ") for piece in cut[1:])
