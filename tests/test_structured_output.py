"""Structured output end to end: the official SDKs against the real proxy process on the real 135M.

OpenAI's `response_format` (json_object, json_schema through `chat.completions.parse` with a Pydantic
model, streamed and not) and Anthropic's `output_config.format`; a schema the grammar cannot enforce
is a 400 naming what it cannot take.  Schemas stay small (enums, booleans, bounded strings) so that
the 135M completes them within a few tokens.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pydantic
import pytest

from agentic_flow.launcher import supervisor
from agentic_flow.tooluse.validate import validate

GREEDY = {"temperature": 0}
ASK = [{"role": "user", "content": "Pick a color and say whether you are sure."}]


class Color(enum.StrEnum):
    red = "red"
    green = "green"
    blue = "blue"


class Pick(pydantic.BaseModel):
    color: Color
    sure: bool


PICK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"color": {"enum": ["red", "green", "blue"]}, "sure": {"type": "boolean"}},
    "required": ["color", "sure"],
    "additionalProperties": False,
}




@pytest.fixture()
def claude(proxy: supervisor.ProxyProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=proxy.url, api_key="local", max_retries=0) as sdk:
        yield sdk


# --- OpenAI ---------------------------------------------------------------------------------------


def test_parse_with_a_pydantic_model_returns_the_parsed_object(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.parse(model="local", messages=ASK, response_format=Pick,  # type: ignore[arg-type]
                                            max_tokens=40, temperature=0)
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "stop"
    assert isinstance(message.parsed, Pick), message.content
    assert json.loads(message.content or "") == message.parsed.model_dump(mode="json")


def test_streamed_parse_returns_the_parsed_object(oai: openai.OpenAI) -> None:
    with oai.chat.completions.stream(model="local", messages=ASK, response_format=Pick,  # type: ignore[arg-type]
                                     max_tokens=40, temperature=0) as stream:
        deltas = [event.delta for event in stream if event.type == "content.delta"]
        completion = stream.get_final_completion()
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Pick)
    assert len(deltas) > 1  # streamed in pieces, not one block at the end
    assert json.loads("".join(deltas)) == parsed.model_dump(mode="json")


def test_json_object_returns_a_parseable_object(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(
        model="local", messages=[{"role": "user", "content": "Reply with the JSON object {\"ok\": true}."}],
        response_format={"type": "json_object"}, max_tokens=60, temperature=0)
    choice = completion.choices[0]
    if choice.finish_reason == "length":
        pytest.fail(f"the 135M did not close its object within 60 tokens: {choice.message.content!r}")
    assert isinstance(json.loads(choice.message.content or ""), dict)


def test_text_format_is_free_text(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(model="local", messages=ASK, response_format={"type": "text"},
                                             max_tokens=8, temperature=0)
    assert completion.choices[0].message.content


@pytest.mark.parametrize(("schema", "named"), [
    ({"type": "object", "properties": {"a": {"type": "string"}}, "not": {"required": ["a"]}}, "not"),
    ({"type": "object", "properties": {"a": {"type": "array", "uniqueItems": True}}}, "uniqueItems"),
    ({"type": "object", "properties": {"a": {"type": "string", "format": "color"}}}, "format"),
])
def test_a_schema_the_grammar_cannot_enforce_is_a_400_naming_it(oai: openai.OpenAI, schema: dict[str, Any],
                                                                 named: str) -> None:
    for strict in (True, False):
        with pytest.raises(openai.BadRequestError) as caught:
            oai.chat.completions.create(
                model="local", messages=ASK, max_tokens=8,
                response_format={"type": "json_schema",
                                 "json_schema": {"name": "x", "schema": schema, "strict": strict}})
        assert named in caught.value.message
        assert "response_format.json_schema.schema" in caught.value.message


def test_a_schema_the_runtime_refuses_is_a_400(oai: openai.OpenAI) -> None:
    """Contradictory: nothing matches it.  Either refused up front or by llguidance: a 400 either way."""
    schema = {"type": "object", "properties": {"a": {"type": "string", "minLength": 5, "maxLength": 2}},
              "required": ["a"]}
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model="local", messages=ASK, max_tokens=8, response_format={
            "type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
    assert "response_format.json_schema.schema" in caught.value.message


def test_json_schema_without_a_schema_and_with_tools_are_400s(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="schema"):
        oai.chat.completions.create(model="local", messages=ASK, max_tokens=8,
                                    response_format={"type": "json_schema", "json_schema": {"name": "x"}})
    tool: Any = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    with pytest.raises(openai.BadRequestError, match="tools"):
        oai.chat.completions.create(model="local", messages=ASK, max_tokens=8, tools=[tool],
                                    response_format={"type": "json_object"})


# --- Anthropic ------------------------------------------------------------------------------------


def test_anthropic_output_schema_returns_text_that_validates(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model="local", max_tokens=40, messages=ASK, extra_body=GREEDY,  # type: ignore[arg-type]
                                     output_config={"format": {"type": "json_schema", "schema": PICK_SCHEMA}})
    assert message.stop_reason == "end_turn"
    text = "".join(block.text for block in message.content if block.type == "text")
    assert validate(json.loads(text), PICK_SCHEMA) == []


def test_anthropic_parse_streamed_with_the_beta_spelling(claude: anthropic.Anthropic,
                                                         proxy: supervisor.ProxyProcess) -> None:
    with claude.messages.stream(model="local", max_tokens=40, messages=ASK, extra_body=GREEDY,  # type: ignore[arg-type]
                                output_format=Pick) as stream:
        message = stream.get_final_message()
    text = "".join(block.text for block in message.content if block.type == "text")
    assert Pick.model_validate_json(text)
    # The structured-outputs beta sends the format at the top level: the same reply.
    body = {"model": "local", "max_tokens": 40, **GREEDY, "messages": ASK,
            "output_format": {"type": "json_schema", "schema": PICK_SCHEMA}}
    beta = claude.post("/v1/messages", body=body, cast_to=anthropic.types.Message)
    assert json.loads("".join(b.text for b in beta.content if b.type == "text")) == json.loads(text)


def test_anthropic_unenforceable_schema_is_a_400(claude: anthropic.Anthropic) -> None:
    schema = {"type": "object", "if": {"required": ["a"]}, "then": {"required": ["b"]}}
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(model="local", max_tokens=8, messages=ASK,  # type: ignore[arg-type]
                               output_config={"format": {"type": "json_schema", "schema": schema}})
    assert "output_config.format.schema" in caught.value.message and "if" in caught.value.message


# --- the rest of what OpenAI clients send -----------------------------------------------------------


def test_seed_decides_the_sample(oai: openai.OpenAI) -> None:
    """The same seed gives the same sample at temperature 1; the control: different seeds do not
    all give one and the same (five draws of 16 tokens)."""
    def sample(seed: int) -> str | None:
        done = oai.chat.completions.create(model="m", messages=ASK, max_tokens=16, temperature=1.0, seed=seed)
        return done.choices[0].message.content
    assert sample(7) == sample(7)
    assert len({sample(seed) for seed in range(5)}) > 1


def test_stream_opens_with_null_content_and_names_the_build(oai: openai.OpenAI) -> None:
    chunks = list(oai.chat.completions.create(model="m", messages=ASK, max_tokens=4, stream=True))
    first = chunks[0].choices[0].delta
    assert first.role == "assistant" and first.content is None
    assert first.model_extra is None or "content" not in first.model_extra
    fingerprints = {chunk.system_fingerprint for chunk in chunks}
    done = oai.chat.completions.create(model="m", messages=ASK, max_tokens=4)
    assert fingerprints == {done.system_fingerprint}
    assert (done.system_fingerprint or "").startswith("smollm2-135m@")


def test_routes_without_v1(proxy: supervisor.ProxyProcess) -> None:
    with openai.OpenAI(base_url=proxy.url, api_key="local", max_retries=0) as bare:
        assert bare.chat.completions.create(model="m", messages=ASK, max_tokens=4).choices[0].message.content
        assert [m.id for m in bare.models.list()] == ["smollm2-135m"]
        with pytest.raises(openai.BadRequestError) as caught:  # errors in OpenAI's shape there too
            bare.chat.completions.create(model="m", messages=ASK, max_tokens=4, n=9)
        assert caught.value.param == "n"  # type: ignore[attr-defined]


def test_stop_takes_up_to_four(oai: openai.OpenAI) -> None:
    four = oai.chat.completions.create(model="m", messages=ASK, max_tokens=4, stop=["a1", "b2", "c3", "d4"])
    assert four.choices[0].finish_reason in ("stop", "length")
    with pytest.raises(openai.BadRequestError, match="at most 4"):
        oai.chat.completions.create(model="m", messages=ASK, max_tokens=4, stop=["a", "b", "c", "d", "e"])
