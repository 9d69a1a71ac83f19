"""Anthropic requests turned into chat turns, tools and a tool choice for the engine."""

from __future__ import annotations

import re
from typing import Any

import pytest

from agentic_flow.anthropic.convert import IMAGE_NOTE, to_prompt, to_request
from agentic_flow.anthropic.requests import InvalidRequest, parse_count_tokens_request, parse_messages_request
from agentic_flow.engine.base import Prompt, SamplingOptions, Turn
from agentic_flow.models import catalog
from agentic_flow.models.catalog import QWEN_SAMPLING
from agentic_flow.serving.planning import sampling_options
from agentic_flow.tooluse import ToolCall, ToolChoice, ToolResult, ToolSpec


def prompt(messages: list[dict[str, Any]], **fields: Any) -> Prompt:
    body = {"model": "m", "max_tokens": 16, "messages": messages, **fields}
    return to_prompt(parse_messages_request(body))


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def assistant(content: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}


def test_single_user_message_has_no_system_turn() -> None:
    assert prompt([user("hi")]) == Prompt((Turn("user", "hi"),))


def test_system_string() -> None:
    turns = prompt([user("hi")], system="Be terse.").turns
    assert turns == (Turn("system", "Be terse."), Turn("user", "hi"))


def test_system_blocks_are_joined_with_a_blank_line() -> None:
    system = [
        {"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "B"},
    ]
    assert prompt([user("hi")], system=system).turns[0] == Turn("system", "A\n\nB")


def test_system_messages_inside_messages_join_the_system_prompt() -> None:
    turns = prompt(
        [{"role": "system", "content": "Env: linux"}, user("hi"), {"role": "system", "content": [
            {"type": "text", "text": "Late note"}]}],
        system="Base.",
    ).turns
    assert turns == (Turn("system", "Base.\n\nEnv: linux\n\nLate note"), Turn("user", "hi"))


def test_blocks_of_one_message_are_joined_with_a_blank_line() -> None:
    turns = prompt([user([{"type": "text", "text": "<reminder>"}, {"type": "text", "text": "fix it"}])]).turns
    assert turns == (Turn("user", "<reminder>\n\nfix it"),)


def test_consecutive_turns_of_one_role_are_merged() -> None:
    turns = prompt([user("a"), user("b"), assistant("c"), assistant("d"), user("e")]).turns
    assert turns == (Turn("user", "a\n\nb"), Turn("assistant", "c\n\nd"), Turn("user", "e"))


def test_thinking_is_dropped() -> None:
    turns = prompt([
        user("q"),
        assistant([
            {"type": "thinking", "thinking": "secret", "signature": "s"},
            {"type": "redacted_thinking", "data": "x"},
            {"type": "text", "text": "answer"},
        ]),
        user("thanks"),
    ]).turns
    assert turns == (Turn("user", "q"), Turn("assistant", "answer"), Turn("user", "thanks"))


def test_a_message_with_nothing_readable_adds_no_turn() -> None:
    only_thinking = assistant([{"type": "thinking", "thinking": "t", "signature": "s"}])
    turns = prompt([user("a"), only_thinking, user("b")]).turns
    assert turns == (Turn("user", "a\n\nb"),)


def test_tool_call_and_result_become_structured_turns() -> None:
    turns = prompt([
        user("read it"),
        assistant([
            {"type": "text", "text": "Reading."},
            {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "/tmp/é"}},
        ]),
        user([
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": [
                {"type": "text", "text": "line 1"}, {"type": "text", "text": "line 2"}]},
            {"type": "text", "text": "what now?"},
        ]),
    ]).turns
    assert turns[1] == Turn("assistant", "Reading.", (ToolCall("toolu_1", "Read", {"path": "/tmp/é"}),))
    assert turns[2] == Turn("user", "what now?", results=(ToolResult("toolu_1", "line 1\n\nline 2"),))


def test_tool_result_error_and_empty_content() -> None:
    turns = prompt([
        user("go"),
        assistant([{"type": "tool_use", "id": "a", "name": "Bash", "input": {}}]),
        user([
            {"type": "tool_result", "tool_use_id": "a", "is_error": True, "content": "exit 1"},
            {"type": "tool_result", "tool_use_id": "b"},
        ]),
    ]).turns
    assert turns[1] == Turn("assistant", "", (ToolCall("a", "Bash", {}),))
    assert turns[2] == Turn("user", "", results=(ToolResult("a", "exit 1", True), ToolResult("b", "")))


