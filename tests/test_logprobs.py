"""Log probabilities and several choices (`n`) on Chat Completions: the official `openai` SDK against
the real proxy process on the real 135M, streamed and not, and what is refused with a 400."""

from __future__ import annotations

import json
import math
from typing import Any

import openai
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion
from openai.types.chat.chat_completion import ChoiceLogprobs

ASK: Any = [{"role": "user", "content": "What is the capital of France?"}]
TOOL: Any = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}




def streamed(oai: openai.OpenAI, **kwargs: Any) -> ChatCompletion:
    """A streamed reply, accumulated by the SDK's own stream state (its `stream()` helper refuses a
    reply cut by max_tokens)."""
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for chunk in oai.chat.completions.create(model="local", stream=True, **kwargs):
        state.handle_chunk(chunk)
    return ChatCompletion.model_validate(state.current_completion_snapshot.model_dump())


def check_sensible(logprobs: ChoiceLogprobs | None, content: str, top: int, greedy: bool = True) -> None:
    """Values are log probabilities, alternatives are sorted and sum to at most 1, the chosen token
    is the most likely under greedy decoding, and the tokens join to the reply's text."""
    assert logprobs is not None and logprobs.content is not None
    entries = logprobs.content
    assert entries, "no token scores"
    assert "".join(e.token for e in entries) == content
    for entry in entries:
        assert entry.logprob <= 0.0
        assert entry.bytes == list(entry.token.encode())
        assert len(entry.top_logprobs) == top
        values = [alt.logprob for alt in entry.top_logprobs]
        assert values == sorted(values, reverse=True)
        assert all(v <= 0.0 for v in values)
        assert sum(math.exp(v) for v in values) <= 1.0 + 1e-6
        if greedy and top:
            assert entry.logprob == pytest.approx(values[0], abs=1e-5), entry
    if top:  # a sharp model: most steps put most of their mass on the few best tokens
        masses = [sum(math.exp(alt.logprob) for alt in e.top_logprobs) for e in entries]
        assert sum(masses) / len(masses) > 0.5, masses


# --- logprobs --------------------------------------------------------------------------------------


def test_logprobs_rank_and_sum_sensibly(oai: openai.OpenAI) -> None:
    done = oai.chat.completions.create(model="local", messages=ASK, max_tokens=24, temperature=0,
                                       logprobs=True, top_logprobs=5)
    choice = done.choices[0]
    assert choice.message.content and "Paris" in choice.message.content
    check_sensible(choice.logprobs, choice.message.content, top=5)
    assert choice.logprobs is not None and choice.logprobs.content is not None
    # One entry per generated token (no stop sequence cut this reply).
    assert len(choice.logprobs.content) == done.usage.completion_tokens if done.usage else False
    # "Paris" is a likely token here (p 0.49 on this model), and the model's first pick.
    paris = next(e for e in choice.logprobs.content if "Paris" in e.token)
    assert paris.logprob > math.log(0.25) and paris.top_logprobs[0].token == " Paris", paris


def test_streamed_logprobs_equal_the_whole_reply(oai: openai.OpenAI) -> None:
    args: Any = {"messages": ASK, "max_tokens": 24, "temperature": 0, "logprobs": True, "top_logprobs": 3}
    whole = oai.chat.completions.create(model="local", **args).choices[0]
    chunks = list(oai.chat.completions.create(model="local", stream=True, **args))
    scored = [c for c in chunks if c.choices and c.choices[0].logprobs and c.choices[0].logprobs.content]
    assert len(scored) > 1, "scores arrive with the text, chunk by chunk"
    stream = streamed(oai, **args).choices[0]
    assert stream.message.content == whole.message.content
    check_sensible(stream.logprobs, stream.message.content or "", top=3)
    assert stream.logprobs is not None and whole.logprobs is not None
    assert [e.token for e in stream.logprobs.content or []] == [e.token for e in whole.logprobs.content or []]
    for a, b in zip(stream.logprobs.content or [], whole.logprobs.content or [], strict=True):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-3)


