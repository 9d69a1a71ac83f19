"""The inference process's scheduler, driven in-process with a fake model that implements the interface
the scheduler uses (engine.ort.OrtModel: render, encode, decoder, start, eos_ids, context_length).  These
tests cover what the real model cannot be made to do on demand: a runtime failure in a step or a start."""

from __future__ import annotations

from typing import Any

from agentic_flow.engine.base import ChatPrompt, SamplingOptions
from agentic_flow.engine.ort import SearchKey
from agentic_flow.engine.worker import Scheduler

EOS = 0


class FakeDecoder:
    def decode(self, token: int) -> str:
        return f"<{token}>"


class FakeBatch:
    def __init__(self, model: FakeModel, rows: list[list[int]], max_length: int) -> None:
        model.starts += 1
        if model.fail_start:
            raise RuntimeError("could not allocate the KV cache")
        self.model = model
        self.rows = len(rows)
        self.max_length = max_length
        self.length = max(len(r) for r in rows)
        self.closed = False

    def step(self) -> list[int]:
        self.model.steps += 1
        if self.model.steps == self.model.fail_at_step:
            raise RuntimeError("bad allocation")
        self.length += 1
        return [7] * self.rows

    def done(self) -> bool:
        return self.length >= self.max_length

    def close(self) -> None:
        self.closed = True


class FakeModel:
    context_length = 1000
    eos_ids = frozenset({EOS})

    def __init__(self) -> None:
        self.steps = 0
        self.starts = 0
        self.fail_at_step = -1
        self.fail_start = False

    def render(self, prompt: ChatPrompt) -> str:
        return " ".join(t.content for t in prompt.turns)

    def encode(self, text: str) -> list[int]:
        return [1] * len(text.split())

    def decoder(self) -> FakeDecoder:
        return FakeDecoder()

    def start(self, rows: list[list[int]], key: SearchKey, max_length: int) -> FakeBatch:
        return FakeBatch(self, rows, max_length)


class Pipe:
    """The scheduler's end of the connection: it only sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    def send(self, msg: tuple[Any, ...]) -> None:
        self.sent.append(msg)

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [m for m in self.sent if m[0] == kind]


def run_until_idle(scheduler: Scheduler, limit: int = 100) -> None:
    for _ in range(limit):
        scheduler.admit()
        if not scheduler.groups and not scheduler.pending:
            return
        scheduler.step()


def make() -> tuple[Scheduler, FakeModel, Pipe]:
    model, pipe = FakeModel(), Pipe()
    return Scheduler(model, pipe, 4), model, pipe  # type: ignore[arg-type]


def greedy(n: int) -> SamplingOptions:
    return SamplingOptions(max_tokens=n, temperature=0)


def test_generations_run_to_max_tokens() -> None:
    scheduler, _, pipe = make()
    scheduler.submit(1, [("user", "a b c")], greedy(3))
    scheduler.submit(2, [("user", "d e")], greedy(5))
    run_until_idle(scheduler)
    done = {m[1]: m for m in pipe.of("done")}
    assert done[1][2:] == ("max_tokens", None, 3) and done[2][2:] == ("max_tokens", None, 5)
    text = "".join(t for m in pipe.of("deltas") for rid, t in m[1] if rid == 1)
    assert text == "<7><7><7>"


def test_a_failed_step_ends_only_that_batch_and_the_process_goes_on() -> None:
    scheduler, model, pipe = make()
    model.fail_at_step = 2
    scheduler.submit(1, [("user", "a b c")], greedy(10))
    scheduler.submit(2, [("user", "a b")], greedy(10))
    run_until_idle(scheduler)
    errors = pipe.of("error")
    assert sorted(m[1] for m in errors) == [1, 2]
    assert all(m[2] == "engine" and "bad allocation" in m[3] for m in errors)
    assert not scheduler.groups and not scheduler.jobs
    scheduler.submit(3, [("user", "again")], greedy(2))  # the next request is served normally
    run_until_idle(scheduler)
    assert [m[1:3] for m in pipe.of("done")] == [(3, "max_tokens")]


def test_a_failed_start_fails_those_requests_only() -> None:
    scheduler, model, pipe = make()
    model.fail_start = True
    scheduler.submit(1, [("user", "a")], greedy(3))
    run_until_idle(scheduler)
    assert [m[1] for m in pipe.of("error")] == [1] and "KV cache" in pipe.of("error")[0][3]
    model.fail_start = False
    scheduler.submit(2, [("user", "b")], greedy(2))
    run_until_idle(scheduler)
    assert [m[1] for m in pipe.of("done")] == [2]


def test_cancel_frees_the_batch_at_once() -> None:
    scheduler, _, pipe = make()
    scheduler.submit(1, [("user", "a b c")], greedy(50))
    scheduler.admit()
    scheduler.step()
    batch = scheduler.groups[0].batch
    scheduler.cancel(1)
    assert not scheduler.groups and batch.closed
    assert pipe.of("done") == []  # a cancelled generation sends nothing more
