"""The inference process's scheduler, driven in-process with a fake model that implements the interface
the scheduler uses (engine.ort.OrtModel: render, encode, decoder, start, eos_ids, context_length).  These
tests cover what the real model cannot be made to do on demand: a runtime failure in a step or a start."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from agentic_flow.engine.base import GrammarRefused, Prompt, SamplingOptions, Turn
from agentic_flow.engine.messages import Deltas, Event, Failed, Finished, Generate, Scored
from agentic_flow.engine.scheduler import Scheduler
from agentic_flow.engine.search import SearchKey
from agentic_flow.errors import EngineError, InvalidRequestError
from agentic_flow.serving.planning import guidance
from agentic_flow.tooluse import ToolChoice, ToolSpec

EOS = 0
VOCAB = 16


class FakeDecoder:
    def decode(self, token: int) -> str:
        return f"<{token}>"


class FakeBatch:
    def __init__(self, model: FakeModel, rows: list[list[int]], max_length: int, guidance: object = None,
                 speculative: bool = False) -> None:
        model.starts += 1
        model.guidances.append(guidance)
        model.speculated.append(speculative)
        if model.fail_start:
            raise RuntimeError("could not allocate the KV cache")
        if guidance is not None and guidance in model.refused:
            raise GrammarRefused("Error creating grammar: bad regex")  # as engine.ort does
        self.model = model
        self.rows = len(rows)
        self.max_length = max_length
        self.length = max(len(r) for r in rows)
        self.closed = False
        self.speculative = speculative
        self.drafts = (0, 0)  # (verified, accepted): a speculative fake verifies 2 and accepts 1 per step

    def step(self) -> list[int]:
        self.model.steps += 1
        if self.model.steps == self.model.fail_at_step:
            raise RuntimeError("bad allocation")
        self.length += 1
        if self.speculative:
            self.drafts = (self.drafts[0] + 2, self.drafts[1] + 1)
        return [7] * self.rows

    def draft_stats(self) -> tuple[int, int]:
        return self.drafts

    def logits(self) -> np.ndarray:
        """Token 7 the most likely (as step() then chooses), token 3 next."""
        self.model.logit_reads += 1
        row = np.zeros(VOCAB, dtype=np.float32)
        row[7], row[3] = 5.0, 4.0
        return np.tile(row, (self.rows, 1))

    def done(self) -> bool:
        return self.length >= self.max_length

    def reuse(self, keep: int, tokens: list[int]) -> None:
        self.model.reused.append(keep)
        self.length = len(tokens)

    def close(self) -> None:
        self.closed = True


class FakeModel:
    context_length = 1000
    eos_ids = frozenset({EOS})

    def __init__(self, can_speculate: bool = False, batch_prefill_tokens: int | None = None) -> None:
        self.can_speculate = can_speculate
        self.batch_prefill_tokens = batch_prefill_tokens
        self.speculated: list[bool] = []  # per start: whether it was asked to speculate
        self.steps = 0
        self.starts = 0
        self.fail_at_step = -1
        self.fail_start = False
        self.guidances: list[object] = []
        self.refused: list[object] = []
        self.reused: list[int] = []
        self.logit_reads = 0

    def token_text(self, token: int) -> str:
        return f"<{token}>"

    def render(self, prompt: Prompt) -> str:
        text = " ".join(t.content for t in prompt.turns)
        text.encode()  # as onnxruntime-genai does: a lone surrogate raises UnicodeEncodeError
        return text

    def encode(self, text: str) -> list[int]:
        return [1] * len(text.split())

    def decoder(self) -> FakeDecoder:
        return FakeDecoder()

    def start(self, rows: list[list[int]], key: SearchKey, max_length: int, guidance: object = None,
              speculate: bool = False) -> FakeBatch:
        return FakeBatch(self, rows, max_length, guidance, speculate and len(rows) == 1 and self.can_speculate)


class Pipe:
    """The scheduler's end of the connection: it only sends."""

    def __init__(self) -> None:
        self.sent: list[Event] = []

    def send(self, event: Event) -> None:
        self.sent.append(event)

    def finished(self) -> list[Finished]:
        return [m for m in self.sent if isinstance(m, Finished)]

    def failed(self) -> list[Failed]:
        return [m for m in self.sent if isinstance(m, Failed)]

    def text(self, rid: int) -> str:
        return "".join(t for m in self.sent if isinstance(m, Deltas) for r, t in m.items if r == rid)


def run_until_idle(scheduler: Scheduler, limit: int = 100) -> None:
    for _ in range(limit):
        scheduler.admit()
        if not scheduler.batches and not scheduler.pending:
            return
        scheduler.step()


def make() -> tuple[Scheduler, FakeModel, Pipe]:
    model, pipe = FakeModel(), Pipe()
    return Scheduler(model, pipe, 4), model, pipe