def test_a_final_assistant_turn_with_a_call_is_no_prefill() -> None:
    call = assistant([{"type": "tool_use", "id": "a", "name": "Bash", "input": {}}])
    assert prompt([user("go"), call]).prefill == ""
    assert prompt([user("go"), assistant("Sure")]).prefill == "Sure"


def test_an_image_becomes_a_note_saying_it_was_left_out() -> None:
    turns = prompt([user("a"), assistant("b"), user([{"type": "text", "text": "see"}, IMAGE])]).turns
    assert turns[-1] == Turn("user", f"see\n\n{IMAGE_NOTE}")
    assert IMAGE_NOTE == "[image left out: this model reads text only]"


def test_an_image_inside_a_tool_result_becomes_a_note() -> None:
    # Claude Code's Read answers with an image block for an image file.
    shot = [{"type": "text", "text": "shot:"}, IMAGE]
    result = {"type": "tool_result", "tool_use_id": "t", "content": shot}
    assert prompt([user([result])]).turns[0].results == (ToolResult("t", f"shot:\n\n{IMAGE_NOTE}"),)


def test_an_image_in_a_system_message_becomes_a_note() -> None:
    turns = prompt([{"role": "system", "content": [IMAGE]}, user("hi")]).turns
    assert turns[0] == Turn("system", IMAGE_NOTE)


def test_a_tool_reference_in_a_tool_result_names_the_tool() -> None:
    found = [{"type": "tool_reference", "tool_name": "Glob"}, {"type": "tool_reference", "tool_name": "Grep"}]
    result = {"type": "tool_result", "tool_use_id": "t", "content": found}
    assert prompt([user([result])]).turns[0].results == (ToolResult("t", "[tool: Glob]\n\n[tool: Grep]"),)


def test_text_documents_are_included() -> None:
    turns = prompt([user([
        {"type": "document", "title": "notes.txt", "source": {"type": "text", "data": "N"}},
        {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "C"}]}},
        {"type": "text", "text": "summarize"},
    ])]).turns
    assert turns == (Turn("user", "[document: notes.txt]\nN\n\nC\n\nsummarize"),)


@pytest.mark.parametrize(("source", "kind"), [
    ({"type": "base64", "media_type": "application/pdf", "data": "JVBE"}, "a PDF"),
    ({"type": "url", "url": "https://example.com/a.pdf"}, "a URL"),
    ({"type": "file", "file_id": "file_1"}, "an uploaded file"),
    ({"type": "content", "content": [IMAGE]}, "images"),
])
def test_a_document_that_is_not_text_becomes_a_note(source: dict[str, Any], kind: str) -> None:
    plain = prompt([user([{"type": "text", "text": "read"}, {"type": "document", "source": source}])])
    assert plain.turns == (Turn("user", f"read\n\n[document left out ({kind}): this model reads text only]"),)
    titled = prompt([user([{"type": "document", "title": "spec.pdf", "source": source}])])
    assert titled.turns[0].content == f"[document 'spec.pdf' left out ({kind}): this model reads text only]"


def test_final_assistant_turn_is_the_prefill() -> None:
    result = prompt([user("Say hi"), assistant("Hi")], system="S")
    assert result.turns[-1] == Turn("assistant", "Hi")
    assert result.prefill == "Hi"


def test_no_prefill_when_the_user_speaks_last() -> None:
    assert prompt([user("a"), assistant("b"), user("c")]).prefill == ""


def test_an_empty_final_assistant_turn_is_no_prefill() -> None:
    assert prompt([user("a"), assistant("")]).turns == (Turn("user", "a"),)


def test_a_first_assistant_turn_is_accepted() -> None:
    # Anthropic's own API accepts it; a chat template renders it.
    turns = prompt([assistant("How can I help?"), user("Sky colour?")]).turns
    assert turns == (Turn("assistant", "How can I help?"), Turn("user", "Sky colour?"))


def test_tools_and_choice_are_carried_as_they_are() -> None:
    schema = {"type": "object", "properties": {"path": {"type": "string"}}}
    result = prompt(
        [user("hi")],
        system="Base.",
        tools=[{"name": "Read", "description": "Reads.", "input_schema": schema}],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
    )
    assert result.turns == (Turn("system", "Base."), Turn("user", "hi"))
    assert result.tools == (ToolSpec("Read", "Reads.", schema),)
    assert result.choice == ToolChoice("any", None, parallel=False)
    assert prompt([user("hi")]).choice is None  # auto


