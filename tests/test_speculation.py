"""The scheduler's choice between speculating and batching (engine/scheduler.py), with the fakes of
tests/test_scheduler.py: onnxruntime-genai speculates on one-row generators only, so a request that runs
alone speculates, requests that run together batch, and a batch that shrinks back to one row speculates
again.  The real model's side (identical greedy output) is in tests/test_speculation_model.py."""

from __future__ import annotations

from agentic_flow.engine.base import SamplingOptions
from agentic_flow.engine.messages import Generate
from agentic_flow.engine.scheduler import Scheduler
from tests.test_scheduler import FakeBatch, FakeModel, Pipe, greedy, guided, run_until_idle, submit


def make(can_speculate: bool = True, greedy_too: bool = True) -> tuple[Scheduler, FakeModel, Pipe]:
    model, pipe = FakeModel(can_speculate), Pipe()
    return Scheduler(model, pipe, 4, speculate_greedy=greedy_too), model, pipe


def speculating(scheduler: Scheduler) -> list[bool]:
    return [b.generator.speculative for b in scheduler.batches]


def test_a_request_alone_speculates_and_its_drafts_are_counted() -> None:
    scheduler, _, pipe = make()
    submit(scheduler, 1, "a b c", greedy(5))
    scheduler.admit()
    assert speculating(scheduler) == [True] and scheduler.stats().speculating == 1
    run_until_idle(scheduler)
    assert [m.completion.output_tokens for m in pipe.finished()] == [5]
    stats = scheduler.stats()
    # The fake verifies 2 drafts and accepts 1 per step; the first step came before the counts started.
    assert (stats.speculating, stats.speculated, stats.draft_tokens, stats.draft_accepted) == (0, 1, 10, 5)


def test_requests_that_arrive_together_batch_instead() -> None:
    scheduler, _, _ = make()
    submit(scheduler, 1, "a b c", greedy(5))
    submit(scheduler, 2, "d e", greedy(5))
    scheduler.admit()
    assert [[j.rid for j in b.rows] for b in scheduler.batches] == [[1, 2]] and speculating(scheduler) == [False]
    run_until_idle(scheduler)
    assert scheduler.stats().speculated == 0


def test_a_newcomer_turns_the_speculating_row_into_a_batch_and_back_when_alone_again() -> None:
    scheduler, model, pipe = make()
    submit(scheduler, 1, "a b c", greedy(100))
    scheduler.admit()
    scheduler.step()
    assert speculating(scheduler) == [True]
    submit(scheduler, 2, "d e", greedy(20))  # short prompts, a long overlap: the cost model merges
    scheduler.admit()
    assert [[j.rid for j in b.rows] for b in scheduler.batches] == [[1, 2]] and speculating(scheduler) == [False]
    for _ in range(20):  # request 2 ends; 1 has 79 tokens to go: shrinking pays, and it runs alone again
        scheduler.step()
    assert [[j.rid for j in b.rows] for b in scheduler.batches] == [[1]] and speculating(scheduler) == [True]
    run_until_idle(scheduler, 200)
    assert sorted((m.rid, m.completion.output_tokens) for m in pipe.finished()) == [(1, 100), (2, 20)]
    assert model.speculated == [True, False, True]  # one start per (re)composition
    assert scheduler.stats().speculated == 2


def test_a_newcomer_that_does_not_pay_to_merge_runs_beside_it_each_alone_in_its_batch() -> None:
    scheduler, _, _ = make()
    submit(scheduler, 1, "a b c", greedy(60))
    scheduler.admit()
    scheduler.step()
    submit(scheduler, 2, "d e", greedy(3))  # a short overlap: re-reading request 1 does not pay
    scheduler.admit()
    assert [[j.rid for j in b.rows] for b in scheduler.batches] == [[1], [2]]
    assert speculating(scheduler) == [True, True]


def test_by_default_only_unseeded_samples_speculate() -> None:
    """Greedy output must stay the plain decoder's token for token unless asked (--speculate-greedy)."""
    scheduler, model, _ = make(greedy_too=False)
    submit(scheduler, 1, "a b c", greedy(3))
    run_until_idle(scheduler)
    submit(scheduler, 2, "d e f", SamplingOptions(max_tokens=3, temperature=0.7, top_p=0.8, top_k=20))
    run_until_idle(scheduler)
    assert model.speculated == [False, True]


def test_a_seeded_sample_never_speculates() -> None:
    scheduler, model, _ = make()
    submit(scheduler, 1, "a b c", SamplingOptions(max_tokens=3, temperature=0.7, seed=5))
    submit_later = SamplingOptions(max_tokens=3, temperature=0.7)  # unseeded sampling may
    run_until_idle(scheduler)
    submit(scheduler, 2, "d e f", submit_later)
    run_until_idle(scheduler)
    assert model.speculated == [False, True]


def test_a_guided_request_speculates_alone() -> None:
    scheduler, model, pipe = make()
    prompt, options = guided(4)
    scheduler.submit(Generate(1, prompt, options))
    scheduler.admit()
    assert speculating(scheduler) == [True] and model.guidances[-1] is options.guidance
    run_until_idle(scheduler)
    assert [m.rid for m in pipe.finished()] == [1]


def test_without_the_speculative_graph_nothing_speculates() -> None:
    scheduler, model, _ = make(can_speculate=False)
    submit(scheduler, 1, "a b c", greedy(3))
    run_until_idle(scheduler)
    assert model.speculated == [False] and scheduler.stats().speculated == 0


def test_the_spare_is_built_as_a_request_alone_would_run() -> None:
    for can in (True, False):
        scheduler, _, _ = make(can)
        scheduler.spare.tokens, scheduler.spare.wanted = [1] * 10, True
        scheduler.idle()
        assert isinstance(scheduler.spare.generator, FakeBatch)
        assert scheduler.spare.generator.speculative is can


def test_a_batch_reads_at_most_the_logits_bound_at_once() -> None:
    """On a graph with a logits row per token, several rows are read in one go (one append per batch):
    the scheduler batches only what fits the bound; a row alone always may (it is read in pieces)."""
    model, pipe = FakeModel(True, batch_prefill_tokens=12), Pipe()
    scheduler = Scheduler(model, pipe, 4, speculate_greedy=True)
    for rid in (1, 2, 3):
        submit(scheduler, rid, "a b c d e", greedy(2))  # 5 tokens each: two rows fit 12, three do not
    submit(scheduler, 4, " ".join(["w"] * 40), greedy(2))  # alone beyond the bound
    scheduler.admit()
    assert [[j.rid for j in b.rows] for b in scheduler.batches] == [[1, 2], [3]]
    run_until_idle(scheduler)
    assert sorted(m.rid for m in pipe.finished()) == [1, 2, 3, 4]


def test_a_request_for_logprobs_never_speculates() -> None:
    """Its scores come from the logits of each one-token step."""
    scheduler, model, pipe = make()
    submit(scheduler, 1, "a b c", SamplingOptions(max_tokens=3, temperature=0, logprobs=2))
    run_until_idle(scheduler)
    assert model.speculated == [False] and [m.rid for m in pipe.finished()] == [1]
