"""The real engine (inference process + scheduler) on the real default model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agentic_flow.engine.base import ChatPrompt, ChatTurn, GenerationRequest, SamplingOptions
from agentic_flow.engine.client import WorkerEngine
from agentic_flow.errors import PromptTooLong

FRANCE = ChatPrompt((ChatTurn("user", "What is the capital of France?"),))
STORY = ChatPrompt((ChatTurn("user", "Write a very long story about a dragon and a knight."),))


@pytest.fixture()
async def engine(real_model_dir: Path) -> AsyncIterator[WorkerEngine]:
    eng = await WorkerEngine.start(real_model_dir, "smollm2-135m", ("cpu",), 0, 4)
    try:
        yield eng
    finally:
        await eng.close()


def greedy(max_tokens: int, stops: tuple[str, ...] = ()) -> SamplingOptions:
    return SamplingOptions(max_tokens=max_tokens, temperature=0.0, stop_sequences=stops)


async def collect(engine: WorkerEngine, prompt: ChatPrompt, options: SamplingOptions) -> tuple[str, object, int]:
    gen = await engine.generate(GenerationRequest(prompt, options))
    text = "".join([d async for d in gen])
    return text, gen.completion, gen.input_tokens


async def test_greedy_answer_mentions_paris(engine: WorkerEngine) -> None:
    text, completion, input_tokens = await collect(engine, FRANCE, greedy(40))
    assert "Paris" in text
    assert input_tokens == await engine.count_tokens(FRANCE)
    assert completion.output_tokens > 0  # type: ignore[attr-defined]


async def test_max_tokens_is_exact(engine: WorkerEngine) -> None:
    for n in (1, 5, 17):
        _, completion, _ = await collect(engine, STORY, greedy(n))
        assert completion.stop_reason == "max_tokens"  # type: ignore[attr-defined]
        assert completion.output_tokens == n  # type: ignore[attr-defined]


async def test_stop_sequence_stops_and_is_reported(engine: WorkerEngine) -> None:
    full, _, _ = await collect(engine, FRANCE, greedy(30))
    assert " Paris" in full
    text, completion, _ = await collect(engine, FRANCE, greedy(30, ("Paris", "zzz")))
    assert completion.stop_reason == "stop_sequence"  # type: ignore[attr-defined]
    assert completion.stop_sequence == "Paris"  # type: ignore[attr-defined]
    assert text == full[: full.index("Paris")]


async def test_stop_sequence_split_across_tokens(engine: WorkerEngine) -> None:
    full, _, _ = await collect(engine, FRANCE, greedy(30))
    stop = "is Par"  # spans at least two tokens ("is", " Paris")
    text, completion, _ = await collect(engine, FRANCE, greedy(30, (stop,)))
    assert completion.stop_sequence == stop  # type: ignore[attr-defined]
    assert text == full[: full.index(stop)]
    assert "Par" not in text


async def test_end_turn_on_eos(engine: WorkerEngine) -> None:
    prompt = ChatPrompt((ChatTurn("user", "Translate 'hello' to French."),))
    _, completion, _ = await collect(engine, prompt, greedy(200))
    assert completion.stop_reason == "end_turn"  # type: ignore[attr-defined]
    assert completion.output_tokens < 200  # type: ignore[attr-defined]


async def test_prefill_is_continued_not_repeated(engine: WorkerEngine) -> None:
    prompt = ChatPrompt((*FRANCE.turns, ChatTurn("assistant", "The capital of France is")))
    text, _, _ = await collect(engine, prompt, greedy(5))
    assert "Paris" in text and not text.startswith("The capital")


async def test_prompt_too_long_names_both_numbers(engine: WorkerEngine) -> None:
    with pytest.raises(PromptTooLong) as info:
        await engine.generate(GenerationRequest(FRANCE, greedy(8190)))
    assert info.value.context_length == 8192 and info.value.max_tokens == 8190
    assert str(info.value.prompt_tokens) in str(info.value)


async def test_cancellation_frees_the_generator(engine: WorkerEngine) -> None:
    gen = await engine.generate(GenerationRequest(STORY, greedy(2000)))
    received = 0
    async for _ in gen:
        received += 1
        if received == 3:
            break  # the consumer stops reading: the async generator is closed
    await gen.aclose()
    stats = await engine.worker_stats()  # answered after the cancel message: same pipe, in order
    assert stats == {"batches": 0, "rows": 0, "generations": 0, "pending": 0}


async def test_concurrent_generations_are_batched_and_correct(engine: WorkerEngine) -> None:
    alone, _, _ = await collect(engine, FRANCE, greedy(20))
    results = await asyncio.gather(*[collect(engine, p, greedy(20)) for p in (FRANCE, STORY, FRANCE, STORY)])
    assert all(c.output_tokens == 20 or c.stop_reason == "end_turn" for _, c, _ in results)  # type: ignore[attr-defined]
    assert "Paris" in results[0][0] and "Paris" in results[2][0]
    assert results[0][0] == results[2][0]
    stats = await engine.worker_stats()
    assert stats["generations"] == 0 and stats["batches"] == 0


async def test_a_newcomer_joins_a_running_batch(engine: WorkerEngine) -> None:
    first = await engine.generate(GenerationRequest(STORY, greedy(60)))
    it = first.__aiter__()
    for _ in range(5):
        await it.__anext__()
    second = asyncio.create_task(collect(engine, FRANCE, greedy(15)))
    await asyncio.sleep(0.05)
    stats = await engine.worker_stats()
    rest = "".join([d async for d in it])
    text, completion, _ = await second
    assert "Paris" in text
    assert first.completion.output_tokens == 60
    assert stats["rows"] in (1, 2)  # joined (rows 2) or already done (1)
    assert rest


async def test_sampling_respects_seed_and_temperature(engine: WorkerEngine) -> None:
    opts = SamplingOptions(max_tokens=20, temperature=1.0, top_k=50, seed=7)
    a, _, _ = await collect(engine, STORY, opts)
    b, _, _ = await collect(engine, STORY, opts)
    assert a == b  # the same seed, alone in its batch, gives the same text
