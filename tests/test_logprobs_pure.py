"""The pure parts of logprobs and n: the scores of a step's logits (engine.logprobs), their matching
to the text shown (serving.logprobs), their OpenAI shape, and the merging of several choices."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator

import numpy as np
import pytest

from agentic_flow import chat
from agentic_flow.engine.base import GenerationRequest, Prompt, SamplingOptions, Turn
from agentic_flow.engine.logprobs import FLOOR, log_softmax_at, score, top_ids
from agentic_flow.openai.serve_response import ChunkEncoder, to_chat_completion
from agentic_flow.serving.choices import choice_request, collected, merged
from agentic_flow.serving.logprobs import Aligner


def test_log_softmax_matches_the_definition_and_stays_finite() -> None:
    logits = np.array([2.0, 1.0, 0.0, -1.0], dtype=np.float32)
    values = log_softmax_at(logits, np.arange(4))
    expected = logits - math.log(sum(math.exp(x) for x in logits))
    assert values == pytest.approx(expected)
    assert sum(math.exp(v) for v in values) == pytest.approx(1.0)
    hard = np.array([0.0, -np.inf, 1e4], dtype=np.float32)  # a masked token, a dominant one
    assert list(log_softmax_at(hard, np.arange(3))) == [FLOOR, FLOOR, 0.0]


def test_top_ids_are_sorted_with_ties_by_id() -> None:
    logits = np.array([1.0, 3.0, 3.0, 2.0, 0.5], dtype=np.float32)
    assert list(top_ids(logits, 3)) == [1, 2, 3]
    assert list(top_ids(logits, 0)) == []
    assert len(top_ids(logits, 99)) == 5


def test_score_of_a_chosen_token_with_alternatives() -> None:
    logits = np.array([0.0, 2.0, 1.0], dtype=np.float32)
    got = score(logits, 2, "b", 2, lambda i: "abc"[i])
    assert got.token == "b" and [c.token for c in got.top] == ["b", "c"]
    assert got.logprob == got.top[1].logprob < got.top[0].logprob <= 0
    assert score(logits, 1, "x", 0, str).top == ()


def lp(token: str) -> chat.TokenLogprob:
    return chat.TokenLogprob(token, -0.5)


def test_scores_are_released_with_the_text_that_completes_them() -> None:
    scores = [lp("The"), lp(" cap"), lp("ital")]
    aligner = Aligner()
    assert aligner.text("The", scores[:1]) == (scores[0],)
    assert aligner.text(" ca", scores[:2]) == ()  # the stop matcher held "p" back
    assert aligner.text("pital", scores) == (scores[1], scores[2])
    assert aligner.finish(scores, cut=False) == ()


def test_a_cut_drops_later_tokens_and_cuts_the_one_that_straddles_it() -> None:
    scores = [lp("The"), lp(" Paris"), lp("."), lp("")]
    aligner = Aligner()
    assert aligner.text("The", scores) == (scores[0],)
    assert aligner.text(" ", scores) == ()  # the stop "Paris" began inside " Paris"
    rest = aligner.finish(scores, cut=True)
    assert [s.token for s in rest] == [" "] and rest[0].logprob == -0.5


def test_a_token_inside_a_character_has_no_text_and_the_next_one_carries_it() -> None:
    scores = [lp("a"), lp(""), lp("🦙"), lp("")]  # the llama is two tokens; the reply ends mid-character
    aligner = Aligner()
    # A token with no text goes out once the text before it is shown.
    assert aligner.text("a", scores[:2]) == (scores[0], scores[1])
    assert aligner.text("🦙", scores[:3]) == (scores[2],)
    assert aligner.finish(scores, cut=False) == (scores[3],)  # the reply ended mid-character: kept
    cut = Aligner()
    assert cut.text("a", scores[:1]) == (scores[0],)
    assert cut.finish(scores, cut=True) == ()  # the stop began at that character


USAGE = chat.Usage(10, 4, 3)


def test_a_completion_of_several_choices_sums_the_completion_tokens() -> None:
    answers = [chat.Answer(("hi",), chat.Stop("end_turn", None, chat.Usage(10, 4, 3)), (lp("hi"),)),
               chat.Answer(("yo!",), chat.Stop("max_tokens", None, chat.Usage(10, 0, 5)), (lp("yo"), lp("!")))]
    body = to_chat_completion(answers, completion_id="c", model="m", logprobs=True)
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert [c["finish_reason"] for c in body["choices"]] == ["stop", "length"]
    assert body["usage"]["prompt_tokens"] == 10 and body["usage"]["completion_tokens"] == 8
    assert body["usage"]["prompt_tokens_details"] == {"cached_tokens": 4}  # the first choice's
    entry = body["choices"][1]["logprobs"]["content"][1]
    assert entry == {"token": "!", "logprob": -0.5, "bytes": [33], "top_logprobs": []}
    assert to_chat_completion(answers[0], completion_id="c", model="m")["choices"][0]["logprobs"] is None


def test_chunks_name_their_choice_and_the_usage_follows_the_last_finish() -> None:
    encoder = ChunkEncoder(completion_id="c", model="m", include_usage=True, choices=2)
    out = []
    for index, event in [(1, chat.Start(USAGE, False)), (0, chat.Start(USAGE, False)),
                         (1, chat.Text("a", (lp("a"),))), (1, chat.Stop("end_turn", None, USAGE)),
                         (0, chat.Text("b")), (0, chat.Stop("max_tokens", None, USAGE))]:
        out += encoder.feed(chat.ChoiceEvent(index, event))
    choices = [c["choices"][0] for c in out if c["choices"]]
    assert [c["index"] for c in choices] == [1, 0, 1, 1, 0, 0]
    assert choices[2]["logprobs"] == {"content": [{"token": "a", "logprob": -0.5, "bytes": [97], "top_logprobs": []}],
                                      "refusal": None}
    assert choices[4]["logprobs"] is None
    assert [c["finish_reason"] for c in choices if c["finish_reason"]] == ["stop", "length"]
    usage = [c for c in out if not c["choices"]]
    assert len(usage) == 1 and out[-1] is usage[0] and usage[0]["usage"]["completion_tokens"] == 6


def test_a_seeded_choice_is_seeded_by_its_index() -> None:
    request = GenerationRequest(Prompt((Turn("user", "x"),)), SamplingOptions(max_tokens=1, seed=5))
    assert [choice_request(request, i).options.seed for i in range(3)] == [5, 6, 7]
    unseeded = GenerationRequest(request.prompt, SamplingOptions(max_tokens=1))
    assert choice_request(unseeded, 2) is unseeded


async def _events(texts: list[str], delay: float, closed: list[int], index: int) -> AsyncGenerator[chat.Event, None]:
    try:
        yield chat.Start(USAGE, False)
        for text in texts:
            await asyncio.sleep(delay)
            yield chat.Text(text)
        yield chat.Stop("end_turn", None, USAGE)
    finally:
        closed.append(index)


def test_merged_choices_interleave_and_closing_closes_every_one() -> None:
    async def run() -> None:
        closed: list[int] = []
        streams = [_events(["a", "b"], 0.01, closed, 0), _events(["c"], 0.0, closed, 1)]
        got = [item async for item in merged(streams)]
        assert sorted(i.index for i in got) == [0, 0, 0, 0, 1, 1, 1]
        assert [i.event for i in got if i.index == 0][1:3] == [chat.Text("a"), chat.Text("b")]
        assert sorted(closed) == [0, 1]
        closed.clear()
        slow = [_events(["x"] * 100, 0.01, closed, 0), _events(["y"] * 100, 0.01, closed, 1)]
        stream = merged(slow)
        await anext(stream)
        await stream.aclose()  # the client went away: both generations end
        assert sorted(closed) == [0, 1]
        answers = await collected([_events(["a"], 0, [], 0), _events(["b", "c"], 0, [], 1)])
        assert [a.content for a in answers] == [("a",), ("bc",)]

    asyncio.run(run())