def test_logprobs_without_top_logprobs_list_no_alternatives(oai: openai.OpenAI) -> None:
    choice = oai.chat.completions.create(model="local", messages=ASK, max_tokens=8, temperature=0,
                                         logprobs=True).choices[0]
    check_sensible(choice.logprobs, choice.message.content or "", top=0)
    plain = oai.chat.completions.create(model="local", messages=ASK, max_tokens=8, temperature=0)
    assert plain.choices[0].logprobs is None  # not asked: null, as OpenAI
    assert plain.choices[0].message.content == choice.message.content


@pytest.mark.parametrize("stream", [False, True])
def test_a_stop_sequence_leaves_no_scores_for_trimmed_tokens(oai: openai.OpenAI, stream: bool) -> None:
    """Greedy: "The capital of France is Paris..."; the stop begins inside the token " Paris", whose
    score stays with its text cut to " "."""
    args: Any = {"messages": ASK, "max_tokens": 24, "temperature": 0, "logprobs": True, "top_logprobs": 2,
                 "stop": ["Paris"]}
    choice = (streamed(oai, **args) if stream else oai.chat.completions.create(model="local", **args)).choices[0]
    assert choice.finish_reason == "stop"
    content = choice.message.content or ""
    assert "Paris" not in content and content.endswith(" ")
    check_sensible(choice.logprobs, content, top=2)