def submit(scheduler: Scheduler, rid: int, text: str, options: SamplingOptions) -> None:
    scheduler.submit(Generate(rid, Prompt((Turn("user", text),)), options))


def greedy(n: int) -> SamplingOptions:
    return SamplingOptions(max_tokens=n, temperature=0)


def test_generations_run_to_max_tokens() -> None:
    scheduler, _, pipe = make()
    submit(scheduler, 1, "a b c", greedy(3))
    submit(scheduler, 2, "d e", greedy(5))
    run_until_idle(scheduler)
    done = {m.rid: m.completion for m in pipe.finished()}
    assert (done[1].stop_reason, done[1].stop_sequence, done[1].output_tokens) == ("max_tokens", None, 3)
    assert (done[2].stop_reason, done[2].stop_sequence, done[2].output_tokens) == ("max_tokens", None, 5)
    assert pipe.text(1) == "<7><7><7>"


def test_a_failed_step_ends_only_that_batch_and_the_process_goes_on() -> None:
    scheduler, model, pipe = make()
    model.fail_at_step = 2
    submit(scheduler, 1, "a b c", greedy(10))
    submit(scheduler, 2, "a b", greedy(10))
    run_until_idle(scheduler)
    errors = pipe.failed()
    assert sorted(m.rid for m in errors) == [1, 2]
    assert all(isinstance(m.error, EngineError) and "bad allocation" in str(m.error) for m in errors)
    assert not scheduler.batches and not scheduler.jobs
    submit(scheduler, 3, "again", greedy(2))  # the next request is served normally
    run_until_idle(scheduler)
    assert [(m.rid, m.completion.stop_reason) for m in pipe.finished()] == [(3, "max_tokens")]


def test_a_failed_start_fails_those_requests_only() -> None:
    scheduler, model, pipe = make()
    model.fail_start = True
    submit(scheduler, 1, "a", greedy(3))
    run_until_idle(scheduler)
    assert [m.rid for m in pipe.failed()] == [1] and "KV cache" in str(pipe.failed()[0].error)
    model.fail_start = False
    submit(scheduler, 2, "b", greedy(2))
    run_until_idle(scheduler)
    assert [m.rid for m in pipe.finished()] == [2]


def test_cancel_frees_the_batch_at_once() -> None:
    scheduler, _, pipe = make()
    submit(scheduler, 1, "a b c", greedy(50))
    scheduler.admit()
    scheduler.step()
    generator = scheduler.batches[0].generator
    scheduler.cancel(1)
    assert not scheduler.batches and generator.closed
    assert pipe.finished() == []  # a cancelled generation sends nothing more


def test_a_prompt_that_cannot_be_rendered_fails_only_that_request() -> None:
    scheduler, _, pipe = make()
    submit(scheduler, 1, "a b c", greedy(3))
    submit(scheduler, 2, "bad \ud800 text", greedy(3))
    run_until_idle(scheduler)
    assert [m.rid for m in pipe.failed()] == [2]
    error = pipe.failed()[0].error
    assert isinstance(error, InvalidRequestError) and "could not be rendered" in str(error)
    assert [m.rid for m in pipe.finished()] == [1]


def test_a_reused_prefix_is_reported_as_cached_tokens() -> None:
    scheduler, model, pipe = make()
    system = " ".join(["w"] * 300)
    submit(scheduler, 1, system, greedy(2))
    run_until_idle(scheduler)
    assert len(scheduler.prefixes) == 1
    submit(scheduler, 2, system + " more words", greedy(2))
    run_until_idle(scheduler)
    done = {m.rid: m.completion for m in pipe.finished()}
    assert done[1].cached_tokens == 0
    assert done[2].cached_tokens == model.reused[0] == 300  # the first prompt, not its answer
    assert scheduler.stats().prefix_hits == 1


def test_a_short_prompt_is_kept_and_its_repeat_reads_only_the_last_token() -> None:
    scheduler, model, pipe = make()
    prompt = " ".join(["w"] * 10)
    submit(scheduler, 1, prompt, greedy(5))
    run_until_idle(scheduler)
    assert len(scheduler.prefixes) == 1 and model.starts == 1
    # Room was rounded up to a KV bucket, so a longer answer to the same prompt still fits.
    submit(scheduler, 2, prompt, greedy(20))
    run_until_idle(scheduler)
    done = {m.rid: m.completion for m in pipe.finished()}
    assert model.starts == 1 and model.reused == [8]  # all but the last two prompt tokens (MIN_APPEND)
    assert done[2].cached_tokens == 8 and done[2].output_tokens == 20


