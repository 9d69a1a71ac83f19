"""The real engine under faults: prompts the template or tokenizer refuse, a killed inference process
(re-run once when none of the answer was passed on), one that keeps dying, and a huge count_tokens
beside a running stream."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from agentic_flow.engine import client
from agentic_flow.engine.base import GenerationRequest, Prompt, Turn
from agentic_flow.engine.client import WorkerEngine
from agentic_flow.errors import EngineError, InferenceDied, InvalidRequestError, Overloaded
from tests.engine_support import FRANCE, STORY, greedy

SURROGATE = Prompt((Turn("user", "\ud800"),))
# A prompt whose prefill takes a few hundred ms on the 135M: a kill right after the start lands before
# the first delta.
LONG = Prompt((Turn("user", "Summarise this in one line: " + "the knight rode on and on. " * 250),))


async def answer(engine: WorkerEngine, prompt: Prompt = FRANCE, max_tokens: int = 20) -> str:
    gen = await engine.generate(GenerationRequest(prompt, greedy(max_tokens)))
    return "".join([d async for d in gen])


async def wait_state(engine: WorkerEngine, state: str, timeout: float = 60) -> float:
    started = time.monotonic()
    while engine.stats().state != state:
        assert time.monotonic() - started < timeout, f"still {engine.stats().state}, not {state}"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def kill(engine: WorkerEngine) -> None:
    pid = engine.stats().extra["worker_pid"]
    assert isinstance(pid, int)
    os.kill(pid, signal.SIGKILL)


async def test_a_lone_surrogate_fails_that_request_only(engine: WorkerEngine) -> None:
    with pytest.raises(InvalidRequestError, match="could not be rendered or tokenized"):
        await engine.count_tokens(SURROGATE)
    with pytest.raises(InvalidRequestError, match="could not be rendered or tokenized"):
        await engine.generate(GenerationRequest(SURROGATE, greedy(5)))
    assert await engine.count_tokens(FRANCE) > 0  # both loops still serve
    assert "Paris" in await answer(engine)
    assert engine.stats().state == "ok" and engine.stats().extra["restarts"] == 0


async def test_a_killed_process_fails_the_stream_and_comes_back(engine: WorkerEngine) -> None:
    gen = await engine.generate(GenerationRequest(STORY, greedy(2000)))
    it = gen.__aiter__()
    await it.__anext__()
    kill(engine)
    with pytest.raises(EngineError, match="died"):
        async for _ in it:
            pass
    assert engine.stats().state == "restarting"
    with pytest.raises(Overloaded):
        await engine.count_tokens(FRANCE)
    await wait_state(engine, "ok")
    assert "Paris" in await answer(engine)
    assert engine.stats().extra["restarts"] == 1 and engine.stats().running == 0


async def test_a_death_before_the_first_delta_is_re_run_unseen(engine: WorkerEngine) -> None:
    gen = await engine.generate(GenerationRequest(LONG, greedy(20)))
    kill(engine)  # its prefill is still running: no delta has been produced, let alone passed on
    text = "".join([d async for d in gen])
    assert text and gen.completion.output_tokens > 0
    assert engine.stats().extra["restarts"] == 1 and engine.stats().running == 0
    assert text == await answer(engine, LONG)  # the same greedy answer as an undisturbed run


async def test_a_buffered_generation_is_re_run_after_its_deltas_were_produced(engine: WorkerEngine) -> None:
    gen = await engine.generate(GenerationRequest(STORY, greedy(200), buffered=True))
    while gen._queue.empty():  # deltas arrive, and are held back: the caller has seen nothing
        await asyncio.sleep(0.01)
    kill(engine)
    text = "".join([d async for d in gen])
    assert gen.completion.output_tokens == 200 and engine.stats().extra["restarts"] == 1
    assert text == await answer(engine, STORY, 200)


async def test_a_second_death_fails_the_re_run(engine: WorkerEngine) -> None:
    gen = await engine.generate(GenerationRequest(STORY, greedy(2000), buffered=True))
    kill(engine)
    await wait_state(engine, "restarting", timeout=10)
    await wait_state(engine, "ok")
    kill(engine)  # the re-run is in the new process now
    with pytest.raises(InferenceDied, match="died"):
        async for _ in gen:
            pass
    await wait_state(engine, "ok")
    assert "Paris" in await answer(engine)
    assert engine.stats().running == 0


async def test_a_count_in_flight_is_re_run(engine: WorkerEngine) -> None:
    expected = await engine.count_tokens(LONG)
    huge = Prompt((Turn("user", "lorem ipsum dolor " * 300_000),))  # seconds to count
    task = asyncio.create_task(engine.count_tokens(huge))
    await asyncio.sleep(0.2)  # the count is on its way (or counting): either way it is lost with the process
    kill(engine)
    assert await task > 500_000
    assert await engine.count_tokens(LONG) == expected


async def test_a_process_that_keeps_dying_is_fatal(engine: WorkerEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client, "MAX_DEATHS", 2)
    reasons: list[str] = []
    engine._on_fatal = reasons.append
    kill(engine)
    await wait_state(engine, "restarting", timeout=10)
    await wait_state(engine, "ok")
    kill(engine)
    await wait_state(engine, "fatal", timeout=10)
    assert reasons and "2 failures within 60 s" in reasons[0]
    assert engine.stats().error == reasons[0]
    with pytest.raises(EngineError, match="unavailable"):
        await answer(engine)


async def test_a_huge_count_does_not_stall_a_stream(engine: WorkerEngine) -> None:
    huge = Prompt((Turn("user", "lorem ipsum dolor " * 600_000),))  # ~11 MB
    gen = await engine.generate(GenerationRequest(STORY, greedy(4000)))
    gaps: list[float] = []
    counted: list[float] = []

    async def count() -> None:
        started = time.monotonic()
        assert await engine.count_tokens(huge) > 1_000_000
        counted.append(time.monotonic() - started)

    task: asyncio.Task[None] | None = None
    last = time.monotonic()
    async for _ in gen:
        now = time.monotonic()
        if task is None:
            task = asyncio.create_task(count())
        else:
            gaps.append(now - last)
        last = now
        if task.done():
            break
    await gen.aclose()
    assert task is not None
    await task
    print(f"count took {counted[0]:.2f} s; worst gap between deltas meanwhile {max(gaps) * 1000:.0f} ms")
    # Before the count left the decode loop, no delta arrived while it ran: the stream froze for all of it.
    # The count of deltas, not a gap in ms, is the check: timings drift on a shared machine.
    assert len(gaps) >= 3, (len(gaps), counted[0])
    # A prompt tokenized in one native call holds the GIL for most of the count (measured: worst gap
    # 1.4-1.8 s of a 2.3 s count); in pieces, a few percent (0.12-0.13 s of 4 s).  A share of the
    # count's own time, not milliseconds, so that a slower or busier machine scales both alike.
    # The 0.5 s floor: a machine busy with other work can hold a delta back a few hundred ms by itself
    # (seen: 0.36 s of a 0.52 s count with the fix in place), far from the seconds a single call takes.
    assert max(gaps) < max(0.3 * counted[0], 0.5), (max(gaps), counted[0])