def test_client_tool_types_get_their_documented_schemas() -> None:
    tools = [{"type": "bash_20250124", "name": "bash"},
             {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"}]
    bash, editor = prompt([user("hi")], tools=tools).tools
    assert bash.input_schema is not None and bash.input_schema["required"] == ["command"]
    assert editor.input_schema is not None
    assert editor.input_schema["properties"]["command"]["enum"] == ["view", "create", "str_replace", "insert"]


@pytest.mark.parametrize("tool", [{"type": "web_search_20250305", "name": "web_search"},
                                  {"type": "computer_20250124", "name": "computer"}])
def test_server_and_unknown_tool_types_are_refused_by_name(tool: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        prompt([user("hi")], tools=[{"name": "Read", "input_schema": {}}, tool])
    assert str(caught.value).startswith(f"tools.1: {tool['name']!r} ({tool['type']})")


def test_tool_choice_naming_an_absent_tool_is_refused() -> None:
    with pytest.raises(InvalidRequest, match=re.escape("tool_choice.name")):
        prompt([user("hi")], tools=[{"name": "Read", "input_schema": {}}], tool_choice={"type": "tool", "name": "X"})


def test_guidance_only_when_tools_can_be_called() -> None:
    tools = [{"name": "Read", "input_schema": {"type": "object"}}]
    for choice, guided in (({"type": "auto"}, True), ({"type": "none"}, False)):
        req = parse_messages_request({"model": "m", "max_tokens": 16, "messages": [user("hi")], "tools": tools,
                                      "tool_choice": choice})
        assert (sampling_options(to_request(req)).guidance is not None) is guided


def test_count_tokens_request_renders_the_same_prompt() -> None:
    body = {"model": "m", "max_tokens": 9, "system": "S", "messages": [user("a"), assistant("b")],
            "tools": [{"name": "Read", "input_schema": {}}]}
    assert to_prompt(parse_count_tokens_request(body)) == to_prompt(parse_messages_request(body))


def test_sampling_defaults_follow_anthropic() -> None:
    req = parse_messages_request({"model": "m", "max_tokens": 16, "messages": [user("hi")]})
    assert sampling_options(to_request(req)) == SamplingOptions(max_tokens=16, temperature=1.0)


def test_sampling_options_are_passed_through() -> None:
    req = parse_messages_request({
        "model": "m", "max_tokens": 8, "messages": [user("hi")], "temperature": 0, "top_p": 0.5, "top_k": 40,
        "stop_sequences": ["\nUser:", "###"],
    })
    assert sampling_options(to_request(req)) == SamplingOptions(
        max_tokens=8, temperature=0.0, top_p=0.5, top_k=40, stop_sequences=("\nUser:", "###"),
    )


def test_top_k_zero_means_no_cut() -> None:
    req = parse_messages_request({"model": "m", "max_tokens": 8, "messages": [user("hi")], "top_k": 0})
    assert sampling_options(to_request(req)).top_k is None


def test_a_request_without_sampling_gets_the_models_published_sampling() -> None:
    # Claude Code sends no temperature, top_p or top_k: a Qwen model then samples as Qwen publishes.
    req = parse_messages_request({"model": "m", "max_tokens": 16, "messages": [user("hi")]})
    assert sampling_options(to_request(req), QWEN_SAMPLING) == SamplingOptions(
        max_tokens=16, temperature=0.7, top_p=0.8, top_k=20)


@pytest.mark.parametrize("field", [{"temperature": 1.0}, {"top_p": 0.9}, {"top_k": 5}])
def test_any_sampling_field_in_the_request_overrides_the_models_default(field: dict[str, Any]) -> None:
    req = parse_messages_request({"model": "m", "max_tokens": 16, "messages": [user("hi")], **field})
    options = sampling_options(to_request(req), QWEN_SAMPLING)
    assert (options.temperature, options.top_p, options.top_k) == (
        field.get("temperature", 1.0), field.get("top_p"), field.get("top_k"))


def test_the_qwen_catalog_models_publish_their_sampling() -> None:
    assert catalog.get("qwen2.5-coder-1.5b").sampling == QWEN_SAMPLING
    assert catalog.get("smollm2-135m").sampling is None