def test_logprobs_under_a_grammar_are_the_models_own(oai: openai.OpenAI) -> None:
    """Structured output: the scores are of the model's distribution before the grammar's mask, so
    the chosen token need not be the most likely one; they still join to the reply."""
    schema = {"type": "object", "properties": {"city": {"enum": ["Paris", "Lyon"]}}, "required": ["city"],
              "additionalProperties": False}
    for stream in (False, True):
        args: Any = {"messages": ASK, "max_tokens": 30, "temperature": 0, "logprobs": True, "top_logprobs": 4,
                     "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}}
        choice = (streamed(oai, **args) if stream else oai.chat.completions.create(model="local", **args)).choices[0]
        assert json.loads(choice.message.content or "") == {"city": "Paris"}
        check_sensible(choice.logprobs, choice.message.content or "", top=4, greedy=False)
        # A guided request's stop sequences are matched by the proxy, on text: the scores are cut there too.
        cut = (streamed(oai, **args, stop=["Paris"]) if stream
               else oai.chat.completions.create(model="local", **args, stop=["Paris"])).choices[0]
        assert cut.finish_reason == "stop" and (cut.message.content or "").endswith('"')
        check_sensible(cut.logprobs, cut.message.content or "", top=4, greedy=False)


def test_a_multibyte_character_is_the_text_of_the_token_that_completes_it(oai: openai.OpenAI) -> None:
    ask: Any = [{"role": "user", "content": "Repeat exactly: 🦙🦙🦙 日本語"}]
    for stream in (False, True):
        args: Any = {"messages": ask, "max_tokens": 30, "temperature": 0, "logprobs": True, "top_logprobs": 1}
        choice = (streamed(oai, **args) if stream else oai.chat.completions.create(model="local", **args)).choices[0]
        content = choice.message.content or ""
        check_sensible(choice.logprobs, content, top=1)
        assert choice.logprobs is not None and choice.logprobs.content is not None
        if any(ord(c) > 0xFFFF for c in content):  # an emoji takes several byte tokens in this vocabulary
            assert any(e.token == "" for e in choice.logprobs.content)


# --- n ---------------------------------------------------------------------------------------------


def test_n_gives_that_many_choices_and_sums_their_usage(oai: openai.OpenAI) -> None:
    done = oai.chat.completions.create(model="local", messages=ASK, max_tokens=12, temperature=0, n=3,
                                       logprobs=True)
    assert [c.index for c in done.choices] == [0, 1, 2]
    assert all(c.finish_reason in ("stop", "length") for c in done.choices)
    # Greedy: three identical replies (as OpenAI at temperature 0).
    assert len({c.message.content for c in done.choices}) == 1
    tokens = [len(c.logprobs.content or []) for c in done.choices if c.logprobs]
    assert done.usage is not None and done.usage.completion_tokens == sum(tokens) and len(tokens) == 3
    one = oai.chat.completions.create(model="local", messages=ASK, max_tokens=12, temperature=0)
    assert one.usage is not None and done.usage.prompt_tokens == one.usage.prompt_tokens


def test_streamed_n_names_each_choice(oai: openai.OpenAI) -> None:
    chunks = list(oai.chat.completions.create(model="local", messages=ASK, max_tokens=10, temperature=1.0,
                                              seed=3, n=3, stream=True, stream_options={"include_usage": True},
                                              logprobs=True))
    indexes = {c.choices[0].index for c in chunks if c.choices}
    assert indexes == {0, 1, 2}
    finishes = [c.choices[0] for c in chunks if c.choices and c.choices[0].finish_reason]
    assert sorted(f.index for f in finishes) == [0, 1, 2]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None  # the usage comes last, once
    assert [c for c in chunks if c.usage] == [chunks[-1]]
    mine = [[c.choices[0] for c in chunks if c.choices and c.choices[0].index == i] for i in range(3)]
    texts = ["".join(c.delta.content or "" for c in choice) for choice in mine]
    scores = [sum(len(c.logprobs.content or []) for c in choice if c.logprobs) for choice in mine]
    assert chunks[-1].usage.completion_tokens == sum(scores)
    # A seeded request's choice i is seeded seed + i: choice 0 is what n=1 answers with that seed.
    alone = oai.chat.completions.create(model="local", messages=ASK, max_tokens=10, temperature=1.0, seed=3)
    assert texts[0] == alone.choices[0].message.content
    assert len(set(texts)) > 1, texts  # three seeds: not one and the same sample


def test_n_with_tools_and_with_a_schema(oai: openai.OpenAI) -> None:
    ask: Any = [{"role": "user", "content": "What is the weather in Paris?"}]
    for stream in (False, True):
        args: Any = {"messages": ask, "max_tokens": 100, "temperature": 0, "n": 2, "tools": [TOOL],
                     "tool_choice": "required"}
        done = streamed(oai, **args) if stream else oai.chat.completions.create(model="local", **args)
        assert [c.index for c in done.choices] == [0, 1]
        for choice in done.choices:
            assert choice.finish_reason == "tool_calls", choice
            calls = choice.message.tool_calls or []
            assert calls and calls[0].function.name == "get_weather"
            assert "city" in json.loads(calls[0].function.arguments)
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    done = oai.chat.completions.create(model="local", messages=ask, max_tokens=20, temperature=0, n=2,
                                       response_format={"type": "json_schema",
                                                        "json_schema": {"name": "a", "schema": schema}})
    assert len(done.choices) == 2 and all(isinstance(json.loads(c.message.content or ""), dict)
                                          for c in done.choices)


# --- refused -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "param"), [
    ({"logprobs": True, "tools": [TOOL]}, "logprobs"),
    ({"logprobs": True, "tools": [TOOL], "n": 2, "stream": True}, "logprobs"),
    ({"top_logprobs": 2}, "top_logprobs"),
    ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ({"n": 9}, "n"),
    ({"n": 0}, "n"),
])
def test_unsupported_combinations_are_400s_naming_the_param(oai: openai.OpenAI, args: dict[str, Any],
                                                            param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model="local", messages=ASK, max_tokens=4, **args)
    body: Any = caught.value.body
    assert caught.value.status_code == 400
    assert body["param"] == param and body["type"] == "invalid_request_error", body
    assert param in body["message"]


def test_logprobs_with_tools_the_model_may_not_call_are_served(oai: openai.OpenAI) -> None:
    choice = oai.chat.completions.create(model="local", messages=ASK, max_tokens=8, temperature=0,
                                         logprobs=True, tools=[TOOL], tool_choice="none").choices[0]
    check_sensible(choice.logprobs, choice.message.content or "", top=0)
