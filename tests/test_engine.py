"""The real engine (inference process + scheduler) on the real default model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agentic_flow.engine.base import GenerationRequest, Prompt, SamplingOptions, Turn
from agentic_flow.engine.client import WorkerEngine
from agentic_flow.errors import ModelError, PromptTooLong
from tests.engine_support import FRANCE, STORY, greedy


async def collect(engine: WorkerEngine, prompt: Prompt, options: SamplingOptions) -> tuple[str, object, int]:
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
    prompt = Prompt((Turn("user", "Translate 'hello' to French."),))
    _, completion, _ = await collect(engine, prompt, greedy(200))
    assert completion.stop_reason == "end_turn"  # type: ignore[attr-defined]
    assert completion.output_tokens < 200  # type: ignore[attr-defined]


async def test_prefill_is_continued_not_repeated(engine: WorkerEngine) -> None:
    prompt = Prompt((*FRANCE.turns, Turn("assistant", "The capital of France is")))
    text, _, _ = await collect(engine, prompt, greedy(5))
    assert "Paris" in text and not text.startswith("The capital")


@pytest.fixture()
async def small_engine(real_model_dir: Path, tmp_path: Path) -> AsyncIterator[WorkerEngine]:
    """The real model with its context cut to 256 tokens (a copy of genai_config.json beside links to the
    real files), so context limits can be tested without prefilling 8k tokens on a CPU."""
    folder = tmp_path / "small"
    folder.mkdir()
    for item in real_model_dir.iterdir():
        if item.name != "genai_config.json":
            (folder / item.name).symlink_to(item)
    config = json.loads((real_model_dir / "genai_config.json").read_text())
    config["model"]["context_length"] = 256
    config["search"]["max_length"] = 256
    (folder / "genai_config.json").write_text(json.dumps(config))
    eng = await WorkerEngine.start(folder, "small", ("cpu",), 0, 4)
    try:
        yield eng
    finally:
        await eng.close()


def lorem(n: int) -> Prompt:
    return Prompt((Turn("user", "Summarize: " + "lorem ipsum " * n),))


async def test_prompt_too_long_names_both_numbers(small_engine: WorkerEngine) -> None:
    with pytest.raises(PromptTooLong) as info:
        await small_engine.generate(GenerationRequest(lorem(100), greedy(10)))
    assert info.value.context_length == 256 and info.value.prompt_tokens > 256
    assert f"{info.value.prompt_tokens} tokens > 256" in str(info.value)


async def test_max_tokens_beyond_the_context_is_clamped(small_engine: WorkerEngine) -> None:
    a, b = await small_engine.count_tokens(lorem(10)), await small_engine.count_tokens(lorem(20))
    prompt = lorem(int((256 - 12 - a) / ((b - a) / 10)) + 10)
    room = 256 - await small_engine.count_tokens(prompt)
    assert 0 < room < 20, room
    _, completion, _ = await collect(small_engine, prompt, greedy(32000))
    assert completion.output_tokens <= room  # type: ignore[attr-defined]
    if completion.stop_reason == "max_tokens":  # type: ignore[attr-defined]
        assert completion.output_tokens == room  # type: ignore[attr-defined]


async def test_cancellation_frees_the_generator(engine: WorkerEngine) -> None:
    gen = await engine.generate(GenerationRequest(STORY, greedy(2000)))
    received = 0
    async for _ in gen:
        received += 1
        if received == 3:
            break  # the consumer stops reading: the async generator is closed
    await gen.aclose()
    stats = await engine.worker_stats()  # answered after the cancel message: same pipe, in order
    assert {k: stats[k] for k in ("batches", "rows", "generations", "pending")} == {
        "batches": 0, "rows": 0, "generations": 0, "pending": 0}
    assert stats["prefix_entries"] >= 1  # its KV (prompt and tokens so far) is kept for reuse


async def test_concurrent_generations_are_batched_and_correct(engine: WorkerEngine) -> None:
    _alone, _, _ = await collect(engine, FRANCE, greedy(20))
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
    # The first has 55 tokens to go: the newcomer must be stepped beside it, not after it.
    rows = 0
    while not second.done() and rows < 2:
        rows = (await engine.worker_stats())["rows"]
    assert rows == 2 and first.completion.output_tokens == 0  # both rows live while the first still runs
    rest = "".join([d async for d in it])
    text, _completion, _ = await second
    assert "Paris" in text
    assert first.completion.output_tokens == 60
    assert rest


async def test_sampling_respects_seed_and_temperature(engine: WorkerEngine) -> None:
    opts = SamplingOptions(max_tokens=20, temperature=1.0, top_k=50, seed=7)
    a, _, _ = await collect(engine, STORY, opts)
    b, _, _ = await collect(engine, STORY, opts)
    assert a == b  # the same seed, alone in its batch, gives the same text


async def test_cuda_without_the_cuda_build_is_a_clear_error(real_model_dir: Path) -> None:
    import onnxruntime_genai as og

    if og.is_cuda_available():
        pytest.skip("this onnxruntime-genai build has CUDA")
    with pytest.raises(ModelError) as info:
        await WorkerEngine.start(real_model_dir, "m", ("cuda", "cpu"), 0, 4)
    assert "no CUDA support" in str(info.value) and "onnxruntime-genai-cuda" in str(info.value)


SYSTEM = "You are a meticulous assistant. Answer briefly and precisely. " * 30  # ~400 tokens


def with_system(question: str) -> Prompt:
    return Prompt((Turn("system", SYSTEM), Turn("user", question)))


async def test_a_shared_prefix_is_reused_and_gives_the_same_answer(engine: WorkerEngine,
                                                                   real_model_dir: Path) -> None:
    first = with_system("Reply with one word: yes or no. Is water wet?")  # ends at EOS: the kept KV
    second = with_system("What is the capital of France?")  # must still be usable
    _, done, _ = await collect(engine, first, greedy(60))
    assert done.stop_reason == "end_turn"  # type: ignore[attr-defined]
    reused_text, _, input_tokens = await collect(engine, second, greedy(20))
    stats = await engine.worker_stats()
    assert stats["prefix_hits"] == 1
    assert input_tokens - 20 < stats["prefix_tokens"] < input_tokens  # all but the question was reused
    fresh = await WorkerEngine.start(real_model_dir, "fresh", ("cpu",), 0, 4)
    try:
        fresh_text, _, _ = await collect(fresh, second, greedy(20))
    finally:
        await fresh.close()
    assert reused_text == fresh_text and "Paris" in reused_text


async def test_a_repeated_short_prompt_reuses_its_kv_and_gives_the_same_answer(engine: WorkerEngine) -> None:
    prompt = Prompt((Turn("user", "Name three primary colors, in one line."),))
    first, _, input_tokens = await collect(engine, prompt, greedy(24))
    before = await engine.worker_stats()
    again, done, _ = await collect(engine, prompt, greedy(24))
    after = await engine.worker_stats()
    assert again == first and first
    assert after["prefix_hits"] == before["prefix_hits"] + 1
    assert done.cached_tokens == input_tokens - 2  # type: ignore[attr-defined]


async def test_no_reuse_across_search_options_or_seeds(engine: WorkerEngine) -> None:
    await collect(engine, with_system("Translate 'hello' to French."), greedy(10))
    sampled = SamplingOptions(max_tokens=5, temperature=0.7)
    await collect(engine, with_system("What is the capital of France?"), sampled)
    seeded = SamplingOptions(max_tokens=5, temperature=0.7, seed=3)
    await collect(engine, with_system("What is the capital of Spain?"), seeded)
    stats = await engine.worker_stats()
    assert stats["prefix_hits"] == 0
    assert stats["prefix_entries"] == 2  # the greedy one and the unseeded sampled one are kept


async def test_the_spare_generator_serves_a_short_prompt_as_a_fresh_one_would(engine: WorkerEngine,
                                                                              real_model_dir: Path) -> None:
    from agentic_flow.engine.ort import OrtModel
    from agentic_flow.engine.search import search_key
    from agentic_flow.engine.spare import Spare, preamble

    text, _, _ = await collect(engine, FRANCE, greedy(20))
    assert (await engine.worker_stats())["spare_hits"] == 1 and "Paris" in text
    # Token for token on the runtime itself: a fresh generator against the spare continued.
    model, key = OrtModel(real_model_dir, ("cpu",), 0), search_key(0.0, None, None, None)
    ids = model.encode(model.render(FRANCE))
    fresh = model.start([ids], key, len(ids) + 21)
    spare = Spare(preamble(model), model.context_length)
    assert len(spare.tokens) >= 20  # SmolLM2's default system turn and the user header
    spare.build(model, key)  # type: ignore[arg-type]
    continued = spare.take(key, ids, len(ids) + 21)
    assert continued is not None
    assert [fresh.step() for _ in range(20)] == [continued.step() for _ in range(20)]