def test_a_seeded_request_is_neither_served_from_nor_kept_in_the_cache() -> None:
    scheduler, model, _ = make()
    prompt = " ".join(["w"] * 10)
    submit(scheduler, 1, prompt, greedy(5))
    run_until_idle(scheduler)
    submit(scheduler, 2, prompt, SamplingOptions(max_tokens=5, temperature=0.8, seed=1))
    run_until_idle(scheduler)
    assert model.starts == 2 and model.reused == [] and len(scheduler.prefixes) == 1


TOOL = ToolSpec("Read", "", {"type": "object", "properties": {"path": {"type": "string", "pattern": "(x"}}})


def guided(n: int, tools: tuple[ToolSpec, ...] = (TOOL,)) -> tuple[Prompt, SamplingOptions]:
    prompt = Prompt((Turn("user", " ".join(["w"] * 100)),), tools, ToolChoice("any"))
    strict, fallback = guidance(tools, ToolChoice("any"))
    return prompt, SamplingOptions(max_tokens=n, temperature=0, guidance=strict, fallback=fallback)


def test_guided_requests_run_alone_and_are_never_merged() -> None:
    scheduler, _, pipe = make()
    prompt, options = guided(4)
    for rid in (1, 2):
        scheduler.submit(Generate(rid, prompt, options))
    submit(scheduler, 3, "a b", greedy(4))
    scheduler.admit()
    assert [[j.rid for j in b.rows] for b in scheduler.batches] == [[1], [2]]  # MAX_BATCHES, 3 waits
    run_until_idle(scheduler)
    assert sorted(m.rid for m in pipe.finished()) == [1, 2, 3]


def test_a_kept_generator_serves_only_the_same_guidance() -> None:
    scheduler, model, pipe = make()
    prompt, options = guided(2)
    scheduler.submit(Generate(1, prompt, options))
    run_until_idle(scheduler)
    scheduler.submit(Generate(2, prompt, SamplingOptions(max_tokens=2, temperature=0)))  # unguided
    run_until_idle(scheduler)
    assert model.reused == []
    scheduler.submit(Generate(3, prompt, options))
    run_until_idle(scheduler)
    assert model.reused == [98]  # all but the last two prompt tokens (MIN_APPEND)
    assert {m.rid: m.completion.cached_tokens for m in pipe.finished()}[3] == 98


def test_a_refused_grammar_falls_back_to_any_object_per_tool() -> None:
    scheduler, model, pipe = make()
    prompt, options = guided(3)
    model.refused.append(options.guidance)
    scheduler.submit(Generate(1, prompt, options))
    run_until_idle(scheduler)
    assert [m.rid for m in pipe.finished()] == [1] and not pipe.failed()
    loose = model.guidances[-1]
    assert loose is not None and loose != options.guidance and "(x" not in str(loose)


def test_a_refused_grammar_without_a_fallback_fails_only_that_request() -> None:
    scheduler, model, pipe = make()
    prompt, options = guided(3)
    model.refused.append(options.guidance)
    scheduler.submit(Generate(1, prompt, replace(options, fallback=None)))
    run_until_idle(scheduler)
    assert [m.rid for m in pipe.failed()] == [1] and not pipe.finished()
    assert model.guidances == [options.guidance]  # no second attempt with a grammar nobody planned


def test_only_rows_that_asked_are_scored_and_only_their_batches_read_logits() -> None:
    scheduler, model, pipe = make()
    submit(scheduler, 1, "a b", greedy(2))
    run_until_idle(scheduler)
    assert model.logit_reads == 0  # no request asked: no logits read, no scores sent
    assert all(m.scores == () for m in pipe.sent if isinstance(m, Deltas))
    submit(scheduler, 2, "a b", replace(greedy(3), logprobs=2))
    submit(scheduler, 3, "c d", greedy(3))  # shares the batch, asks for nothing
    run_until_idle(scheduler)
    assert model.logit_reads == 3
    scores = [s for m in pipe.sent if isinstance(m, Deltas) for s in m.scores]
    assert {s.rid for s in scores} == {2} and len(scores) == 3
    first: Scored = scores[0]
    assert first.score.token == "<7>"  # the text this token added
    assert [c.token for c in first.score.top] == ["<7>", "<3>"]
    assert first.score.logprob == first.score.top[0].logprob < 0
    assert pipe.text(2) == pipe.text(3) == "<7><7><7>"


def test_a_seed_beyond_the_runtimes_range_is_folded_into_it() -> None:
    """onnxruntime-genai takes a 32-bit seed (-1: a random one); OpenAI clients send any 64-bit one."""
    from agentic_flow.engine.search import SEED_RANGE, search_key
    seeds = [search_key(1.0, None, None, s).seed for s in (2**31, 2**63 - 1, -1, -(2**63), 7)]
    assert all(s is not None and 0 <= s < SEED_RANGE for s in seeds)
    assert seeds[-1] == 7 and search_key(1.0, None, None, 2**31 + 7).seed == 7
